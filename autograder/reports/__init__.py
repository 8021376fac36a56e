"""What a batch writes from its students' ``results.json`` files, one module per file format.

- :mod:`~autograder.reports.records`: a student's ``results.json`` read once into a
  :class:`~autograder.reports.records.StudentRecord` (points per part and harness, failed tests), the
  class's points possible per column, and the spreadsheet cells every CSV shares;
- :mod:`~autograder.reports.problems`: the problem of each part in a short phrase (a syntax error, a
  timeout...), read from the tests' outputs;
- :mod:`~autograder.reports.gradebook`: ``gradebook.csv``, for the TAs;
- :mod:`~autograder.reports.feedback`: ``students/<id>/feedback.md``, what a student reads;
- :mod:`~autograder.reports.class_report`: ``report.md`` and ``report.png``, the class at a glance;
- :mod:`~autograder.reports.canvas`: ``canvas.csv``, Canvas's gradebook import.

They only read ``results.json`` files and write their own, atomically; :mod:`autograder.batch` calls them.
"""
