"""The class report's numbers from a grading record, without grading: how
failures are counted, and that anonymised output names nobody."""

from __future__ import annotations

import re

from autodiff_course.report import figures, render_html, summarise

NB = "nb.ipynb"


def _outcome(student, tests, errors=None, explanations=None, reasons=(), violations=()):
    return {"student": student, "score": sum(e for e, _ in tests.values()),
            "max_score": sum(p for _, p in tests.values()), "tests": tests,
            "explanations": explanations or {}, "errors": errors or {},
            "reasons": list(reasons), "violations": list(violations), "dropped_cells": 0,
            "seconds": 3.0, "cached": False}


GRADED = {"assignment": "a1", "problems": ["alice.smith: gradebook says 2.0, the grader 1.0"],
          "submissions": [
              _outcome("alice.smith", {f"{NB}:t1": [0.0, 1.0], f"{NB}:t2": [2.0, 2.0]},
                       errors={f"{NB}:t1": "TransposedError"},
                       explanations={f"{NB}:t1": "TransposedError: x is transposed"}),
              _outcome("bob", {f"{NB}:t1": [0.0, 1.0], f"{NB}:t2": [0.0, 2.0]},
                       errors={f"{NB}:t1": "NotImplementedError", f"{NB}:t2": "GraderFault"},
                       reasons=["nb.ipynb: a cell ran for more than 60 s (stopped)"],
                       violations=["nb.ipynb: answer of bob not run: import"]),
              # an older record without error types: the ename before the colon
              _outcome("carol", {f"{NB}:t1": [0.0, 1.0], f"{NB}:t2": [1.0, 2.0]},
                       explanations={f"{NB}:t1": "TransposedError: y is transposed",
                                     f"{NB}:t2": "KeyError: 'w'"}),
          ]}


def test_failures_are_counted_by_category():
    s = summarise(GRADED)
    found = {(d["test"], d["category"]): d["count"] for d in s["diagnoses"]}
    assert found == {(f"{NB}:t1", "transposed"): 2, (f"{NB}:t1", "not_written"): 1,
                     (f"{NB}:t2", "fault"): 1, (f"{NB}:t2", "error:KeyError"): 1}
    t2 = next(x for x in s["exercises"] if x["test"] == f"{NB}:t2")
    assert (t2["full"], t2["partial"], t2["none"]) == (1, 1, 1)


def test_anonymised_output_names_nobody():
    s = summarise(GRADED)
    page = render_html(s, figures(s))
    text = re.sub(r"data:image/png;base64,[A-Za-z0-9+/=]+", "", page) + repr(s)
    for name in ("alice", "smith", "bob", "carol"):
        assert not re.search(rf"\b{name}\b", text), name
    assert len(re.findall(r"<img [^>]*alt='[^']{20,}'", page)) == 4
    named = summarise(GRADED, names=True)
    assert "alice.smith: gradebook says" in named["problems"][0]
    assert {r["student"] for r in named["scores"]} == {"alice.smith", "bob", "carol"}
