"""``python -m autograder classifier train --data NAME``: train, measure and save a scoring classifier."""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from autograder.scoring.metrics import ImageScorer
from autograder.scoring.training import RECIPES, train_classifier
from autograder.scoring.weights import SHIPPED, cached, save_classifier

FIGURES_N = 1000
"""The sample size at which the recorded floor and ceiling Fréchet distances are measured."""


def train(args: argparse.Namespace) -> int:
    """Train the classifier of ``args.data``, print its figures and write it with its record to ``args.out``."""
    torch.set_num_threads(args.threads)
    trained = train_classifier(args.data, args.seed, args.epochs, args.n_train, args.device)
    floor, ceiling, _ = ImageScorer(trained.model, seed=args.seed).baselines(FIGURES_N)
    figures = {
        "dataset": args.data,
        "seed": args.seed,
        "epochs": trained.epochs,
        "n_train": trained.n_train,
        "test_accuracy": round(trained.test_accuracy, 4),
        "train_seconds": round(trained.seconds, 1),
        "threads": args.threads,
        "fd_n": FIGURES_N,
        "fd_floor": round(floor, 4),
        "fd_ceiling": round(ceiling, 4),
        "torch": torch.__version__,
    }
    record = save_classifier(trained.model, args.out, figures)
    print(
        f"{args.data}: {trained.n_train} training images, {trained.epochs} epochs, seed {args.seed}, "
        f"{trained.seconds:.1f} s on {args.threads} thread(s)\n"
        f"  held-out accuracy  {trained.test_accuracy:.4f}\n"
        f"  FD at n={FIGURES_N}      floor (held-out real) {floor:.4f}   ceiling (N(0, I) noise) {ceiling:.4f}\n"
        f"  weights            {args.out / record['weights']} ({record['bytes']} bytes)\n"
        f"  SHA-256            {record['sha256']} (recorded in {args.data}.json)"
    )
    return 0


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register ``classifier train --data NAME [--out DIR] [--seed S] [--epochs E] [--n-train N] [--device D]``."""
    parser = subparsers.add_parser("classifier", help="the small classifiers that score generated images")
    commands = parser.add_subparsers(title="classifier commands", metavar="ACTION", required=True)
    training = commands.add_parser(
        "train",
        help="train a data set's scoring classifier, print its held-out accuracy and FD floor/ceiling, save it",
        description=f"Train with a fixed seed and save NAME.safetensors and NAME.json (SHA-256 and figures). "
        f"The kit ships those of the small data sets in {SHIPPED}; --out {SHIPPED} replaces them.",
    )
    training.add_argument("--data", required=True, choices=sorted(RECIPES), help="the data set")
    training.add_argument("--out", type=Path, default=cached(), help="directory to write to (default: %(default)s)")
    training.add_argument("--seed", type=int, default=0, help="initial weights and minibatch order (default: 0)")
    training.add_argument("--epochs", type=int, default=None, help="passes over the data (default: the recipe's)")
    training.add_argument("--n-train", type=int, default=None, help="training examples (default: the recipe's)")
    training.add_argument("--device", default=None, help="torch device (default: cuda when present, else cpu)")
    training.add_argument(
        "--threads", type=int, default=1, help="CPU threads; the weights are reproducible at a fixed count (default: 1)"
    )
    training.set_defaults(run=train)
