"""Authoring: notebooks are written as jupytext percent-format ``.py`` files.

A ``.py`` file under ``course/notebooks/<assignment>/`` is the one edited
source of a notebook: it diffs like code and carries the nbgrader roles of
its cells in short cell headers, so no nbgrader metadata is written by hand::

    # %% [markdown]
    # Prose, math ($f'(x)$), ...                 -> a locked (read-only) cell

    # %%
    import numpy as np                           -> a locked code cell

    # %% solution="central_difference"
    def central_difference(f, x, eps):           -> the student's answer cell
        ### BEGIN SOLUTION
        return (f(x + eps) - f(x - eps)) / (2 * eps)
        ### END SOLUTION

    # %% test="test_central_difference" points=2
    ...visible tests...                          -> an autograded test cell
    ### BEGIN HIDDEN TESTS
    ...hidden tests...
    ### END HIDDEN TESTS

    # %% [markdown] answer="why_v_shape" points=1
    # YOUR ANSWER HERE                           -> a manually graded answer

    # %% scratch=true
    # a free cell students may edit (not graded, not locked)

An answer cell may also say what the autograder lets it use (see
``grading.integrity.Policy``): ``allow="tensor,Tensor"`` (names of the reference
engine ``ad`` it may call; default none), ``deny="sigmoid,backward"``
(attributes it must not touch), ``exact=true`` (no complex-step tricks) and
``dunder_methods=true`` (may define ``__add__`` and friends in a class).
These go to ``metadata.autodiff`` and are read from the instructor's copy at
grading time, never from the student's.

``to_notebook`` turns such a file into an nbgrader source notebook with
schema-3 metadata, unique grade ids and points, and rejects mistakes (a test
without points, an answer cell without a solution region, a duplicate id,
unbalanced hidden-test markers) with a message naming the cell.
"""

from __future__ import annotations

import re
from pathlib import Path

import jupytext
import nbformat

ROLES = ("solution", "test", "answer", "scratch")
POLICY_KEYS = ("allow", "deny", "exact", "dunder_methods")
SCHEMA_VERSION = 3
_ID = re.compile(r"^[A-Za-z][A-Za-z0-9_\-]*$")


class AuthoringError(ValueError):
    """A notebook source breaks the authoring rules; the message names the cell."""


def _cell_name(path, index, cell):
    first = cell.source.strip().splitlines()[0] if cell.source.strip() else "(empty)"
    return f"{path}: cell {index} ({first[:50]!r})"


def _balanced(source, begin, end):
    depth = 0
    for line in source.splitlines():
        if begin in line:
            depth += 1
            if depth > 1:
                return False
        elif end in line:
            depth -= 1
            if depth < 0:
                return False
    return depth == 0


def _policy(options, name):
    from .grading.integrity import Policy

    def names(value):
        if isinstance(value, str):
            value = value.split(",")
        return {v.strip() for v in value if v.strip()}

    for flag in ("exact", "dunder_methods"):
        if flag in options and not isinstance(options[flag], bool):
            raise AuthoringError(f"{name}: {flag}= must be true or false")
    return Policy(allow=names(options.get("allow", ())), deny=names(options.get("deny", ())),
                  exact=options.get("exact", False),
                  dunder_methods=options.get("dunder_methods", False)).to_metadata()


def nbgrader_metadata(role, grade_id, points=None, cell_type="code"):
    """The schema-3 nbgrader metadata for a cell of ``role``."""
    md = {"schema_version": SCHEMA_VERSION, "grade_id": grade_id, "locked": False,
          "solution": False, "grade": False}
    if role == "solution":
        md["solution"] = True
    elif role == "test":
        md.update(grade=True, locked=True, points=points)
    elif role == "answer":
        md.update(grade=True, solution=True, points=points)
    elif role == "locked":
        md["locked"] = True
    return md


def to_notebook(path):
    """Read a percent-format ``.py`` notebook source and return an nbgrader
    source notebook (``nbformat.NotebookNode``) without outputs."""
    path = Path(path)
    nb = jupytext.read(path, fmt="py:percent")
    stem = path.stem
    seen = {}
    for index, cell in enumerate(nb.cells):
        md = cell.metadata
        name = _cell_name(path, index, cell)
        roles = [r for r in ROLES if r in md]
        if len(roles) > 1:
            raise AuthoringError(f"{name}: a cell has one role, got {roles}")
        role = roles[0] if roles else "locked"
        points = md.pop("points", None)
        grade_id = md.pop(role, None) if role != "locked" else f"{stem}-cell-{index:02d}"
        if role == "scratch":
            md.pop("scratch", None)
            grade_id = None
        policy = {k: md.pop(k) for k in POLICY_KEYS if k in md}
        unknown = set(md) - {"lines_to_next_cell", "tags"}
        if unknown:
            raise AuthoringError(f"{name}: unknown cell option(s) {sorted(unknown)}; "
                                 f"use one of {ROLES} and points=")
        md.pop("lines_to_next_cell", None)
        if role == "scratch":
            cell.id = f"scratch-{index:02d}"
            continue
        if not isinstance(grade_id, str) or not _ID.match(grade_id):
            raise AuthoringError(f"{name}: {role}= needs an id like \"central_difference\", "
                                 f"got {grade_id!r}")
        if grade_id in seen:
            raise AuthoringError(f"{name}: id {grade_id!r} is already used by cell {seen[grade_id]}")
        seen[grade_id] = index
        if role in ("test", "answer"):
            if not isinstance(points, (int, float)) or points <= 0:
                raise AuthoringError(f"{name}: a {role} cell needs points= (a positive number)")
        elif points is not None:
            raise AuthoringError(f"{name}: points= only belongs on test and answer cells")
        if role == "test" and cell.cell_type != "code":
            raise AuthoringError(f"{name}: a test cell must be a code cell")
        if role == "answer" and cell.cell_type != "markdown":
            raise AuthoringError(f"{name}: an answer cell must be a markdown cell")
        if role == "solution":
            if cell.cell_type != "code" or "### BEGIN SOLUTION" not in cell.source:
                raise AuthoringError(f"{name}: a solution cell is a code cell with a "
                                     "### BEGIN SOLUTION ... ### END SOLUTION region")
        if not _balanced(cell.source, "BEGIN SOLUTION", "END SOLUTION"):
            raise AuthoringError(f"{name}: unbalanced BEGIN/END SOLUTION markers")
        if not _balanced(cell.source, "BEGIN HIDDEN TESTS", "END HIDDEN TESTS"):
            raise AuthoringError(f"{name}: unbalanced BEGIN/END HIDDEN TESTS markers")
        if "HIDDEN TESTS" in cell.source and role != "test":
            raise AuthoringError(f"{name}: hidden tests belong in a test cell")
        if "BEGIN SOLUTION" in cell.source and role not in ("solution", "answer"):
            raise AuthoringError(f"{name}: a solution region needs a solution= cell")
        if policy and role != "solution":
            raise AuthoringError(f"{name}: {sorted(policy)} only belong on solution cells")
        if policy:
            md["autodiff"] = _policy(policy, name)
        md["nbgrader"] = nbgrader_metadata(role, grade_id, points, cell.cell_type)
        cell.id = grade_id  # stable ids keep the generated notebooks reproducible
    if not any(c.metadata.get("nbgrader", {}).get("grade") for c in nb.cells):
        raise AuthoringError(f"{path}: the notebook has no graded cell")
    nb.metadata = {
        "kernelspec": {"display_name": "Python 3 (ipykernel)", "language": "python",
                       "name": "python3"},
        "language_info": {"name": "python"},
    }
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    nbformat.validate(nb)
    return nb


def write_notebook(nb, path):
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, path)
