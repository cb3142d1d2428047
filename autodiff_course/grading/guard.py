"""The runtime guard the autograder injects into a submission's kernel.

``arm()`` runs in a cell the autograder puts *before* any student code and
records the identity of everything a test's verdict depends on: the
functions of NumPy, math, builtins and the reference engine (grading helpers
included), the classes' methods, ``sys.modules``, import hooks, trace
functions, and IPython's exception handling, hooks and transformers.
``check(label, token)`` runs at the end of every test cell: if anything was
replaced it raises ``TamperingDetected`` naming what changed; otherwise it
prints the completion line (``verdict.completion_line``). The
token is random per grading run and appears in the kernel only when that
test cell runs, so a test counts only if it ran to its last line with the
machinery intact (a swallowed exception or a no-op assertion leaves no line).

Student code cannot reach this module: the static screen forbids imports
other than numerical modules, names with a leading underscore, ``getattr``
and frame introspection (see ``integrity.py``).
"""

from __future__ import annotations

import builtins
import sys

from .verdict import completion_line

_WATCHED_MODULES = ("builtins", "math", "numpy", "numpy.testing", "numpy.linalg",
                    "numpy.random", __name__)
_WATCHED_PACKAGES = ("autodiff_ref",)  # every loaded module of these is watched


def _watched_modules():
    """The fixed list plus every loaded module of the reference engine
    (computed, so a new module of the engine is watched too)."""
    engine = sorted(name for name in sys.modules
                    if name.split(".")[0] in _WATCHED_PACKAGES)
    return list(_WATCHED_MODULES) + engine
_SHELL_ATTRS = ("showtraceback", "_showtraceback", "showsyntaxerror", "run_cell",
                "run_cell_async", "run_ast_nodes", "run_code", "custom_exceptions",
                "CustomTB", "InteractiveTB", "SyntaxTB", "excepthook", "ex")
_state: dict = {}


class TamperingDetected(AssertionError):
    """The test machinery was changed by code in the notebook."""


def _module_table():
    table = {}
    for name in _watched_modules():
        module = sys.modules.get(name)
        if module is None:
            continue
        table[("module", name)] = module
        for attr, value in list(vars(module).items()):
            table[(name, attr)] = value
            if isinstance(value, type) and value.__module__.startswith(("autodiff_ref", "numpy")):
                for k, v in list(vars(value).items()):
                    table[(f"{name}.{attr}", k)] = v
    return table


def _shell_table():
    table = {}
    try:
        shell = get_ipython()  # noqa: F821  (defined in an IPython kernel)
    except NameError:
        return table
    for attr in _SHELL_ATTRS:
        table[("shell", attr)] = getattr(shell, attr, None)
    for event, callbacks in shell.events.callbacks.items():
        table[("shell.events", event)] = tuple(callbacks)
    for name in ("ast_transformers", "input_transformers_post", "input_transformers_cleanup"):
        table[("shell", name)] = tuple(getattr(shell, name, ()))
    table[("shell", "type")] = type(shell)
    return table


def _sys_table():
    return {
        ("sys", "excepthook"): sys.excepthook,
        ("sys", "displayhook"): sys.displayhook,
        ("sys", "trace"): sys.gettrace(),
        ("sys", "profile"): sys.getprofile(),
        ("sys", "meta_path"): tuple(sys.meta_path),
        ("sys", "path_hooks"): tuple(sys.path_hooks),
        ("sys", "stdout"): sys.stdout,
        ("sys", "stderr"): sys.stderr,
    }


def _table():
    return {**_module_table(), **_shell_table(), **_sys_table()}


def arm():
    """Record the machinery as it is before any student code runs."""
    if _state:
        return
    _state["table"] = _table()
    _state["write"] = sys.stdout.write
    _state["flush"] = sys.stdout.flush
    _state["print"] = builtins.print


TRUSTED_MODULES = ("IPython", "ipykernel", "ipywidgets", "matplotlib", "matplotlib_inline",
                   "jupyter_client", "comm", "traitlets", "_distutils_hack", "setuptools",
                   "importlib", "zipimport", "six", "numpy", "autodiff_ref", "autodiff_course")


def _trusted(obj):
    module = getattr(obj, "__module__", None)
    if module is None:
        owner = getattr(obj, "__self__", None)
        module = type(obj if owner is None else owner).__module__
    return isinstance(module, str) and module.split(".")[0] in TRUSTED_MODULES


def _same(a, b):
    """Identity, except that a bound method is rebuilt at each attribute access."""
    if a is b:
        return True
    func_a, func_b = getattr(a, "__func__", None), getattr(b, "__func__", None)
    return func_a is not None and func_a is func_b and \
        getattr(a, "__self__", None) is getattr(b, "__self__", None)


def changes():
    """What differs from the armed snapshot: objects replaced or removed, and
    hooks (IPython events, import hooks) added by code outside trusted libraries."""
    before, now = _state["table"], _table()
    changed = []
    for key, value in before.items():
        label = ".".join(key)
        if key not in now:
            changed.append(f"{label} was removed")
        elif isinstance(value, tuple) and isinstance(now[key], tuple):
            old = {id(v) for v in value}
            if any(id(v) not in {id(w) for w in now[key]} for v in value):
                changed.append(f"{label}: an entry was removed")
            changed += [f"{label}: {v!r} was added" for v in now[key]
                        if id(v) not in old and not _trusted(v)]
        elif not _same(now[key], value):
            changed.append(f"{label} was replaced")
    for key in now.keys() - before.keys():
        if key[0].startswith("shell") and now[key]:
            changed += [f"{'.'.join(key)}: {v!r} was added" for v in now[key] if not _trusted(v)]
    return sorted(changed)


def check(label, token):
    """End of a test cell: fail on tampering, else print the completion line."""
    found = changes()
    if found:
        raise TamperingDetected(
            "the autograder found the test machinery changed by code in this notebook: "
            + "; ".join(found[:10]) + (" ..." if len(found) > 10 else ""))
    _state["write"](f"\n{completion_line(label, token)}\n")
    _state["flush"]()


def check_clean():
    """Start of a test cell: fail at once if the machinery was already changed."""
    found = changes()
    if found:
        raise TamperingDetected(
            "the autograder found the test machinery changed by code in this notebook: "
            + "; ".join(found[:10]) + (" ..." if len(found) > 10 else ""))
