"""The layering of the two packages (docs/architecture.md), checked on the
source: imports flow one way, one home per idea."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
PACKAGES = ("autodiff_ref", "autodiff_course")


def _module_name(path):
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imports():
    """module -> set of package modules it imports (at any depth in the file)."""
    modules = {_module_name(p): p for pkg in PACKAGES for p in (REPO / pkg).rglob("*.py")}
    graph = {}
    for name, path in modules.items():
        is_package = path.name == "__init__.py"
        found = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                if node.level:
                    base = name.split(".")
                    base = base[:len(base) - node.level + (1 if is_package else 0)]
                    target = ".".join(base + ([node.module] if node.module else []))
                else:
                    target = node.module or ""
                # `from pkg import module` imports that module (and runs pkg's
                # __init__, which is its own, smaller concern)
                candidates = [f"{target}.{a.name}" if f"{target}.{a.name}" in modules
                              else target for a in node.names]
            elif isinstance(node, ast.Import):
                candidates = [a.name for a in node.names]
            else:
                continue
            found |= {c for c in candidates if c in modules and c != name}
        graph[name] = found
    return graph


def _cycles(graph):
    """Strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on, out, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = set()
            while True:
                w = stack.pop()
                on.discard(w)
                comp.add(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(comp)

    for v in graph:
        if v not in index:
            visit(v)
    return out


def test_the_only_import_circle_is_tensor_and_ops():
    """Tensor operators call the ops, the ops are Functions that make Tensors:
    that circle (through function.py) is the only one in either package."""
    natural = {"autodiff_ref.tensor", "autodiff_ref.function", "autodiff_ref.ops"}
    cycles = _cycles(_imports())
    assert [c for c in cycles
            if not c <= natural | {m for m in c if m.startswith("autodiff_ref.ops.")}] == []
    assert len(cycles) <= 1


def test_nothing_imports_the_cli():
    graph = _imports()
    importers = [m for m, targets in graph.items() if "autodiff_course.cli" in targets]
    assert importers in ([], ["autodiff_course.__main__"])  # `python -m autodiff_course`


def test_the_engine_walk_imports_nothing_of_the_package():
    assert _imports()["autodiff_ref.engine"] == set()


@pytest.mark.parametrize("module", ["autodiff_course.build", "autodiff_course.mutation",
                                    "autodiff_course.grading.submission",
                                    "autodiff_course.grading.grade",
                                    "autodiff_course.grading.judge",
                                    "autodiff_course.grading.channel",
                                    "autodiff_course.grading.remote"])
def test_only_the_jupyter_module_talks_to_kernels(module):
    source = (REPO / (module.replace(".", "/") + ".py")).read_text()
    tree = ast.parse(source)
    names = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    names |= {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
    assert not names & {"jupyter_client", "nbclient", "queue", "zmq"}, names


def test_cell_roles_come_from_nbgrader():
    """One way of reading a cell's nbgrader role: ``jupyter.is_*`` on top of
    ``nbgrader.utils``; no module reads the metadata flags itself."""
    offenders = []
    for pkg in PACKAGES:
        for path in (REPO / pkg).rglob("*.py"):
            if path.name in ("jupyter.py", "authoring.py"):  # authoring writes them
                continue
            text = path.read_text()
            for flag in ('get("grade")', 'get("solution")', "get('grade')", '_is(cell'):
                if flag in text:
                    offenders.append(f"{path.relative_to(REPO)}: {flag}")
    assert offenders == []


def test_the_nbgrader_config_imports_only_the_record_module():
    config = (REPO / "course" / "nbgrader_config.py").read_text()
    imported = {n.module for n in ast.walk(ast.parse(config))
                if isinstance(n, ast.ImportFrom) and n.module}
    assert {m for m in imported if m.startswith("autodiff")} == {"autodiff_course.grading.record"}
    graph = _imports()
    # the record module pulls in nothing else of ours but the languages of
    # feedback, which loads no grading machinery either
    assert graph["autodiff_course.grading.record"] <= {"autodiff_course.grading.language",
                                                     "autodiff_course.editions"}
    assert graph["autodiff_course.grading.language"] <= {
        "autodiff_ref.i18n", "autodiff_course.jupyter", "autodiff_course.translation",
        "autodiff_course.editions"}
    assert graph["autodiff_course.editions"] <= {
        "autodiff_course.jupyter", "autodiff_course.translation"}
