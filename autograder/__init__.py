"""The TA and instructor tooling: the ``python -m autograder`` CLI, the release builder, the grader and its checks."""
