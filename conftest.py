"""The suite's options, markers and session fixtures live in the package's pytest plugin,
albert_ixrt/pytest_plugin.py, registered as the ``pytest11`` entry point ``albert_ixrt.pytest_plugin``
(pip install -e '.[test]').  Where the package is importable but its entry point is not registered
(a checkout on PYTHONPATH), this registers the same module under the same name; where the entry point
already did, pytest finds it by that name and registers nothing twice.

Deliberately not ``pytest_plugins = [...]``: pytest refuses that in a conftest it loads after
configuration (when the rootdir is elsewhere, e.g. ``--model /models/x`` without a test path).
"""

PLUGIN = "albert_ixrt.pytest_plugin"


def pytest_addoption(parser, pluginmanager):
    pluginmanager.import_plugin(PLUGIN)   # a no-op when the entry point (or -p) registered it
    from albert_ixrt.pytest_plugin import add_documented_spellings

    # The plugin adds the documented spellings after the initial conftests, unless it was registered
    # just now, from inside that step (this conftest): then here, once.
    add_documented_spellings(parser)
