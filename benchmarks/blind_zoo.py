"""Judge the blind zoo by the hidden checks: ``python benchmarks/blind_zoo.py [--parts P ...]``.

``benchmarks/blind/entries.py`` holds mistakes and correct alternatives written from the student
material alone (docstrings, public tests, the contract), by someone who had not read the hidden
checks. Each mistake is graded on its part in-process (stopping at the first failed check), each
alternative on the parts it edits, exactly as ``python -m autograder zoo`` grades the kit's own zoo.
Prints one line per entry and the totals: mistakes caught, alternatives at full marks. A caught
mistake belongs in ``autograder/zoo/``; a surviving one is a check to strengthen (or an equivalent
program, said why); an alternative that loses points is a check that is wrong.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from autograder.parts import PART_NAMES  # noqa: E402
from autograder.zoo.edits import Alternative, Edit, Mutant  # noqa: E402
from autograder.zoo.validation import judge_alternative, judge_mutant  # noqa: E402


def blind_entries() -> tuple[list[Mutant], list[Alternative]]:
    """The blind entries as the kit's zoo types."""
    spec = importlib.util.spec_from_file_location("blind_entries", ROOT / "benchmarks" / "blind" / "entries.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)

    def edit(e) -> Edit:
        return Edit(e.part, e.find, e.replace)

    mistakes = [Mutant(m.name, m.why, edit(m.edit)) for m in module.MISTAKES]
    alternatives = [Alternative(a.name, a.why, tuple(edit(e) for e in a.edits)) for a in module.ALTERNATIVES]
    return mistakes, alternatives


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--parts", nargs="+", choices=PART_NAMES, help="only these parts (default: all)")
    args = parser.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    mistakes, alternatives = blind_entries()
    start = time.perf_counter()
    missed, wrong = [], []
    for mutant in mistakes:
        if args.parts and mutant.edit.part not in args.parts:
            continue
        verdict = judge_mutant(mutant)
        print(f"mistake     {mutant.name:<44}{verdict.part:<11}{'caught' if verdict.ok else 'MISSED'} {verdict.detail}")
        missed += [] if verdict.ok else [mutant.name]
    for alternative in alternatives:
        if args.parts and not {e.part for e in alternative.edits} & set(args.parts):
            continue
        for verdict in judge_alternative(alternative):
            mark = "ok" if verdict.ok else "FAILED"
            print(f"alternative {alternative.name:<44}{verdict.part:<11}{mark} {verdict.detail}")
            wrong += [] if verdict.ok else [f"{alternative.name} ({verdict.part})"]
    judged = sum(1 for m in mistakes if not args.parts or m.edit.part in args.parts)
    print(f"{judged - len(missed)} of {judged} blind mistakes caught; {len(wrong)} alternative(s) wrongly failed")
    print(f"missed: {', '.join(missed) or 'none'}")
    print(f"wrongly failed: {', '.join(wrong) or 'none'}")
    print(f"total time {time.perf_counter() - start:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
