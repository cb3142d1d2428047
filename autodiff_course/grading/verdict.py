"""The pass/fail decision of one test cell, and the completion line it rests on.

A test cell counts only if it raised nothing and printed its completion line
``AUTODIFF-GRADER PASS <grade id> <token>`` (``completion_line``), which the
guard prints after the cell's last check; the token is random per run. This
module writes that format once: the guard prints it, ``decide`` looks for it.
"""

from __future__ import annotations

# Imported by the guard inside the student's kernel: keep the imports of this
# module light (the notebook helpers are imported where they are used).

PASS_PREFIX = "AUTODIFF-GRADER PASS"


def completion_line(label, token):
    return f"{PASS_PREFIX} {label} {token}"


def error_output(ename, evalue):
    import nbformat

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


def decide(nb, token):
    """Score each test cell; strip the completion lines; fail tests without one.

    Returns ``{grade_id: [points earned, points]}``.
    """
    from ..jupyter import grade_id, is_test, points

    tests = {}
    for cell in nb.cells:
        if not is_test(cell):
            continue
        gid = grade_id(cell)
        line = completion_line(gid, token)
        completed = False
        for out in cell.outputs:
            if out.get("output_type") == "stream" and line in out.get("text", ""):
                completed = True
                out["text"] = out["text"].replace(f"\n{line}\n", "").replace(line, "")
        cell.outputs = [o for o in cell.outputs
                        if not (o.get("output_type") == "stream" and not o.get("text"))]
        errored = any(o.get("output_type") == "error" for o in cell.outputs)
        worth = points(cell)
        if not completed and not errored:
            cell.outputs.append(error_output(
                "GraderVerdict", "this test did not run to its end (its completion check "
                "is missing): the test machinery was bypassed or its output suppressed"))
            errored = True
        tests[gid] = [0.0 if errored else worth, worth]
    return tests
