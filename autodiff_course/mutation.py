"""Mutation testing of the autograder's tests: ``autodiff-course mutate``.

Each solution region is mutated one small change at a time (an operator
swapped, a constant nudged, a transpose or a minus sign dropped, an axis or
``keepdims`` changed, a term of a sum dropped, two arguments swapped). A
mutant is *killed* when the exercise's test cell (hidden tests included)
fails on it. Survivors are either tests too weak to see the change, or
mutants that do not change behaviour; the second kind must be listed, with
the reason, in ``course/mutants/<assignment>.json``.

All mutants of a notebook run in one kernel (``jupyter.KernelSession``): the
notebook's own cells run once, then for each mutant its answer cell and test
cell run and the original answer is restored.
"""

from __future__ import annotations

import ast
import copy
import json
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

from .jupyter import KernelSession, grade_id, is_answer, is_grade, is_test

SWAPS = {ast.Add: ast.Sub, ast.Sub: ast.Add, ast.Mult: ast.Div, ast.Div: ast.Mult,
         ast.Pow: ast.Mult, ast.MatMult: ast.Mult, ast.FloorDiv: ast.Div,
         ast.Lt: ast.LtE, ast.LtE: ast.Lt, ast.Gt: ast.GtE, ast.GtE: ast.Gt,
         ast.Eq: ast.NotEq, ast.NotEq: ast.Eq}


@dataclass
class Mutant:
    exercise: str
    line: str
    change: str
    source: str
    killed: bool | None = None

    @property
    def key(self):
        return f"{self.exercise} | {self.line.strip()} | {self.change}"


def _region(source):
    """Line numbers (1-based) inside the BEGIN/END SOLUTION markers."""
    inside, lines = False, set()
    for i, line in enumerate(source.splitlines(), 1):
        if "BEGIN SOLUTION" in line:
            inside = True
        elif "END SOLUTION" in line:
            inside = False
        elif inside:
            lines.add(i)
    return lines


def mutants(exercise, source):
    """Every single-change mutant of the solution region of ``source``."""
    tree = ast.parse(source)
    region = _region(source)
    lines = source.splitlines()
    found = []

    def emit(node, change, mutate):
        new_tree = copy.deepcopy(tree)
        target = next(n for n in ast.walk(new_tree) if _same_place(n, node))
        if mutate(target, new_tree) is False:
            return
        try:
            text = ast.unparse(ast.fix_missing_locations(new_tree))
        except Exception:  # noqa: BLE001  (an impossible mutant)
            return
        found.append(Mutant(exercise, lines[node.lineno - 1], change, text))

    for node in ast.walk(tree):
        if getattr(node, "lineno", None) not in region:
            continue
        if isinstance(node, ast.BinOp) and type(node.op) in SWAPS:
            new = SWAPS[type(node.op)]
            emit(node, f"{type(node.op).__name__} -> {new.__name__}",
                 lambda t, _, new=new: setattr(t, "op", new()))
            for keep in ("left", "right"):
                emit(node, f"drop the {'right' if keep == 'left' else 'left'} operand of "
                     f"{type(node.op).__name__}", lambda t, tr, keep=keep: _replace(tr, t, getattr(t, keep)))
        if isinstance(node, ast.Compare) and type(node.ops[0]) in SWAPS:
            new = SWAPS[type(node.ops[0])]
            emit(node, f"{type(node.ops[0]).__name__} -> {new.__name__}",
                 lambda t, _, new=new: t.ops.__setitem__(0, new()))
        if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)) \
                and not isinstance(node.value, bool):
            for new in {node.value + 1, 0 if node.value else 1, -node.value} - {node.value}:
                emit(node, f"constant {node.value!r} -> {new!r}",
                     lambda t, _, new=new: setattr(t, "value", new))
        if isinstance(node, ast.Constant) and isinstance(node.value, bool):
            emit(node, f"{node.value} -> {not node.value}",
                 lambda t, _: setattr(t, "value", not t.value))
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
            emit(node, "drop a minus sign", lambda t, tr: _replace(tr, t, t.operand))
        if isinstance(node, ast.Attribute) and node.attr == "T":
            emit(node, "drop a transpose (.T)", lambda t, tr: _replace(tr, t, t.value))
        if isinstance(node, ast.keyword) and node.arg in ("axis", "keepdims") and \
                isinstance(node.value, ast.Constant):
            v = node.value.value
            new = (not v) if isinstance(v, bool) else (None if v is not None else 0)
            if isinstance(v, int) and not isinstance(v, bool):
                new = 1 - v if v in (0, 1) else 0
            emit(node, f"{node.arg}={v!r} -> {new!r}",
                 lambda t, _, new=new: setattr(t.value, "value", new))
        if isinstance(node, ast.Call) and len(node.args) == 2 and \
                not any(isinstance(a, ast.Starred) for a in node.args):
            emit(node, "swap the two arguments",
                 lambda t, _: t.args.reverse())
    return found


def _same_place(a, b):
    return type(a) is type(b) and all(getattr(a, k, None) == getattr(b, k, None)
                                      for k in ("lineno", "col_offset", "end_lineno",
                                                "end_col_offset"))


def _replace(tree, old, new):
    for parent in ast.walk(tree):
        for name, value in ast.iter_fields(parent):
            if value is old:
                setattr(parent, name, new)
                return True
            if isinstance(value, list) and any(v is old for v in value):
                value[[id(v) for v in value].index(id(old))] = new
                return True
    return False


# ------------------------------------------------------------- running


@dataclass
class Report:
    notebook: str
    mutants: list = field(default_factory=list)

    @property
    def killed(self):
        return [m for m in self.mutants if m.killed]

    @property
    def survivors(self):
        return [m for m in self.mutants if not m.killed]


def sample(found, per_exercise, always=()):
    """A fixed subset of ``found``: for each exercise the ``per_exercise``
    mutants whose keys hash lowest (the same ones on every run), plus every
    mutant whose key is in ``always`` (the documented equivalents)."""
    import hashlib

    def rank(m):
        return hashlib.sha256(m.key.encode()).hexdigest()

    chosen = []
    for exercise in dict.fromkeys(m.exercise for m in found):
        mine = sorted((m for m in found if m.exercise == exercise), key=rank)
        chosen += [m for i, m in enumerate(mine) if i < per_exercise or m.key in always]
    return chosen


def run_notebook(path, timeout=30, log=lambda *a: None, choose=None):
    """Mutate every solution region of the source notebook ``path`` (or the
    mutants ``choose(mutants)`` returns, e.g. a ``sample``)."""
    nb = nbformat.read(path, as_version=4)
    report = Report(str(path))
    cells = nb.cells
    kernel = KernelSession(Path(path).parent, timeout)

    def setup():
        kernel.run("import matplotlib\nmatplotlib.use('agg')")
        for cell in cells:
            if cell.cell_type == "code" and not is_grade(cell):
                kernel.run(cell.source.replace("%matplotlib inline", ""))

    kernel.start()
    try:
        setup()
        for i, cell in enumerate(cells):
            if not is_answer(cell):
                continue
            test = next((c for c in cells[i + 1:] if is_test(c)), None)
            if test is None:
                continue
            found = mutants(grade_id(cell), cell.source)
            for m in (choose(found) if choose else found):
                ok = kernel.run(m.source)
                passed = kernel.run(test.source) if ok is not None else None
                if ok is None or passed is None:  # a mutant that hangs: killed by the timeout
                    setup()  # the session was restarted: run the notebook's cells again
                    m.killed = True
                else:
                    m.killed = not passed
                    kernel.run(cell.source)  # restore the right answer
                report.mutants.append(m)
                log(f"{'killed  ' if m.killed else 'SURVIVED'} {m.key}")
    finally:
        kernel.stop()
    return report


def equivalent_mutants(course, assignment):
    """The documented equivalent mutants of an assignment: key -> reason."""
    path = Path(course) / "mutants" / f"{assignment}.json"
    return json.loads(path.read_text()) if path.exists() else {}
