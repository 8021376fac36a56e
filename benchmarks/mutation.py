"""Mutation testing of the reference solutions, judged by the hidden checks of one part.

``python benchmarks/mutation.py [--parts P ...] [--max-mutants N] [--seed S] [--out DIR] [--config TOML]
[--equivalent TOML]``

For each part, Cosmic Ray's operators (configured in ``benchmarks/mutation.toml``) generate the
mutants of ``solutions/diffusion/<part>.py``; only those inside the student regions (the lines between
``### BEGIN SOLUTION`` and ``### END SOLUTION``) are kept, since the rest is provided code. Each mutant
is written into a fresh copy of the reference package and graded on its own part by the hidden checks,
in the grader's process (``grade(copy, parts={part}, fail_fast=True, sandboxed=False)``), in a child
forked from this process, so the imports are paid once and a mutant can be stopped. It is **killed**
if it loses points there. A mutant that errors counts as killed: an exception of its code fails a
check as a student error (the grader's verdict); one that escapes grading or kills the child counts
too, as does one that runs out of time (the config's ``timeout``, at least 10 times the reference's
grading time of the part), as in ``cosmic-ray exec``. With ``--max-mutants N`` a seeded random sample
of N of a part's mutants is judged.

Equivalent mutants (the same function and exceptions as the reference on every input the contract
allows) cannot be killed; ``benchmarks/mutation_equivalent.toml`` lists them with a reason, keyed by
part, line and mutation (the line's original and mutated text). A survivor found in the list is
**equivalent**; any other survivor is **real** (a wrong program the checks miss). The score over the
non-equivalent mutants is the killed ones over the mutants less the listed equivalent survivors; an
entry of the list that is killed (so not equivalent after all) or that no mutant matches (stale, the
code moved on) is reported.

Prints per part the mutants, killed (and how), survived (equivalent and real), the mutation score, the
score excluding the equivalent mutants listed and the time, and writes ``DIR/<part>.txt`` (the figures,
every survivor as ``line: original → mutated`` with its verdict, and every mutant's verdict) and
``DIR/<part>.sqlite``, a Cosmic Ray session with the verdicts (``cr-report DIR/<part>.sqlite``,
``cr-html``). Needs the ``mutation`` extra (``pip install -e '.[mutation]'``); not part of CI.

Why Cosmic Ray (8.x) and not mutmut (3.x):

* Judging by one part's hidden checks. mutmut 3 runs pytest only (its ``runner`` setting went with
  version 2): it copies the code into ``mutants/``, turns every function into a trampoline that picks
  the mutant by ``MUTANT_UNDER_TEST`` and the function's module name, and maps tests to functions with
  pytest. The grader loads a student module under a private name (``_submission_…_<part>``) against
  the reference's other parts, so neither the trampolines' names nor the pytest mapping hold; its
  mutants are only reachable through its private modules. Cosmic Ray keeps operators, mutation and
  judging apart with public functions: ``commands.init`` lists every mutation as a ``WorkItem``
  (operator, occurrence, start and end position, so the student regions are a filter on lines),
  ``mutating.mutate_code`` returns one mutant's source, and its ``WorkDB`` stores any verdict. Its own
  runner judges by any shell command's exit code, but it writes the mutant over the file in place,
  and here that file is the reference the checks compare with (the mutant would be graded against
  itself), and a new process per mutant would import torch and the grader every time. So Cosmic Ray
  makes the mutants (its operators) and this script's loop judges them.
* Speed. mutmut's trampolines and forks are fast, but only for pytest. Here the imports are paid once
  and each mutant costs one part's checks in a forked child (about 0.5 s for ``schedules``, 6 s for
  a ``ddim`` survivor; killed mutants stop at their first failed check).
* Upkeep. Both are kept: mutmut 3.x and Cosmic Ray 8.x both had releases within the last year.
* Layout. mutmut 3 wants the code it mutates importable from its ``mutants/`` copy (``src/`` or a
  top-level package), and the reference here is ``solutions/diffusion`` while ``diffusion`` installs
  the student's ``assignments/``; Cosmic Ray mutates any file by path.
"""

from __future__ import annotations

import argparse
import difflib
import multiprocessing
import os
import random
import re
import shutil
import sys
import tempfile
import time
import tomllib
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("OMP_NUM_THREADS", "1")

import torch  # noqa: E402 - the grader's imports come after the thread setting
from cosmic_ray import plugins  # noqa: E402
from cosmic_ray.commands.init import init  # noqa: E402
from cosmic_ray.config import load_config  # noqa: E402
from cosmic_ray.mutating import mutate_code  # noqa: E402
from cosmic_ray.work_db import WorkDB, use_db  # noqa: E402
from cosmic_ray.work_item import MutationSpec, TestOutcome, WorkerOutcome, WorkItem, WorkResult  # noqa: E402

from autograder.grading import grade  # noqa: E402
from autograder.parts import PART_NAMES  # noqa: E402
from autograder.reference import SOLUTIONS  # noqa: E402

BEGIN, END = "### BEGIN SOLUTION", "### END SOLUTION"
KINDS = {"check": "check", "unstable": "check", "student error": "raised"}
"""A failed check's kind of failure -> how the mutant was killed (any other kind: ``error``)."""
TIMEOUT_FACTOR = 10
"""A mutant may take this many times the reference's grading time of its part (at least the config's)."""
EQUIVALENT = ROOT / "benchmarks" / "mutation_equivalent.toml"
"""The equivalent mutants, with their reasons, by part."""


@dataclass(frozen=True)
class Verdict:
    """How one mutant fared: ``survived``, or killed by a ``check``'s verdict, an exception of its code that
    failed a check (``raised``), an ``error`` of grading, a ``timeout`` or a ``crash`` of the grading process."""

    how: str
    detail: str
    earned: float = 0.0
    available: float = 0.0

    @property
    def killed(self) -> bool:
        return self.how != "survived"


@dataclass(frozen=True)
class Equivalent:
    """A listed equivalent mutant: its line, the line's original and mutated text (stripped), and why it is."""

    line: int
    original: str
    mutated: str
    reason: str


def load_equivalents(path: Path) -> dict[str, list[Equivalent]]:
    """The equivalent mutants listed in ``path`` (arrays of tables named after the parts); none if it is missing."""
    if not path.is_file():
        return {}
    table = tomllib.loads(path.read_text(encoding="utf-8"))
    unknown = sorted(set(table) - set(PART_NAMES))
    if unknown:
        raise SystemExit(f"{path}: unknown parts {unknown}; the parts are {', '.join(PART_NAMES)}")
    return {
        part: [Equivalent(int(e["line"]), e["original"], e["mutated"], e["reason"]) for e in entries]
        for part, entries in table.items()
    }


def match_equivalents(keys: list[tuple[int, str, str] | None], listed: list[Equivalent]) -> dict[int, Equivalent]:
    """Which mutants (by index in ``keys``, each ``(line, original, mutated)``) the list names: the same line and
    text, else, for an entry still unmatched, the one mutant left with its text (the lines above it moved)."""
    found: dict[int, Equivalent] = {}
    exact = {key: i for i, key in enumerate(keys) if key is not None}
    rest = []
    for entry in listed:
        i = exact.get((entry.line, entry.original, entry.mutated))
        if i is None or i in found:
            rest.append(entry)
        else:
            found[i] = entry
    for entry in rest:
        same = [i for i, key in enumerate(keys) if key is not None and key[1:] == (entry.original, entry.mutated)]
        free = [i for i in same if i not in found]
        if len(same) == 1 and free:
            found[free[0]] = entry
    return found


def student_regions(source: str) -> list[tuple[int, int]]:
    """The 1-based line ranges strictly between the solution markers."""
    regions, start = [], None
    for number, line in enumerate(source.splitlines(), start=1):
        if line.strip() == BEGIN:
            start = number + 1
        elif line.strip() == END and start is not None:
            regions.append((start, number - 1))
            start = None
    return regions


def _grade_child(conn, root: Path, part: str) -> None:
    """In the forked child: grade ``root`` on ``part`` and send ``(earned, available, first failure)``."""
    sys.dont_write_bytecode = True  # no bytecode in the copies: one mutant must never load another's
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    os.dup2(devnull, 2)
    try:
        report = grade(root, parts={part}, fail_fast=True, sandboxed=False)
        earned, available = report.part_scores()[part]
        failed = [r for r in report.results if not r.passed]
        first = (failed[0].failure or "check", failed[0].check.name) if failed else ("", report.problem)
        conn.send((earned, available, *first))
    except BaseException as error:  # noqa: BLE001 - whatever escapes grading is the mutant's error
        conn.send(f"{type(error).__name__}: {error}")
    finally:
        conn.close()


def judge(part: str, source: str, timeout: float) -> tuple[Verdict, float]:
    """Grade a copy of the reference whose ``part`` module is ``source``; return the verdict and seconds."""
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="mutant-") as tmp:
        package = Path(tmp) / "diffusion"
        shutil.copytree(SOLUTIONS / "diffusion", package, ignore=shutil.ignore_patterns("__pycache__"))
        (package / f"{part}.py").write_text(source, encoding="utf-8")
        receive, send = multiprocessing.Pipe(duplex=False)
        child = multiprocessing.get_context("fork").Process(target=_grade_child, args=(send, Path(tmp), part))
        child.start()
        send.close()
        try:
            if not receive.poll(timeout):
                child.kill()
                verdict = Verdict("timeout", f"no verdict within {timeout:.0f} s")
            else:
                answer = receive.recv()
                if isinstance(answer, str):
                    verdict = Verdict("error", f"grading raised {answer}")
                else:
                    earned, available, failure, check = answer
                    how = "survived" if earned >= available else KINDS.get(failure, "error")
                    verdict = Verdict(how, f"{check} ({failure})" if failure else check, earned, available)
        except EOFError:
            verdict = Verdict("crash", "the grading process died")
        finally:
            child.join()
            receive.close()
    if verdict.how == "crash":
        verdict = Verdict("crash", f"the grading process died with exit code {child.exitcode}")
    return verdict, time.perf_counter() - start


def changed_lines(original: str, mutated: str) -> list[tuple[int, str, str]]:
    """``(line, original, mutated)`` for each line the mutation replaced (1-based, stripped)."""
    old, new = original.splitlines(), mutated.splitlines()
    pairs = []
    for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(a=old, b=new, autojunk=False).get_opcodes():
        if tag != "equal":
            pairs.append((i1 + 1, " / ".join(s.strip() for s in old[i1:i2]), " / ".join(s.strip() for s in new[j1:j2])))
    return pairs


def unified_diff(original: str, mutated: str, path: str) -> str:
    lines = difflib.unified_diff(original.splitlines(), mutated.splitlines(), f"a/{path}", f"b/{path}", lineterm="")
    return "\n".join(lines)


def in_regions(spec: MutationSpec, regions: list[tuple[int, int]]) -> bool:
    return any(first <= spec.start_pos[0] and spec.end_pos[0] <= last for first, last in regions)


def select(
    work_db: WorkDB, regions: list[tuple[int, int]], exclude: list[str], max_mutants: int | None, seed: int
) -> tuple[list[WorkItem], int]:
    """Mark as skipped the mutants outside the student regions, of excluded operators or not sampled;
    return the rest in source order and how many the regions held."""
    excluded = re.compile("|".join(f"(?:{e})" for e in exclude)) if exclude else None
    kept, skipped = [], {}
    for item in work_db.pending_work_items:
        spec = item.mutations[0]
        if not in_regions(spec, regions):
            skipped[item.job_id] = "outside the student regions (provided code)"
        elif excluded is not None and excluded.match(spec.operator_name):
            skipped[item.job_id] = "operator excluded by the configuration"
        else:
            kept.append(item)
    in_scope = len(kept)
    if max_mutants is not None and len(kept) > max_mutants:
        sample = {item.job_id for item in random.Random(seed).sample(kept, max_mutants)}
        skipped.update({item.job_id: "not in the sample" for item in kept if item.job_id not in sample})
        kept = [item for item in kept if item.job_id in sample]
    for job_id, why in skipped.items():
        work_db.set_result(job_id, WorkResult(worker_outcome=WorkerOutcome.SKIPPED, output=why))
    kept.sort(key=lambda item: (item.mutations[0].start_pos, item.mutations[0].operator_name))
    return kept, in_scope


def run_part(
    part: str, config, out: Path, max_mutants: int | None, seed: int, listed: list[Equivalent]
) -> dict[str, float]:
    module_path = Path(config["module-path"]) / f"{part}.py"
    path = ROOT / module_path
    source = path.read_text(encoding="utf-8")
    regions = student_regions(source)
    if not regions:
        raise SystemExit(f"{module_path} has no student region ({BEGIN} … {END})")
    exclude = list(config.sub("filters", "operators-filter").get("exclude-operators", ()))

    baseline, seconds = judge(part, source, timeout=max(config.timeout, 600.0))
    if baseline.how != "survived":
        raise SystemExit(f"the reference itself does not get full marks in {part}: {baseline.detail}")
    timeout = max(config.timeout, TIMEOUT_FACTOR * seconds)

    db_path = out / f"{part}.sqlite"
    db_path.unlink(missing_ok=True)
    rows, start = [], time.perf_counter()
    with use_db(str(db_path), WorkDB.Mode.create) as work_db:
        init([module_path], work_db, config.operators_config)
        items, in_scope = select(work_db, regions, exclude, max_mutants, seed)
        for number, item in enumerate(items, start=1):
            spec = item.mutations[0]
            operator = plugins.get_operator(spec.operator_name)(**spec.operator_args)
            mutated = mutate_code(source, operator, spec.occurrence)
            if mutated is None:  # Cosmic Ray's 'no test': the operator found nothing to change
                work_db.set_result(item.job_id, WorkResult(worker_outcome=WorkerOutcome.NO_TEST))
                continue
            verdict, took = judge(part, mutated, timeout)
            outcome = TestOutcome.KILLED if verdict.killed else TestOutcome.SURVIVED
            work_db.set_result(
                item.job_id,
                WorkResult(
                    worker_outcome=WorkerOutcome.NORMAL,
                    test_outcome=outcome,
                    output=f"{verdict.how}: {verdict.detail}",
                    diff=unified_diff(source, mutated, str(module_path)),
                ),
            )
            rows.append((spec, changed_lines(source, mutated), verdict))
            print(
                f"  {part} {number}/{len(items)} line {spec.start_pos[0]} {spec.operator_name}: "
                f"{'killed (' + verdict.how + ')' if verdict.killed else 'SURVIVED'} {took:.1f} s",
                file=sys.stderr,
                flush=True,
            )
    elapsed = time.perf_counter() - start

    killed = [r for r in rows if r[2].killed]
    survivors = [r for r in rows if not r[2].killed]
    keys = [(c[0][0], c[0][1], c[0][2]) if len(c) == 1 else None for _, c, _ in rows]
    named = match_equivalents(keys, listed)
    equivalent = {i: e for i, e in named.items() if not rows[i][2].killed}
    killed_listed = [(rows[i], e) for i, e in named.items() if rows[i][2].killed]
    unmatched = [e for e in listed if e not in named.values()]
    moved = [(keys[i][0], e) for i, e in named.items() if keys[i][0] != e.line]
    real = len(survivors) - len(equivalent)
    judged = len(rows) - len(equivalent)
    score_excluding = len(killed) / judged if judged else float("nan")
    by_how = {how: sum(r[2].how == how for r in rows) for how in ("check", "raised", "error", "timeout", "crash")}
    score = len(killed) / len(rows) if rows else float("nan")
    sampled = f" (a sample of {len(items)} of {in_scope}, seed {seed})" if len(items) < in_scope else ""
    summary = [
        f"part {part}: {module_path}, student regions (lines) "
        + ", ".join(f"{a}-{b}" if a != b else f"{a}" for a, b in regions),
        f"mutants {len(rows)}{sampled}",
        f"killed {len(killed)}: by a check's verdict {by_how['check']}, by an error, counted as killed: "
        f"raised in a check {by_how['raised']}, grading failed {by_how['error']}, timed out {by_how['timeout']}, "
        f"crashed {by_how['crash']}",
        f"survived {len(survivors)}: equivalent (listed in {EQUIVALENT.name}) {len(equivalent)}, "
        f"not listed as equivalent (real) {real}",
        f"mutation score {score:.1%}",
        f"score excluding the {len(equivalent)} equivalent mutants listed {score_excluding:.1%} "
        f"({len(killed)} killed of {judged})",
        f"time {elapsed:.0f} s (reference graded in {seconds:.1f} s; limit per mutant {timeout:.0f} s)",
    ]
    for (_, _, verdict), entry in killed_listed:
        summary.append(
            f"listed as equivalent but killed ({verdict.how}: {verdict.detail}): line {entry.line}: "
            f"{entry.original}  →  {entry.mutated}"
        )
    for line, entry in moved:
        summary.append(f"listed as equivalent at line {entry.line}, found at line {line}: {entry.mutated}")
    if unmatched:
        why = "not in the sample, or stale" if len(items) < in_scope else "stale: no such mutant"
        summary += [f"listed as equivalent, {why}: line {e.line}: {e.original}  →  {e.mutated}" for e in unmatched]
    lines = [*summary, "", f"survivors ({len(survivors)}): line: original → mutated  [operator #occurrence]  verdict"]
    for i, (spec, changes, verdict) in enumerate(rows):
        if verdict.killed:
            continue
        verdict_text = f"EQUIVALENT: {equivalent[i].reason}" if i in equivalent else "REAL (not listed as equivalent)"
        for line, old, new in changes:
            lines.append(f"  {line}: {old}  →  {new}  [{spec.operator_name} #{spec.occurrence}]")
        lines.append(f"      {verdict_text}")
    lines += ["", "every mutant: line, operator, verdict (killed by the first failed check, or how)"]
    for spec, changes, verdict in rows:
        change = "; ".join(f"{old} → {new}" for _, old, new in changes)
        what = "SURVIVED" if not verdict.killed else f"killed: {verdict.how}: {verdict.detail}"
        lines.append(f"  {spec.start_pos[0]} {spec.operator_name} #{spec.occurrence}: {change}\n      {what}")
    (out / f"{part}.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(summary))
    print(f"survivors ({len(survivors)}) in {out / f'{part}.txt'}\n", flush=True)
    return {
        "mutants": len(rows),
        "killed": len(killed),
        "survived": len(survivors),
        "equivalent": len(equivalent),
        "seconds": elapsed,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--parts", nargs="+", choices=PART_NAMES, default=list(PART_NAMES))
    parser.add_argument("--max-mutants", type=int, default=None, help="judge a random sample of N mutants per part")
    parser.add_argument("--seed", type=int, default=0, help="the sample's seed")
    parser.add_argument("--out", type=Path, default=ROOT / "build" / "mutation")
    parser.add_argument("--config", type=Path, default=ROOT / "benchmarks" / "mutation.toml")
    parser.add_argument("--equivalent", type=Path, default=EQUIVALENT, help="the list of equivalent mutants")
    args = parser.parse_args()
    torch.set_num_threads(1)
    config = load_config(str(args.config))
    listed = load_equivalents(args.equivalent)
    args.out.mkdir(parents=True, exist_ok=True)
    totals = {
        part: run_part(part, config, args.out, args.max_mutants, args.seed, listed.get(part, [])) for part in args.parts
    }
    print(
        f"{'part':<11}{'mutants':>8}{'killed':>8}{'survived':>9}{'equiv.':>8}{'real':>6}{'score':>8}"
        f"{'excl. equiv.':>14}{'seconds':>9}"
    )
    for part, t in totals.items():
        score = t["killed"] / t["mutants"] if t["mutants"] else float("nan")
        judged = t["mutants"] - t["equivalent"]
        excluding = t["killed"] / judged if judged else float("nan")
        real = t["survived"] - t["equivalent"]
        print(
            f"{part:<11}{t['mutants']:>8}{t['killed']:>8}{t['survived']:>9}{t['equivalent']:>8}{real:>6}"
            f"{score:>8.1%}{excluding:>14.1%}{t['seconds']:>9.0f}"
        )


if __name__ == "__main__":
    main()
