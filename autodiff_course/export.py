"""Grades for the university's LMS: ``autodiff-course export <assignment>
--format canvas|moodle --roster roster.csv``.

The grades come from nbgrader's gradebook (``gradebook.db``), so manual
grades given in formgrader are included. nbgrader knows students by their
nbgrader id; the LMS by its own ids. The instructor's roster maps one to the
other: a CSV with a ``student_id`` column (the nbgrader id) and the columns
the LMS needs (docs/lms-export.md):

* Canvas (gradebook import): ``Student``, ``ID``, ``SIS User ID``,
  ``SIS Login ID``, ``Section``, then one column per assignment. A roster made
  from Canvas's own gradebook export with a ``student_id`` column added works
  as it is.
* Moodle (grade import, CSV): one column that identifies the user (email
  address, ID number or username; chosen with ``--moodle-id``), then the
  grade column; Moodle asks at import which user field it maps to.

No student is dropped silently: a graded student who is not in the roster
(their grade could not be uploaded) is an error (exit status 1, listed), the
file is still written for everyone else; a roster student without a
submission gets an empty grade (both LMSs leave an empty cell unchanged) and
is listed as a warning.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path

from .course import CourseError

CANVAS_COLUMNS = ("Student", "ID", "SIS User ID", "SIS Login ID", "Section")
# --moodle-id -> (roster column, accepted spellings, heading written)
MOODLE_IDS = {
    "email": ("email", "email address", "Email address"),
    "idnumber": ("idnumber", "id number", "ID number"),
    "username": ("username", "user name", "Username"),
}
STUDENT_ID = "student_id"


@dataclass
class Export:
    path: Path
    rows: int = 0
    unknown: list = field(default_factory=list)  # graded, not in the roster
    missing: list = field(default_factory=list)  # in the roster, no submission


def gradebook_grades(course, assignment):
    """``{student id: score}`` of every submission of ``assignment`` in the
    gradebook (autograded plus manual grades), and the assignment's maximum."""
    from nbgrader.api import Gradebook, MissingEntry

    grades = {}
    with Gradebook(f"sqlite:///{Path(course) / 'gradebook.db'}",
                   course_id="autodiff-course") as gb:
        try:
            maximum = gb.find_assignment(assignment).max_score
        except MissingEntry:
            raise CourseError(f"the gradebook has no assignment {assignment!r}: grade it "
                              f"first (`autodiff-course grade {assignment}`).") from None
        for student in gb.students:
            try:
                grades[student.id] = gb.find_submission(assignment, student.id).score
            except MissingEntry:
                continue
    return grades, maximum


def _norm(name):
    return " ".join(name.strip().lower().replace("_", " ").split())


def read_roster(path, needed):
    """The roster's rows keyed by nbgrader id, with the ``needed`` columns
    (``{wanted name: accepted spellings}``) under their wanted names."""
    path = Path(path)
    if not path.exists():
        raise CourseError(f"roster {path} does not exist: give a CSV with a {STUDENT_ID} "
                          "column and the LMS's columns (docs/lms-export.md).")
    with open(path, newline="", encoding="utf-8-sig") as f:
        reader = csv.DictReader(f)
        heads = {_norm(h): h for h in (reader.fieldnames or [])}
        wanted = {STUDENT_ID: {_norm(STUDENT_ID), "nbgrader id"}, **needed}
        where = {}
        for name, spellings in wanted.items():
            found = next((heads[s] for s in map(_norm, spellings) if s in heads), None)
            if found is None:
                raise CourseError(f"roster {path} has no column {name!r} (its columns: "
                                  f"{', '.join(reader.fieldnames or [])}).")
            where[name] = found
        roster, duplicates = {}, []
        for row in reader:
            sid = (row.get(where[STUDENT_ID]) or "").strip()
            if not sid:
                continue
            if sid in roster:
                duplicates.append(sid)
            roster[sid] = {name: (row.get(col) or "").strip() for name, col in where.items()}
    if duplicates:
        raise CourseError(f"roster {path} lists {', '.join(sorted(set(duplicates)))} more "
                          "than once.")
    return roster


def _grade(score):
    return "" if score is None else f"{score:g}"


def export(course, assignment, fmt, roster_path, out=None, column=None, moodle_id="email"):
    """Write the LMS's CSV; returns an ``Export`` (path, unknown, missing)."""
    course = Path(course)
    grades, _ = gradebook_grades(course, assignment)
    column = column or assignment
    if fmt == "canvas":
        roster = read_roster(roster_path, {c: {c} for c in CANVAS_COLUMNS})
        header = [*CANVAS_COLUMNS, column]
        rows = [[r[c] for c in CANVAS_COLUMNS] + [_grade(grades.get(sid))]
                for sid, r in roster.items()]
    elif fmt == "moodle":
        if moodle_id not in MOODLE_IDS:
            raise CourseError(f"--moodle-id must be one of {', '.join(MOODLE_IDS)}.")
        key, spelling, heading = MOODLE_IDS[moodle_id]
        roster = read_roster(roster_path, {key: {key, spelling, heading}})
        blank = [sid for sid, r in roster.items() if not r[key]]
        if blank:
            raise CourseError(f"roster {roster_path}: no {key} for {', '.join(blank)}.")
        header = [heading, column]
        rows = [[r[key], _grade(grades.get(sid))] for sid, r in roster.items()]
    else:
        raise CourseError(f"unknown format {fmt!r}: canvas or moodle.")
    path = Path(out) if out else course / "exports" / f"{assignment}-{fmt}.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(rows)
    return Export(path, len(rows), unknown=sorted(set(grades) - set(roster)),
                  missing=sorted(set(roster) - set(grades)))
