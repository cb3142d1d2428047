"""What the class got wrong: ``autodiff-course report <assignment>``.

Reads what ``autodiff-course grade`` left in ``grading-reports/<assignment>/
report.json`` (every submission's outcome: points per test, the error type
and one-line explanation of each failed test, faults, integrity violations,
run time) and the answers in ``submitted/``, and writes into the same folder

* ``class-report.html``: one self-contained page (figures embedded as PNG
  data, each with alt text) to open in any browser, no server;
* ``class-report.json``: every number of the page;
* ``class-scores.csv``, ``class-exercises.csv``, ``class-diagnoses.csv``,
  ``class-similarity.csv``: the same numbers as tables.

Students are named only with ``names=True`` (and the files are then called
``class-report-named.html`` and so on); otherwise each gets a pseudonym
("student 07") that is the same in every file of one report.

A failed test is counted under one *category*: the grading helper's
(``autodiff_ref.grading.category_of`` reads it from the error's type, never
from the English sentence), ``not_written`` for an untouched stub, ``fault``
when the grader stopped the run (time, memory, output), and otherwise the
type of the exception (``error:NameError``).
"""

from __future__ import annotations

import base64
import csv
import hashlib
import html
import io
import json
import statistics
from collections import Counter
from pathlib import Path

from .grading.grade import REPORT_DIR

# What the report calls each category (the codes come from autodiff_ref.grading).
LABELS = {
    "not_written": "not written yet",
    "returned_nothing": "returned nothing (None)",
    "not_an_array": "not a number or an array",
    "not_finite": "NaN or infinity",
    "wrong_shape": "wrong shape",
    "transposed": "transposed",
    "missing_broadcast_sum": "missing the sum over a broadcast axis",
    "needs_reshape": "right values, wrong shape",
    "wrong_sign": "wrong sign",
    "ignores_upstream": "ignores the upstream gradient",
    "constant_factor": "off by a constant factor",
    "not_exact": "close but not exact",
    "wrong_values": "wrong values",
    "wrong_count": "wrong number of gradients",
    "out_of_bounds": "outside the expected bound",
    "missing_paths": "misses the contribution of some paths (= instead of +=)",
    "check_failed": "failed one of the test's own checks",
    "fault": "stopped by the grader (time, memory or output limit)",
}
def file_name(name, names=False):
    """A report file's name; with students named it says so ("-named"), so a
    named report never replaces the anonymised one you may share."""
    stem, dot, ext = name.partition(".")
    return f"{stem}-named{dot}{ext}" if names else name


def label(code):
    if code.startswith("error:"):
        return f"raised {code[6:]}"
    return LABELS.get(code, code)


def category(outcome, test):
    """The category code of the failed ``test`` of one submission's outcome."""
    from autodiff_ref.grading import category_of

    ename = outcome.get("errors", {}).get(test)
    if ename is None:  # a report written before the error types were recorded
        ename = (outcome.get("explanations", {}).get(test) or "").split(":", 1)[0] or None
    if ename == "GraderFault":
        return "fault"
    return category_of(ename) or f"error:{ename or 'unknown'}"


def pseudonyms(students):
    """``{student: "student 07"}``: numbered in the order of a hash of the id, so
    the numbers do not follow the alphabet of the names."""
    order = sorted(students, key=lambda s: hashlib.sha256(s.encode()).hexdigest())
    width = max(2, len(str(len(order))))
    return {s: f"student {i:0{width}d}" for i, s in enumerate(order, 1)}


def load(course, assignment):
    path = Path(course) / REPORT_DIR / assignment / "report.json"
    if not path.exists():
        from .course import CourseError

        raise CourseError(f"{path} does not exist: grade the assignment first "
                          f"(`autodiff-course grade {assignment}`).")
    return json.loads(path.read_text())


def _scrubber(alias, names):
    """Replace every student id in a free text (a grading problem, a fault) by
    its pseudonym; the identity if students are named."""
    import re

    if names or not alias:
        return lambda text: text
    pattern = re.compile(r"(?<![\w.-])(" + "|".join(
        re.escape(s) for s in sorted(alias, key=len, reverse=True)) + r")(?![\w-])")
    return lambda text: pattern.sub(lambda m: alias[m.group(1)], text)


def summarise(graded, names=False, pairs=()):
    """Every number of the report, from ``report.json``'s content (and the
    similar pairs); students named only with ``names``."""
    subs = graded["submissions"]
    everyone = {s["student"] for s in subs} | {x for p in pairs for x in (p.a, p.b)}
    alias = {s: s for s in everyone} if names else pseudonyms(everyone)
    scrub = _scrubber(alias, names)
    n = len(subs)
    tests = sorted({t for s in subs for t in s["tests"]})
    scores = sorted(({"student": alias[s["student"]], "score": s["score"],
                      "max_score": s["max_score"], "seconds": s["seconds"]} for s in subs),
                    key=lambda r: r["student"])
    exercises, diagnoses = [], []
    for test in tests:
        points = max(s["tests"][test][1] for s in subs if test in s["tests"])
        earned = [s["tests"].get(test, [0.0, points])[0] for s in subs]
        full = sum(e >= points for e in earned)
        none = sum(e <= 0 for e in earned)
        exercises.append({"test": test, "points": points, "full": full,
                          "partial": n - full - none, "none": none,
                          "full_fraction": full / n, "partial_fraction": (n - full - none) / n,
                          "none_fraction": none / n})
        found = Counter()
        example = {}
        for s in sorted(subs, key=lambda s: alias[s["student"]]):
            if s["tests"].get(test, [0, 1])[0] < s["tests"].get(test, [0, 1])[1]:
                code = category(s, test)
                found[code] += 1
                example.setdefault(code, (alias[s["student"]],
                                          scrub(s.get("explanations", {}).get(test, ""))))
        for code, count in sorted(found.items(), key=lambda kv: (-kv[1], kv[0])):
            diagnoses.append({"test": test, "category": code, "label": label(code),
                              "count": count, "fraction": count / n,
                              "example_student": example[code][0],
                              "example": example[code][1]})
    faults = [{"student": alias[s["student"]], "reason": scrub(r)}
              for s in subs for r in s["reasons"]]
    violations = [{"student": alias[s["student"]], "violation": scrub(v)}
                  for s in subs for v in s["violations"]]
    dropped = [{"student": alias[s["student"]], "cells": s["dropped_cells"]}
               for s in subs if s["dropped_cells"]]
    values = [s["score"] for s in subs]
    seconds = [s["seconds"] for s in subs if not s.get("cached")]
    return {
        "assignment": graded["assignment"], "students": n, "named": bool(names),
        "max_score": max((s["max_score"] for s in subs), default=0),
        "score_mean": statistics.fmean(values) if values else 0.0,
        "score_median": statistics.median(values) if values else 0.0,
        "scores": scores, "exercises": exercises, "diagnoses": diagnoses,
        "faults": faults, "violations": violations, "dropped_cells": dropped,
        "problems": [scrub(p) for p in graded.get("problems", [])],
        "run_seconds": {"graded_now": len(seconds),
                        "median": statistics.median(seconds) if seconds else None,
                        "max": max(seconds) if seconds else None,
                        "total": round(sum(seconds), 2)},
        "similar_pairs": [{"exercise": p.exercise, "a": alias[p.a], "b": alias[p.b],
                           "similarity_a": p.similarity_a,
                           "similarity_b": p.similarity_b, "tokens": p.tokens,
                           "code_a": p.code_a, "code_b": p.code_b,
                           "spans_a": p.spans_a, "spans_b": p.spans_b} for p in pairs],
    }


# ------------------------------------------------------------- figures


def _png(fig):
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=96, bbox_inches="tight")
    plt.close(fig)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def figures(summary):
    """``[(title, data URI, alt text)]`` of the report's plots."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    out = []
    scores = [r["score"] for r in summary["scores"]]
    top = summary["max_score"] or 1
    fig, ax = plt.subplots(figsize=(6, 3))
    ax.hist(scores, bins=np.arange(-0.5, top + 1.5, 1.0), color="#4c72b0", edgecolor="white")
    ax.set_xlabel(f"score (of {top:g})")
    ax.set_ylabel("students")
    ax.set_title("Score distribution")
    out.append(("Score distribution", _png(fig),
                f"Histogram of the scores of {summary['students']} students out of {top:g}: "
                f"mean {summary['score_mean']:.2f}, median {summary['score_median']:g}."))

    ex = summary["exercises"]
    if ex:
        names = [e["test"].split(":", 1)[-1] for e in ex]
        fig, ax = plt.subplots(figsize=(7, 0.45 * len(ex) + 1.2))
        left = np.zeros(len(ex))
        for key, colour, what in (("full", "#55a868", "full credit"),
                                  ("partial", "#dd8452", "partial credit"),
                                  ("none", "#c44e52", "no credit")):
            vals = np.array([e[f"{key}_fraction"] for e in ex]) * 100
            ax.barh(names, vals, left=left, color=colour, label=what)
            left += vals
        ax.invert_yaxis()
        ax.set_xlabel("% of students")
        ax.legend(loc="lower right", fontsize=8)
        ax.set_title("Credit per test")
        alt = "; ".join(f"{n}: {e['full_fraction']:.0%} full, {e['partial_fraction']:.0%} "
                        f"partial, {e['none_fraction']:.0%} no credit" for n, e in zip(names, ex))
        out.append(("Credit per test", _png(fig), "Stacked bars per test. " + alt))

    diag = summary["diagnoses"]
    if diag:
        rows = [f"{d['test'].split(':', 1)[-1]}: {d['label']}" for d in diag]
        fig, ax = plt.subplots(figsize=(7, 0.35 * len(rows) + 1.2))
        ax.barh(rows, [d["fraction"] * 100 for d in diag], color="#8172b3")
        ax.invert_yaxis()
        ax.set_xlabel("% of students")
        ax.tick_params(axis="y", labelsize=8)
        ax.set_title("Why tests failed")
        out.append(("Why tests failed", _png(fig), "Bars: share of students per test and "
                    "diagnosis. " + "; ".join(f"{r} {d['fraction']:.0%}"
                                              for r, d in zip(rows, diag))))

    secs = [r["seconds"] for r in summary["scores"] if r["seconds"]]
    if secs:
        fig, ax = plt.subplots(figsize=(6, 3))
        ax.hist(secs, bins=min(20, max(5, len(secs) // 2)), color="#937860", edgecolor="white")
        ax.set_xlabel("seconds per submission (phase 1)")
        ax.set_ylabel("submissions")
        ax.set_title("Grading run times")
        out.append(("Grading run times", _png(fig),
                    f"Histogram of grading times per submission: median "
                    f"{statistics.median(secs):.1f} s, longest {max(secs):.1f} s."))
    return out


# ----------------------------------------------------------------- HTML


def _marked(code, spans):
    out, pos = [], 0
    for start, end in spans:
        out.append(html.escape(code[pos:start]))
        out.append(f"<mark>{html.escape(code[start:end])}</mark>")
        pos = end
    out.append(html.escape(code[pos:]))
    return "".join(out)


def _table(header, rows):
    head = "".join(f"<th>{html.escape(str(h))}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in r) + "</tr>"
                   for r in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


STYLE = """
body{font-family:system-ui,sans-serif;max-width:70rem;margin:2rem auto;padding:0 1rem;color:#222}
table{border-collapse:collapse;margin:1rem 0}td,th{border:1px solid #ccc;padding:.25rem .5rem;
text-align:left;vertical-align:top}th{background:#f3f3f3}figure{margin:1rem 0}
img{max-width:100%}.pair{display:grid;grid-template-columns:1fr 1fr;gap:1rem}
pre{background:#f7f7f7;padding:.5rem;overflow-x:auto;font-size:.85rem;line-height:1.5;
min-width:0}mark{background:#ffe08a}
.note{color:#555}
"""


def render_html(summary, figs):
    s = summary
    e = html.escape
    parts = [f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
             f"<title>Class report: {e(s['assignment'])}</title><style>{STYLE}</style>"
             f"</head><body><h1>Class report: {e(s['assignment'])}</h1>",
             f"<p>{s['students']} submissions; mean score {s['score_mean']:.2f} and median "
             f"{s['score_median']:g} of {s['max_score']:g}. "
             + ("Students are named." if s["named"] else
                "Students are anonymised (the same pseudonym in every part of this report; "
                "<code>--names</code> names them).") + "</p>"]
    if s["problems"]:
        parts.append("<h2>Grading problems</h2><ul>" + "".join(
            f"<li>{e(p)}</li>" for p in s["problems"]) + "</ul>")
    for title, uri, alt in figs:
        parts.append(f"<figure><img src='{uri}' alt='{e(alt, quote=True)}'>"
                     f"<figcaption>{e(title)}</figcaption></figure>")
    parts.append("<h2>Credit per test</h2>" + _table(
        ["test", "points", "full credit", "partial", "no credit"],
        [[x["test"], f"{x['points']:g}", f"{x['full']} ({x['full_fraction']:.0%})",
          f"{x['partial']} ({x['partial_fraction']:.0%})",
          f"{x['none']} ({x['none_fraction']:.0%})"] for x in s["exercises"]]))
    parts.append("<h2>What went wrong</h2><p class='note'>Each failed test is counted once, "
                 "under the grading helper's diagnosis (or the exception it raised); one "
                 "example explanation per diagnosis.</p>")
    for x in s["exercises"]:
        mine = [d for d in s["diagnoses"] if d["test"] == x["test"]]
        if not mine:
            continue
        summary_line = ", ".join(f"{d['fraction']:.0%} {d['label']}" for d in mine)
        parts.append(f"<h3>{e(x['test'])}</h3><p>{e(summary_line)}</p>" + _table(
            ["diagnosis", "students", "share", "example"],
            [[d["label"], d["count"], f"{d['fraction']:.0%}",
              f"{d['example_student']}: {d['example']}"] for d in mine]))
    parts.append("<h2>Faults and integrity</h2>")
    parts.append(_table(["student", "fault or notebook problem"],
                        [[f["student"], f["reason"]] for f in s["faults"]])
                 if s["faults"] else "<p>No faults.</p>")
    parts.append(_table(["student", "answer not run"],
                        [[v["student"], v["violation"]] for v in s["violations"]])
                 if s["violations"] else "<p>No integrity violations.</p>")
    if s["dropped_cells"]:
        parts.append(_table(["student", "added cells not run"],
                            [[d["student"], d["cells"]] for d in s["dropped_cells"]]))
    r = s["run_seconds"]
    parts.append("<h2>Run times</h2>" + (
        f"<p>{r['graded_now']} submissions graded in the last run: median {r['median']:.1f} s, "
        f"longest {r['max']:.1f} s, {r['total']:.1f} s of work in all.</p>"
        if r["graded_now"] else "<p>Every submission was unchanged since the run before.</p>"))
    parts.append("<h2>Similar answers</h2><p class='note'>Pairs whose answers to one exercise "
                 "share most of their own code (the scaffolding and the reference solution "
                 "removed; names and layout ignored). Similar is not proof of copying: read "
                 "them side by side.</p>")
    if not s["similar_pairs"]:
        parts.append("<p>No pair above the threshold.</p>")
    for p in s["similar_pairs"]:
        parts.append(
            f"<h3>{e(p['exercise'])}: {e(p['a'])} and {e(p['b'])}</h3>"
            f"<p>{p['similarity_a']:.0%} of {e(p['a'])}'s own code and {p['similarity_b']:.0%} "
            f"of {e(p['b'])}'s are shared.</p><div class='pair'>"
            f"<pre>{_marked(p['code_a'], p['spans_a'])}</pre>"
            f"<pre>{_marked(p['code_b'], p['spans_b'])}</pre></div>")
    parts.append("</body></html>")
    return "\n".join(parts)


# ---------------------------------------------------------------- files


def _csv(path, header, rows):
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(rows)


def write(course, assignment, names=False, threshold=None, min_tokens=None):
    """Write the report's files; returns the path of the HTML page."""
    from . import similarity

    course = Path(course)
    graded = load(course, assignment)
    pairs = similarity.similar_pairs(
        similarity.class_answers(course, assignment),
        similarity.scaffolding(course, assignment),
        threshold=similarity.THRESHOLD if threshold is None else threshold,
        min_tokens=similarity.MIN_TOKENS if min_tokens is None else min_tokens)
    summary = summarise(graded, names=names, pairs=pairs)
    folder = course / REPORT_DIR / assignment

    def out(name):
        return file_name(name, names)

    (folder / out("class-report.json")).write_text(json.dumps(summary, indent=1))
    (folder / out("class-report.html")).write_text(render_html(summary, figures(summary)))
    _csv(folder / out("class-scores.csv"), ["student", "score", "max_score", "seconds"],
         [[r["student"], r["score"], r["max_score"], r["seconds"]] for r in summary["scores"]])
    _csv(folder / out("class-exercises.csv"),
         ["test", "points", "full", "partial", "none", "full_fraction", "partial_fraction",
          "none_fraction"],
         [[x[k] for k in ("test", "points", "full", "partial", "none", "full_fraction",
                          "partial_fraction", "none_fraction")] for x in summary["exercises"]])
    _csv(folder / out("class-diagnoses.csv"),
         ["test", "category", "label", "count", "fraction", "example_student", "example"],
         [[d[k] for k in ("test", "category", "label", "count", "fraction", "example_student",
                          "example")] for d in summary["diagnoses"]])
    _csv(folder / out("class-similarity.csv"),
         ["exercise", "student_a", "student_b", "similarity_a", "similarity_b", "tokens"],
         [[p["exercise"], p["a"], p["b"], p["similarity_a"], p["similarity_b"], p["tokens"]]
          for p in summary["similar_pairs"]])
    return folder / out("class-report.html")
