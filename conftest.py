"""Root conftest: loads the test plugin (``--impl``, the per-part table, the Hypothesis profile).

It sits at the project root so that pytest registers ``--impl`` whatever paths it is given.
"""

pytest_plugins = ("tests.plugin",)
