"""The kernel half of the notebook guard: runs inside the kernel that autogrades a notebook.

The grader never imports this module: :class:`autograder.notebook_guard.GuardedExecute` sends its
source to the fresh kernel before the notebook's first cell, where it is executed in a namespace of its
own (with a private copy of the builtins) and :func:`install` takes a snapshot of everything a cell
could change to keep a later test cell from running as written or to hide its failure:

* IPython's input transformers (cleanup, line, token, post), AST transformers, prefilter, event
  callbacks, custom exception handler, the shell's user namespace;
* the attributes of the shell, kernel, display hook, display publisher, sessions, compiler, traceback
  formatters and output streams that are code, and the methods of their classes;
* ``sys``'s hooks, output streams and ``sys.modules``, the trace and profile functions;
* the functions, classes (their methods) and submodules of the guarded modules: ``builtins``,
  ``torch``, ``torch.testing``, ``numpy.testing``, … and the IPython and ipykernel modules that run a
  cell and report its error.

The snapshot is taken where the later checks run: in an ipykernel *user expression*, which ``eval``
evaluates after the (empty) request's code, past the input transformers, the prefilter, the display
hook and ``sys.stdout``. The grader reaches the guard through a class with a random name, found by an
expression that looks up no name a student could rebind (``object.__subclasses__()``), and switches
the trace and profile functions off in that expression, before any Python frame of the guard starts:

* ``before`` (before each autograded test cell) puts back everything that differs from the snapshot,
  rebinds the test's module names (``torch``) and removes the user namespace's shadows of the builtins
  the test uses (``abs = …``);
* ``after`` (after the test cell) only reports what differs.

Both return the grader's nonce followed by the JSON list of what they found, leaving out what library
code explains (:func:`library_code`: ``torchvision`` rewraps ``torch.manual_seed`` on import,
``matplotlib`` adds ``post_execute`` callbacks). Standard library and IPython only.
"""

from __future__ import annotations

import builtins
import importlib
import json
import os
import site
import sys
import sysconfig
import types
from collections.abc import Callable, Iterable, MutableSequence
from typing import Any

from IPython.core.getipython import get_ipython

MISSING = object()
IMMUTABLE_TYPE = 1 << 8  # Py_TPFLAGS_IMMUTABLETYPE: the type's attributes cannot be set
VOLATILE = frozenset(
    {
        # IPython's and ipykernel's per-request state, replaced by every execution: no hooks.
        "_parent_header",
        "_parent_header_global",
        "_shell_context",
        "_thread_local",
        "_last_traceback",
        "exec_result",
        "last_execution_result",
        "msg",
        "parent_header",
    }
)
"""Attributes that change in the normal course of execution: never compared, never put back."""

_dumps = json.dumps
_realpath = os.path.realpath
LIBRARY_DIRS = tuple(
    {_realpath(sysconfig.get_paths()[key]) + os.sep for key in ("stdlib", "platstdlib", "purelib", "platlib")}
    | ({_realpath(site.getusersitepackages()) + os.sep} if site.ENABLE_USER_SITE else set())
)
"""Where the standard library and the installed packages live (not the student's package, which
``PYTHONPATH`` points at, nor the notebook's cells: a package installed there counts as a library)."""
_settrace, _setprofile, _gettrace, _getprofile = sys.settrace, sys.setprofile, sys.gettrace, sys.getprofile


def same(a: object, b: object) -> bool:
    """``a is b``, or both bound methods of one function on one object (ipykernel binds ``input`` anew
    for every request). Never calls the objects' own code."""
    if a is b:
        return True
    return (
        type(a) is types.MethodType
        and type(b) is types.MethodType
        and a.__func__ is b.__func__
        and a.__self__ is b.__self__
    )


def library_code(value: object) -> bool:
    """Whether ``value`` is a Python function (or a method of one) defined in the standard library or an
    installed package: how libraries patch each other on import (``torchvision`` rewraps
    ``torch.manual_seed``, ``matplotlib`` registers ``post_execute`` callbacks). A student's functions are
    defined in a cell or in their package; builtins, ``functools.partial`` objects and the like are not
    library code either, whatever they wrap."""
    if type(value) is types.MethodType:
        value = value.__func__
    if type(value) is not types.FunctionType:
        return False
    filename = value.__code__.co_filename
    return filename.startswith("<frozen ") or _realpath(filename).startswith(LIBRARY_DIRS)


def behavioural(value: object) -> bool:
    """Whether ``value`` (a trusted object, read at install) is code: a callable, class, module or descriptor."""
    return callable(value) or isinstance(value, type | types.ModuleType) or hasattr(type(value), "__get__")


class Entries:
    """Chosen entries of one namespace as they were at install, and how to put them back."""

    def __init__(
        self,
        label: str,
        read: Callable[[], Any],
        write: Callable[[str, object], None],
        delete: Callable[[str], None],
        keep: Callable[[str, object], bool],
        drop_added: Callable[[object], bool] | None = None,
    ) -> None:
        """``read()`` gives the live mapping; ``keep(key, value)`` chooses the entries to watch;
        ``drop_added(value)`` chooses which entries added after install are removed (none if ``None``)."""
        self.label, self.read, self.write, self.delete, self.drop_added = label, read, write, delete, drop_added
        mapping = read()
        self.original = {key: value for key, value in mapping.items() if keep(key, value)}
        self.known = frozenset(mapping)

    def check(self, fix: bool) -> list[str]:
        """The entries that differ from install, put back if ``fix``; those not explained by library code
        (see :func:`library_code`) are returned. Added entries are removed only if they are not library code."""
        mapping = self.read()
        found = []
        for key, value in self.original.items():
            current = mapping.get(key, MISSING)
            if same(current, value):
                continue
            if current is MISSING or not library_code(current):
                found.append(f"{self.label}.{key}")
            if fix:
                self.write(key, value)
        if self.drop_added is not None:
            for key in [key for key in mapping if key not in self.known]:
                current = mapping[key]
                if self.drop_added(current) and not library_code(current):
                    found.append(f"{self.label}.{key}")
                    if fix:
                        self.delete(key)
        return found


class Items:
    """The contents of one list (transformers, callbacks) as they were at install."""

    def __init__(self, label: str, items: MutableSequence[object]) -> None:
        self.label, self.items, self.original = label, items, list(items)

    def check(self, fix: bool) -> list[str]:
        """``[label]`` if entries of the list went missing or entries that are not library code were added
        (put back if ``fix``: the original entries, then the library code added since), else ``[]``."""
        items, original = self.items, self.original
        added = [item for item in items if not any(item is entry for entry in original)]
        expected = original + [item for item in added if library_code(item)]
        if len(items) == len(expected) and all(a is b for a, b in zip(items, expected, strict=True)):
            return []
        missing = any(not any(entry is item for item in items) for entry in original)
        if fix:
            items[:] = expected
        return [self.label] if missing or len(expected) - len(original) < len(added) else []


def module_entries(module: types.ModuleType) -> Entries:
    """``builtins``: every entry; other modules: their code (functions, classes, submodules), and for
    ``sys`` its output streams and ``sys.modules``. Entries a module gains later (lazy submodules) are
    left alone, and so is the rest of ``sys`` (a notebook may set ``sys.path``)."""
    name = module.__name__
    if name == "builtins":
        keep = lambda key, value: True  # noqa: E731
    elif name == "sys":
        keep = lambda key, value: (  # noqa: E731 (sys.last_type & co. record the last error)
            key in ("stdout", "stderr", "modules") or (behavioural(value) and not key.startswith("last_"))
        )
    else:
        keep = lambda key, value: behavioural(value)  # noqa: E731
    namespace = module.__dict__
    return Entries(name, lambda: namespace, namespace.__setitem__, namespace.__delitem__, keep)


def class_entries(cls: type) -> Entries:
    """A class's methods and descriptors; anything added to it later is removed."""
    return Entries(
        f"{cls.__module__}.{cls.__qualname__}",
        lambda: cls.__dict__,
        lambda key, value: type.__setattr__(cls, key, value),
        lambda key: type.__delattr__(cls, key),
        lambda key, value: behavioural(value),
        drop_added=lambda value: True,
    )


def object_entries(label: str, obj: object, also: Iterable[str] = ()) -> list[Entries]:
    """An object's attributes (and traitlets values) that are code (its hooks: ``shell.showtraceback``,
    ``shell.CustomTB``) or named in ``also`` (``shell.user_ns``); callables added to it later
    (``shell.run_cell = …``) are removed."""
    also = frozenset(also)
    found = []
    for suffix, mapping in (("", getattr(obj, "__dict__", None)), (" trait", getattr(obj, "_trait_values", None))):
        if type(mapping) is dict:
            found.append(
                Entries(
                    label + suffix,
                    lambda mapping=mapping: mapping,
                    mapping.__setitem__,
                    mapping.__delitem__,
                    lambda key, value: key not in VOLATILE and (key in also or behavioural(value)),
                    drop_added=callable,
                )
            )
    return found


def mutable_classes(classes: Iterable[type]) -> list[type]:
    """The classes (and their bases) whose attributes can be set, each once."""
    found: dict[int, type] = {}
    for cls in classes:
        for base in cls.__mro__:
            if not base.__flags__ & IMMUTABLE_TYPE:
                found.setdefault(id(base), base)
    return list(found.values())


class Guard:
    """The snapshot taken at install, and the checks ``before`` and ``after`` run against it."""

    def __init__(self, module_names: Iterable[str]) -> None:
        shell = get_ipython()
        kernel = shell.kernel
        modules = {}
        for name in module_names:
            try:
                modules[name] = importlib.import_module(name)
            except ImportError:  # e.g. numpy in a kernel without it: nothing to protect
                continue
        objects = {  # label: (object, its attributes that hold hooks without being code)
            "shell": (
                shell,
                (
                    "user_ns",
                    "user_module",
                    "custom_exceptions",
                    "events",
                    "display_pub",
                    "prefilter_manager",
                    "input_transformer_manager",
                    "ast_transformers",
                    "input_transformers_post",
                    "ast_node_interactivity",
                    "autocall",
                    "kernel",
                ),
            ),
            "kernel": (kernel, ("session", "shell", "shell_handlers", "control_handlers", "iopub_socket")),
            "kernel.session": (kernel.session, ()),
            "shell.displayhook": (shell.displayhook, ("session", "pub_socket")),
            "shell.displayhook.session": (getattr(shell.displayhook, "session", None), ()),
            "shell.display_pub": (shell.display_pub, ("session", "pub_socket")),
            "shell.events": (shell.events, ("callbacks",)),
            "shell.input_transformer_manager": (
                shell.input_transformer_manager,
                ("cleanup_transforms", "line_transforms", "token_transformers"),
            ),
            "shell.prefilter_manager": (shell.prefilter_manager, ("_transformers", "_checkers", "_esc_handlers")),
            "shell.compile": (shell.compile, ()),
            "shell.InteractiveTB": (shell.InteractiveTB, ()),
            "shell.SyntaxTB": (shell.SyntaxTB, ()),
            "sys.stdout": (sys.stdout, ()),
            "sys.stderr": (sys.stderr, ()),
        }
        objects = {label: (obj, also) for label, (obj, also) in objects.items() if obj is not None}
        defined_in_modules = [
            value
            for module in modules.values()
            for value in list(vars(module).values())
            if isinstance(value, type) and getattr(value, "__module__", None) == module.__name__
        ]
        classes = mutable_classes([*defined_in_modules, *(type(obj) for obj, _ in objects.values())])
        self.shell, self.user_ns = shell, shell.user_ns
        self.modules = modules
        self.trace, self.profile = _gettrace(), _getprofile()
        names = frozenset(modules)
        self.namespaces: list[Entries | Items] = [
            Entries(
                "sys.modules",
                lambda: sys.modules,
                sys.modules.__setitem__,
                sys.modules.__delitem__,
                lambda key, value: key in names,
            ),
            *(module_entries(module) for module in modules.values()),
            *(class_entries(cls) for cls in classes),
            *(entries for label, (obj, also) in objects.items() for entries in object_entries(label, obj, also)),
        ]
        for label, mapping in (
            ("shell.events.callbacks", shell.events.callbacks),
            ("kernel.shell_handlers", getattr(kernel, "shell_handlers", None)),
            ("kernel.control_handlers", getattr(kernel, "control_handlers", None)),
        ):
            if type(mapping) is dict:
                self.namespaces.append(
                    Entries(
                        label,
                        lambda mapping=mapping: mapping,
                        mapping.__setitem__,
                        mapping.__delitem__,
                        lambda key, value: True,
                        drop_added=lambda value: True,
                    )
                )
        manager, prefilter = shell.input_transformer_manager, shell.prefilter_manager
        lists: dict[str, object] = {
            "input transformers (cleanup)": manager.cleanup_transforms,
            "input transformers (line)": manager.line_transforms,
            "input transformers (token)": manager.token_transformers,
            "input transformers (post)": shell.input_transformers_post,
            "AST transformers": shell.ast_transformers,
            "prefilter transformers": getattr(prefilter, "_transformers", None),
            "prefilter checkers": getattr(prefilter, "_checkers", None),
            **{f"{event} callbacks": callbacks for event, callbacks in shell.events.callbacks.items()},
        }
        self.namespaces += [Items(label, items) for label, items in lists.items() if type(items) is list]
        self.user_builtins = {name: value for name, value in self.user_ns.items() if hasattr(builtins, name)}
        self.user_builtins["__builtins__"] = self.user_ns.get("__builtins__", builtins)

    def names(self, builtin_names: Iterable[str], module_names: dict[str, str], fix: bool) -> list[str]:
        """The test's names that the user namespace no longer binds as at install: shadowed builtins and
        module names bound to something other than the module (put back if ``fix``)."""
        found = []
        ns = self.user_ns
        for name in ["__builtins__", *builtin_names]:
            current, original = ns.get(name, MISSING), self.user_builtins.get(name, MISSING)
            if not same(current, original):
                found.append(f"the name {name}")
                if fix and original is MISSING:
                    del ns[name]
                elif fix:
                    ns[name] = original
        for name, module_name in module_names.items():
            module, current = self.modules.get(module_name), ns.get(name, MISSING)
            if module is not None and current is not MISSING and current is not module:
                found.append(f"the name {name}")
                if fix:
                    ns[name] = module
        return found

    def check(self, trace: object, profile: object, fix: bool) -> list[str]:
        """Everything that differs from install, the trace and profile functions included (put back if ``fix``)."""
        found = []
        if trace is not self.trace:
            found.append("sys.settrace")
        if profile is not self.profile:
            found.append("sys.setprofile")
        for namespace in self.namespaces:
            found += namespace.check(fix)
        if fix:
            _settrace(self.trace)
            _setprofile(self.profile)
        return found


def install(class_name: str, module_names: list[str]) -> None:
    """Take the snapshot and define the class ``class_name`` through which the grader calls the guard.

    Its static methods ``before`` and ``after`` take ``(trace, profile, _, _, nonce, builtin_names,
    module_names)``: the trace and profile functions the call found (read, then switched off, in the
    call's own expression), two placeholders for the results of switching them off, the nonce to return,
    the builtins the test cell uses and the module names it uses (name → module).
    """
    guard = Guard(module_names)

    def step(fix: bool) -> Callable[..., str]:
        """The guard's call before a test cell (``fix``: put back what differs) or after it (only look)."""

        def call(
            trace: object,
            profile: object,
            _off: None,
            _also_off: None,
            nonce: str,
            builtin_names: list[str],
            module_names: dict[str, str],
        ) -> str:
            found = guard.names(builtin_names, module_names, fix=fix)
            found += guard.check(trace, profile, fix=fix)
            return nonce + _dumps(sorted(set(found)))

        return call

    before, after = step(fix=True), step(fix=False)

    cls = type(
        class_name,
        (),
        {
            "before": staticmethod(before),
            "after": staticmethod(after),
            "gettrace": staticmethod(_gettrace),
            "getprofile": staticmethod(_getprofile),
            "settrace": staticmethod(_settrace),
            "setprofile": staticmethod(_setprofile),
        },
    )
    holder = types.ModuleType(class_name)
    holder.cls = cls  # keeps the class alive: object.__subclasses__() holds weak references only
    sys.modules[class_name] = holder
