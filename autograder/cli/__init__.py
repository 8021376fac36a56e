"""The command line, one module per command, named after it; each holds only its argument parsing and
the call into the engine.

Each module exposes ``add_parser(subparsers)``: it registers its subparser and sets ``run``
(``args -> exit code``) as the parser's default. To add a command, write such a module and list it
in :data:`COMMANDS`.
"""

from __future__ import annotations

from autograder.cli import batch, bundle, classifier, grade, gradescope, harness, release, zoo

COMMANDS = (grade, batch, harness, gradescope, release, bundle, zoo, classifier)
"""The command modules, in the order ``--help`` lists them."""
