"""Exactly the code that runs inside the sandbox, beside the student's: staged there as this directory.

- :mod:`~autograder.sandbox.channel`: the data-only codec both ends speak (JSON and safetensors).
- :mod:`~autograder.sandbox.worker`: the zygote and the workers it forks, which import a part of the
  submission and answer the grader's calls.
- :mod:`~autograder.sandbox.calls`: how a named call runs (function, method of a fresh object,
  gradients) and where an error arose in the student's files.
- :mod:`~autograder.sandbox.limits`: the limits a worker applies to itself.

The rule of the trust boundary: this package imports only the standard library, torch, safetensors
and itself, never the rest of the grader (``tests/kit/test_layout.py`` checks it). The grader imports
it; it never imports the grader.
"""
