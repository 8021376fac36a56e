"""Check the blind entries: every edit applies to the reference and the edited module still parses.

    python blind/verify.py             # counts per part, and any edit that does not apply
    python blind/verify.py --public    # also run the part's public tests on each edited copy
                                       # (alternatives should pass; for mistakes it only reports)

An edit applies when its ``find`` occurs exactly once in ``solutions/diffusion/<part>.py`` and, for an
alternative with several edits, exactly once in the text its earlier edits left.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import shutil
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SOLUTIONS = ROOT / "solutions" / "diffusion"
PARTS = ("schedules", "forward", "posterior", "losses", "embedding", "ddpm", "ddim", "guidance", "vae", "latent")


def load_entries():
    spec = importlib.util.spec_from_file_location("blind_entries", Path(__file__).with_name("entries.py"))
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the class is built
    spec.loader.exec_module(module)
    return module


def apply(edits) -> tuple[str, str, list[str]]:
    """The part, its edited source and the problems found (empty when every edit applies)."""
    parts = {edit.part for edit in edits}
    if len(parts) != 1:
        return "", "", [f"edits span several parts: {sorted(parts)}"]
    part = parts.pop()
    if part not in PARTS:
        return part, "", [f"unknown part {part!r}"]
    original = (SOLUTIONS / f"{part}.py").read_text()
    text, problems = original, []
    for i, edit in enumerate(edits):
        if original.count(edit.find) != 1:
            problems.append(f"edit {i}: find occurs {original.count(edit.find)} times in the reference")
        if text.count(edit.find) != 1:
            problems.append(f"edit {i}: find occurs {text.count(edit.find)} times after the earlier edits")
            continue
        if edit.find == edit.replace:
            problems.append(f"edit {i}: replace equals find")
        text = text.replace(edit.find, edit.replace)
    try:
        compile(text, f"{part}.py", "exec")
    except SyntaxError as error:
        problems.append(f"edited module does not parse: {error}")
    return part, text, problems


def run_public(part: str, text: str) -> tuple[bool, str]:
    """Run tests/public/test_<part>.py on a copy of the reference with ``text`` as the part's module."""
    with tempfile.TemporaryDirectory() as tmp:
        package = Path(tmp) / "diffusion"
        shutil.copytree(SOLUTIONS, package, ignore=shutil.ignore_patterns("__pycache__"))
        (package / f"{part}.py").write_text(text)
        env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONDONTWRITEBYTECODE="1")
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "pytest",
                f"tests/public/test_{part}.py",
                "-q",
                "-x",
                "-p",
                "no:cacheprovider",
                "--impl",
                str(tmp),
            ],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
        )
        tail = [line for line in result.stdout.splitlines() if " passed" in line or " failed" in line]
        return result.returncode == 0, (tail[-1].strip() if tail else result.stdout[-300:])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--public", action="store_true", help="run each entry's public tests too")
    args = parser.parse_args()

    entries = load_entries()
    bad = 0
    names = Counter()
    mistakes, alternatives = Counter(), Counter()
    rows = []
    for mistake in entries.MISTAKES:
        names[mistake.name] += 1
        part, text, problems = apply((mistake.edit,))
        mistakes[part] += 1
        rows.append(("mistake", mistake.name, part, text, problems))
    for alternative in entries.ALTERNATIVES:
        names[alternative.name] += 1
        part, text, problems = apply(alternative.edits)
        alternatives[part] += 1
        rows.append(("alternative", alternative.name, part, text, problems))
    for name, count in names.items():
        if count > 1:
            print(f"DUPLICATE NAME {name} ({count} times)")
            bad += 1
    for kind, name, _, _, problems in rows:
        for problem in problems:
            print(f"DOES NOT APPLY {kind} {name}: {problem}")
            bad += 1

    print(f"{'part':<10} {'mistakes':>8} {'alternatives':>12}")
    for part in PARTS:
        print(f"{part:<10} {mistakes[part]:>8} {alternatives[part]:>12}")
    print(f"{'total':<10} {sum(mistakes.values()):>8} {sum(alternatives.values()):>12}")

    if args.public:
        print("\npublic tests on each edited copy (alternatives must pass):")
        for kind, name, part, text, problems in rows:
            if problems:
                continue
            passed, summary = run_public(part, text)
            flag = "ok" if (passed if kind == "alternative" else True) else "ALTERNATIVE FAILS"
            caught = "passes" if passed else "caught"
            print(
                f"  {kind:<11} {name:<55} public tests {caught:<6} ({summary}) {flag if kind == 'alternative' else ''}"
            )
            if kind == "alternative" and not passed:
                bad += 1

    print("all edits apply" if bad == 0 else f"{bad} problem(s)")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
