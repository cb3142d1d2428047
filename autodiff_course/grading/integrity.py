"""Static screening of students' answer cells before they are graded.

The screen reports what in an answer cell goes beyond what an answer needs
(early, friendly feedback; see the end of this docstring for what it still
decides, and docs/grading-integrity.md):

* imports only of plain numerical modules (``numpy``, ``math``, ...);
* no name or attribute that starts with ``_`` (dunders, privates), and no
  frame or code introspection (``gi_frame``, ``f_back``, ``co_consts``...):
  these are the roads to ``sys.modules`` and builtins;
* no dynamic access to names or code: ``getattr``, ``setattr``, ``eval``,
  ``exec``, ``compile``, ``globals``, ``vars``, ``open``, ``get_ipython``...;
* attributes may be assigned only on ``self``/``ctx`` or as ``.data``/``.grad``
  (a training loop); everything else (``np.testing.x = ...``) is tampering;
* the grading helpers (``grading``) are off limits, and the reference engine
  (``ad``/``autodiff_ref``) may only be used through the names the exercise
  allows (``allow=``), never passed around as a value;
* per exercise: attribute names it must not call (``deny=``, e.g. the
  built-in ``sigmoid`` in a "write sigmoid" exercise), and ``exact=``: no
  complex numbers (the complex-step trick), so a derivative must come from a
  formula.

Since the tests run on the trusted side (``judge.py``), the screen is early
feedback: its findings are reported, and only a break of the exercise's own
policy (``DECIDING_RULES``: delegation to a denied name, the complex step
where the exact value is asked) makes the grader replace the answer by a
failing stub, because isolation cannot take those away everywhere (the
engine stays in kernels of notebooks that allow part of it; NumPy and
complex numbers stay in every kernel). See docs/grading-integrity.md.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass, field

ALLOWED_IMPORTS = {"numpy", "math", "functools", "itertools", "collections", "typing",
                   "dataclasses", "numbers", "operator"}
FORBIDDEN_NAMES = {
    "eval", "exec", "compile", "getattr", "setattr", "delattr", "globals", "locals",
    "vars", "open", "input", "breakpoint", "help", "memoryview", "get_ipython",
    "exit", "quit", "sys", "os", "builtins", "importlib", "inspect", "gc", "ctypes",
    "subprocess", "IPython", "display", "reload", "copyreg", "pickle", "marshal",
}
INTROSPECTION_ATTRS = {
    "f_back", "f_globals", "f_locals", "f_builtins", "f_code", "f_trace", "f_lasti",
    "co_consts", "co_code", "co_names", "co_varnames", "co_filename",
    "gi_frame", "gi_code", "gi_yieldfrom", "cr_frame", "cr_code", "cr_await",
    "ag_frame", "ag_code", "tb_frame", "tb_next", "with_traceback",
    "testing", "lib", "ctypeslib", "load", "frompyfunc",
}
COMPLEX_NAMES = {"complex", "complex64", "complex128", "complex256", "csingle", "cdouble",
                 "clongdouble", "imag", "real_if_close"}
ASSIGNABLE_ATTRS = {"data", "grad"}
ASSIGNABLE_OWNERS = {"self", "ctx"}
ENGINE_NAMES = {"ad", "autodiff_ref"}
# Names that hold modules in the course notebooks; an answer may use them only
# as ``np.something``, never as a value (``f(np)`` would let f patch numpy).
MODULE_NAMES = {"np", "numpy", "math", "plt", "matplotlib", "widgets", "ipywidgets"}
NUMPY_SUBMODULES = {"linalg", "random", "fft", "ma", "char", "emath", "polynomial", "rec",
                    "core", "exceptions", "dtypes", "strings", "typing", "matlib",
                    "matrixlib", "version", "f2py", "pyplot", "widgets"}
GRADING_NAMES = {"grading"}
DECIDING_RULES = {"delegation", "exact"}  # the rules whose break replaces the answer


@dataclass
class Policy:
    """What one exercise permits beyond the common rules."""

    allow: set = field(default_factory=set)  # ad.<name> the answer may use
    deny: set = field(default_factory=set)  # attribute names it must not touch
    exact: bool = False  # no complex numbers (a formula, not the complex step)
    dunder_methods: bool = False  # may define __add__ etc. in a class body

    @classmethod
    def from_metadata(cls, md):
        md = md or {}
        return cls(allow=set(md.get("allow", [])), deny=set(md.get("deny", [])),
                   exact=bool(md.get("exact", False)),
                   dunder_methods=bool(md.get("dunder_methods", False)))

    def to_metadata(self):
        md = {}
        if self.allow:
            md["allow"] = sorted(self.allow)
        if self.deny:
            md["deny"] = sorted(self.deny)
        if self.exact:
            md["exact"] = True
        if self.dunder_methods:
            md["dunder_methods"] = True
        return md


@dataclass
class Violation:
    line: int
    rule: str
    detail: str

    def __str__(self):
        return f"line {self.line}: {self.detail} [{self.rule}]"


def strip_magics(source):
    """IPython magics and shell escapes are not Python; an answer has no use for them."""
    lines, found = [], []
    for i, line in enumerate(source.splitlines(), 1):
        stripped = line.lstrip()
        if stripped.startswith(("%", "!")):
            found.append(Violation(i, "magic", f"IPython magic or shell command {stripped[:30]!r}"))
            lines.append("")
        else:
            lines.append(line)
    return "\n".join(lines), found


class _Screen(ast.NodeVisitor):
    def __init__(self, policy):
        self.policy = policy
        self.found = []
        self.class_depth = 0
        self.modules = set(MODULE_NAMES)
        self.callee_or_base = set()

    def flag(self, node, rule, detail):
        self.found.append(Violation(getattr(node, "lineno", 0), rule, detail))

    # --- imports
    def visit_Import(self, node):
        for alias in node.names:
            self._check_module(node, alias.name)
            if alias.asname:
                self._check_name(node, alias.asname)
            self.modules.add(alias.asname or alias.name.split(".")[0])
        self.generic_visit(node)

    def visit_ImportFrom(self, node):
        self._check_module(node, node.module or "")
        for alias in node.names:
            if alias.name == "*":
                self.flag(node, "import", "`import *` hides what is used")
            self._check_name(node, alias.asname or alias.name)
            if alias.name in NUMPY_SUBMODULES:
                self.modules.add(alias.asname or alias.name)
            if alias.name in INTROSPECTION_ATTRS:
                self.flag(node, "introspection", f"importing {alias.name!r}")

    def _check_module(self, node, module):
        if node.__class__ is ast.ImportFrom and node.level:
            self.flag(node, "import", "relative import")
            return
        root = module.split(".")[0]
        if root not in ALLOWED_IMPORTS:
            self.flag(node, "import", f"import of {module!r} (answers may import only "
                      f"{', '.join(sorted(ALLOWED_IMPORTS))})")
        for part in module.split(".")[1:]:
            if part.startswith("_") or part in INTROSPECTION_ATTRS:
                self.flag(node, "import", f"import of {module!r}")

    # --- names
    def _check_name(self, node, name):
        if name.startswith("_") and name != "_":
            self.flag(node, "private", f"the name {name!r} (names starting with _ are "
                      "reserved for the grader)")
        if name in FORBIDDEN_NAMES:
            self.flag(node, "forbidden-name", f"use of {name!r}")
        if self.policy.exact and name in COMPLEX_NAMES:
            self.flag(node, "exact", f"complex numbers ({name!r}): this exercise asks for "
                      "the exact derivative from a formula, not the complex-step trick")

    def visit_Name(self, node):
        self._check_name(node, node.id)
        if node.id in GRADING_NAMES:
            self.flag(node, "grading", "the grading helpers are for the tests, not answers")

    def visit_Constant(self, node):
        if self.policy.exact and isinstance(node.value, complex):
            self.flag(node, "exact", "a complex number literal: this exercise asks for "
                      "the exact derivative from a formula, not the complex-step trick")

    def visit_Attribute(self, node):
        attr = node.attr
        if attr.startswith("_"):
            self.flag(node, "private", f"the attribute {attr!r}")
        if attr in INTROSPECTION_ATTRS:
            self.flag(node, "introspection", f"the attribute {attr!r}")
        if attr in self.policy.deny:
            self.flag(node, "delegation", f"`.{attr}`: this exercise asks you to write it "
                      "yourself, not to call it")
        if self.policy.exact and attr in COMPLEX_NAMES:
            self.flag(node, "exact", f"complex numbers (.{attr}): this exercise asks for "
                      "the exact derivative from a formula")
        if isinstance(node.value, ast.Name) and node.value.id in ENGINE_NAMES:
            if attr in self.policy.allow and id(node) not in self.callee_or_base:
                self.flag(node, "module-value", f"`{node.value.id}.{attr}` may only be called "
                          "or used as a base class here")
            if attr not in self.policy.allow:
                allowed = ", ".join(f"ad.{a}" for a in sorted(self.policy.allow)) or "nothing"
                self.flag(node, "delegation", f"`{node.value.id}.{attr}`: this exercise asks "
                          "you to compute it yourself, not with the reference engine "
                          f"(allowed here: {allowed})")
            return  # the engine's name itself is fine in this position
        self.generic_visit(node)

    def visit_Call(self, node):
        self.callee_or_base.add(id(node.func))
        if isinstance(node.func, ast.Name) and node.func.id == "isinstance" and len(node.args) == 2:
            self.callee_or_base.add(id(node.args[1]))
        self.generic_visit(node)

    # --- assignments to attributes
    def _check_target(self, target):
        for t in ast.walk(target):
            if isinstance(t, ast.Attribute) and isinstance(t.ctx, (ast.Store, ast.Del)):
                owner = t.value.id if isinstance(t.value, ast.Name) else None
                if t.attr not in ASSIGNABLE_ATTRS and owner not in ASSIGNABLE_OWNERS:
                    self.flag(t, "attribute-assignment",
                              f"assigning `{ast.unparse(t)}`: an answer may set attributes "
                              "only on self or ctx (or .data / .grad)")
            if isinstance(t, ast.Subscript) and isinstance(t.ctx, (ast.Store, ast.Del)):
                base = t.value
                while isinstance(base, (ast.Attribute, ast.Subscript)):
                    base = base.value
                if isinstance(base, ast.Name) and base.id in ENGINE_NAMES | GRADING_NAMES:
                    self.flag(t, "attribute-assignment", f"changing `{ast.unparse(t)}`")

    def visit_Assign(self, node):
        for target in node.targets:
            self._check_target(target)
        self.generic_visit(node)

    def visit_AugAssign(self, node):
        self._check_target(node.target)
        self.generic_visit(node)

    def visit_AnnAssign(self, node):
        self._check_target(node.target)
        self.generic_visit(node)

    def visit_Delete(self, node):
        for target in node.targets:
            self._check_target(target)
        self.generic_visit(node)

    # --- modules passed around as values: f(np), x = ad, g(np.linalg)
    def generic_visit(self, node):
        for child in ast.iter_child_nodes(node):
            if isinstance(node, ast.Attribute):
                continue  # np.exp: the module is only looked into
            if isinstance(child, ast.Name) and child.id in ENGINE_NAMES:
                self.flag(child, "delegation", f"using `{child.id}` as a value: the reference "
                          "engine may only be used as ad.<allowed name>")
            elif isinstance(child, ast.Name) and child.id in self.modules \
                    and isinstance(child.ctx, ast.Load):
                self.flag(child, "module-value", f"using the module `{child.id}` as a value; "
                          f"use {child.id}.<function>(...) directly")
            elif isinstance(child, ast.Attribute) and child.attr in NUMPY_SUBMODULES \
                    and isinstance(child.value, ast.Name) and child.value.id in self.modules:
                self.flag(child, "module-value", f"using the module `{ast.unparse(child)}` as "
                          "a value; call its functions directly")
        super().generic_visit(node)

    # --- definitions
    def _check_def(self, node):
        name = node.name
        is_dunder = name.startswith("__") and name.endswith("__")
        if is_dunder and self.class_depth and self.policy.dunder_methods:
            pass
        elif name.startswith("_"):
            self.flag(node, "private", f"defining {name!r} (names starting with _ are "
                      "reserved for the grader)")
        if name in FORBIDDEN_NAMES or name in ENGINE_NAMES | GRADING_NAMES:
            self.flag(node, "forbidden-name", f"defining {name!r}")
        args = node.args if hasattr(node, "args") else None
        if args is not None:
            for a in args.posonlyargs + args.args + args.kwonlyargs + \
                    [x for x in (args.vararg, args.kwarg) if x]:
                self._check_name(a, a.arg)

    def visit_FunctionDef(self, node):
        self._check_def(node)
        depth, self.class_depth = self.class_depth, 0
        self.generic_visit(node)
        self.class_depth = depth

    visit_AsyncFunctionDef = visit_FunctionDef

    def visit_Lambda(self, node):
        for a in node.args.args + node.args.kwonlyargs:
            self._check_name(a, a.arg)
        self.generic_visit(node)

    def visit_ClassDef(self, node):
        self.callee_or_base.update(id(b) for b in node.bases)
        self._check_def(node)
        self.class_depth += 1
        self.generic_visit(node)
        self.class_depth -= 1

    def visit_Global(self, node):
        for name in node.names:
            self._check_name(node, name)

    visit_Nonlocal = visit_Global


def screen(source, policy=None):
    """The list of rule violations in one answer cell's ``source`` (empty: clean)."""
    policy = policy or Policy()
    code, found = strip_magics(source)
    try:
        tree = ast.parse(code)
    except SyntaxError:
        return found  # a syntax error fails on its own when the cell runs
    visitor = _Screen(policy)
    visitor.visit(tree)
    seen, unique = set(), []
    for v in found + visitor.found:
        if (v.line, v.rule, v.detail) not in seen:
            seen.add((v.line, v.rule, v.detail))
            unique.append(v)
    return unique
