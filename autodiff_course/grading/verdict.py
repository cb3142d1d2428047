"""The pass/fail decision of one test cell, and the one line that explains it.

The judge (``judge.py``) runs every test cell on the trusted side; its
outputs become the test cell's outputs. A test passes iff the judge ran it
to its end without an exception, i.e. its outputs hold no error.
"""

from __future__ import annotations

import nbformat


def error_output(ename, evalue):
    return nbformat.v4.new_output("error", ename=ename, evalue=evalue,
                                  traceback=[f"{ename}: {evalue}"])


def explanation(cell):
    """The one line saying why a test cell failed (the grading helper's
    sentence), or None if it raised nothing."""
    for out in cell.get("outputs", []):
        if out.get("output_type") == "error":
            text = " ".join((out.get("evalue") or "").split())  # unwrap
            return f"{out.get('ename')}: {text}" if text else str(out.get("ename"))
    return None


def error_name(cell):
    """The type name (``ename``) of the error a test cell raised, or None: the
    grading helper's category travels in it (``autodiff_ref.grading.category_of``)."""
    for out in cell.get("outputs", []):
        if out.get("output_type") == "error":
            return out.get("ename")
    return None


def decide(nb):
    """Score each test cell: its points if it holds no error, else 0.

    Returns ``{grade_id: [points earned, points]}``.
    """
    from ..jupyter import grade_id, is_test, points

    tests = {}
    for cell in nb.cells:
        if is_test(cell):
            worth = points(cell)
            errored = any(o.get("output_type") == "error" for o in cell.get("outputs", []))
            tests[grade_id(cell)] = [0.0 if errored else worth, worth]
    return tests
