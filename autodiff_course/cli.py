"""``autodiff-course``: the instructor's commands (argparse and dispatch only).

Every command works on the course it is run in: the current folder or the
nearest folder above it that holds ``nbgrader_config.py`` (``--course``
overrides), and says which folder that is.
"""

from __future__ import annotations

import argparse
import sys

DESCRIPTION = """\
The instructor's tools of autodiff-course. Run them inside the course folder
(the one with nbgrader_config.py) or pass --course FOLDER.

commands:
  build     regenerate source/, release/ and solution/ from notebooks/*.py,
            with the translated editions (release/<a>/<nb>.zh-CN.ipynb, ...)
            from translations/<lang>/*.po, and verify them (full marks for the
            solutions, every test failing on the student version, no solution
            or hidden test leaked, the editions' tests identical); fails on a
            missing, stale or broken translation
  verify    run only the checks of build on what is built
  grade     grade every collected submission of an assignment: sandboxed,
            rebuilt from the course's own cells, on every core (or on a Dask
            cluster: --scheduler); then nbgrader records the scores (use
            instead of `nbgrader autograde`)
  report    what the class got wrong: scores, credit and diagnoses per test,
            faults, similar answers; one HTML page plus CSV/JSON (anonymised
            unless --names)
  export    the grades of an assignment (gradebook, manual grades included)
            as the CSV Canvas or Moodle imports, through your roster
  mutate    mutation-test the test cells of the built source notebooks
  translations update [--lang zh_CN]
            after the English changed: bring the PO catalogs in step (new
            English as untranslated entries, changed English keeps its old
            translation marked fuzzy with the previous English beside it) for
            the translators (docs/translating.md)
  translations check [--lang zh_CN]
            what the build would reject in the catalogs, without building:
            missing, stale (fuzzy) or broken translations
  publish   write the student edition (release notebooks, the engine, Binder
            and conda set-ups, a student README; no solutions or hidden tests)
            to a new folder, ready to push as the students' repository
"""


def _course_option(parser):
    parser.add_argument("--course", metavar="FOLDER",
                        help="the course folder (default: the one you are in)")


def parser():
    p = argparse.ArgumentParser(prog="autodiff-course", description=DESCRIPTION,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    b = sub.add_parser("build", help="regenerate source/, release/ and solution/ and verify",
                       description="Regenerate source/, release/ and solution/ from "
                       "notebooks/<assignment>/*.py and verify them.")
    b.add_argument("assignments", nargs="*", help="assignment ids (default: all)")
    b.add_argument("--no-verify", action="store_true",
                   help="skip running the notebooks (the leak check still runs)")
    b.add_argument("--jobs", type=int, default=2, help="notebooks run in parallel")
    _course_option(b)
    v = sub.add_parser("verify", help="only run the checks on what is built")
    v.add_argument("assignments", nargs="*", help="assignment ids (default: all)")
    v.add_argument("--jobs", type=int, default=2, help="notebooks run in parallel")
    _course_option(v)
    g = sub.add_parser("grade", help="grade every collected submission of an assignment "
                       "(sandboxed, tamper-checked, every core or a Dask cluster)",
                       description="Grade every submission in submitted/*/ASSIGNMENT "
                       "(after `nbgrader collect`) and record the grades in gradebook.db.")
    g.add_argument("assignment")
    g.add_argument("--jobs", type=int, default=None,
                   help="worker processes of the embedded cluster (default: one per core)")
    g.add_argument("--scheduler", metavar="tcp://HOST:PORT",
                   help="grade on an existing Dask cluster instead of this machine "
                   "(workers need this Python environment and the sandbox, not the course "
                   "folder; see docs/distributed-grading.md)")
    g.add_argument("--force", action="store_true", help="re-run even unchanged submissions")
    g.add_argument("--cell-timeout", type=int, default=60, help="seconds a cell may run")
    box = g.add_mutually_exclusive_group()
    box.add_argument("--sandbox", choices=("bwrap", "container"), default="bwrap",
                     help="how each student's kernel is isolated: bwrap (default: "
                     "bubblewrap namespaces, no network, only its scratch folder) or "
                     "container (each worker's own container is the boundary, when its "
                     "seccomp profile blocks bubblewrap; memory and CPU limits only)")
    box.add_argument("--no-sandbox", action="store_true",
                     help="run student code unsandboxed (only for trusted code)")
    _course_option(g)
    r = sub.add_parser("report", help="what the class got wrong (HTML, CSV, JSON)",
                       description="Write grading-reports/ASSIGNMENT/class-report.html (one "
                       "self-contained page) and the same numbers as CSV and JSON: the score "
                       "distribution, full/partial/no credit and the diagnoses per test with "
                       "an example each, faults, integrity violations, run times and pairs of "
                       "similar answers. Run after `autodiff-course grade`.")
    r.add_argument("assignment")
    r.add_argument("--names", action="store_true",
                   help="name the students, in class-report-named.* (default: consistent "
                   "pseudonyms such as 'student 07')")
    r.add_argument("--similarity", type=float, default=None, metavar="SHARE",
                   help="list pairs sharing at least this share of their own code "
                   "(default 0.6)")
    r.add_argument("--min-tokens", type=int, default=None, metavar="N",
                   help="compare only answers with at least N tokens of their own "
                   "beyond the scaffolding and the reference solution (default 40)")
    _course_option(r)
    x = sub.add_parser("export", help="grades as the CSV Canvas or Moodle imports",
                       description="Write the grades of ASSIGNMENT from the gradebook (manual "
                       "grades included) as the CSV your LMS imports, mapping nbgrader ids "
                       "through ROSTER (a CSV with a student_id column and the LMS's columns; "
                       "see docs/lms-export.md). Exit status 1 if a graded student is not in "
                       "the roster (the file is still written for everyone else).")
    x.add_argument("assignment")
    x.add_argument("--format", required=True, choices=["canvas", "moodle"])
    x.add_argument("--roster", required=True, metavar="ROSTER",
                   help="CSV: student_id (the nbgrader id) and the LMS's columns")
    x.add_argument("--output", "-o", metavar="FILE",
                   help="where to write (default: exports/ASSIGNMENT-FORMAT.csv)")
    x.add_argument("--column", metavar="NAME",
                   help="the grade column's heading (default: the assignment id; for Canvas "
                   "use the assignment's name as in Canvas's export, e.g. 'Derivatives (1234)')")
    x.add_argument("--moodle-id", default="email", choices=["email", "idnumber", "username"],
                   help="the Moodle user field that identifies students (default email)")
    _course_option(x)
    m = sub.add_parser("mutate", help="mutation-test the tests of the built source notebooks")
    m.add_argument("assignments", nargs="*", help="assignment ids (default: all)")
    m.add_argument("--sample", type=int, metavar="N",
                   help="only N mutants per exercise (a fixed choice) and the listed "
                        "equivalents: a quick check")
    _course_option(m)
    t = sub.add_parser("translations", help="keep the translation catalogs in step with the "
                       "English (update) and check them (check)",
                       description="The PO catalogs of the translated editions, "
                       "translations/<lang>/<assignment>.po (docs/translating.md).")
    tsub = t.add_subparsers(dest="action", required=True, metavar="ACTION")
    tu = tsub.add_parser("update", help="merge the current English into the catalogs",
                         description="Merge the English of notebooks/*/*.py and the notation "
                         "card into translations/<lang>/*.po: new English becomes an "
                         "untranslated entry, changed English keeps its old translation "
                         "marked fuzzy (stale) with the previous English (#| msgid), English "
                         "that is gone becomes obsolete (#~). Then translate and review in a "
                         "PO editor (Poedit, Lokalize, ...).")
    tc = tsub.add_parser("check", help="list what the build would reject in the catalogs",
                         description="List every missing, stale (fuzzy) or broken "
                         "translation (math, code spans, link targets or placeholders "
                         "changed, a forbidden glossary variant, traditional characters); "
                         "exit status 1 if there is one.")
    for action in (tu, tc):
        action.add_argument("--lang", action="append", metavar="LANG",
                            help="a catalog folder under translations/, e.g. zh_CN "
                            "(default: every language of the course; repeatable)")
        _course_option(action)
    pub = sub.add_parser("publish", help="write the student edition to a new folder",
                         description="Write the student edition: a repository students "
                         "may see (release notebooks, autodiff_ref, Binder, README).")
    pub.add_argument("folder", help="a new (or empty) folder")
    _course_option(pub)
    return p


def main(argv=None):
    args = parser().parse_args(argv)
    from . import skip_iri_formats

    skip_iri_formats()  # before anything imports nbformat
    from .course import CourseError

    try:
        return COMMANDS[args.command](args)
    except CourseError as exc:
        print(f"autodiff-course {args.command}: {exc}", file=sys.stderr)
        return 2


def _course(args):
    from .course import check_course, find_course

    course = check_course(args.course) if args.course else find_course()
    print(f"course: {course}", file=sys.stderr)
    return course


def _names(course, wanted):
    from .course import CourseError, assignments, unknown_assignment

    known = assignments(course)
    if not known:
        raise CourseError(f"{course}/notebooks/ holds no assignment (notebooks/<id>/*.py).")
    for name in wanted:
        if name not in known:
            raise unknown_assignment(name, known)
    return list(wanted) or known


def _report(problems):
    for p in problems:
        print("PROBLEM", p, file=sys.stderr)
    return 1 if problems else 0


def _build(args):
    from .build import build

    course = _course(args)
    return _report(build(course, _names(course, args.assignments), not args.no_verify,
                         args.jobs))


def _verify(args):
    from .build import verify

    course = _course(args)
    return _report(verify(course, _names(course, args.assignments), args.jobs))


def _grade(args):
    from .grading.grade import grade

    course = _course(args)
    _names(course, [args.assignment])
    try:
        grade(course, args.assignment, jobs=args.jobs,
              use_sandbox="none" if args.no_sandbox else args.sandbox, force=args.force,
              cell_timeout=args.cell_timeout, scheduler=args.scheduler)
    except (RuntimeError, FileNotFoundError) as exc:
        print(f"PROBLEM {exc}", file=sys.stderr)
        return 1
    return 0


def _class_report(args):
    from .report import write

    course = _course(args)
    _names(course, [args.assignment])
    page = write(course, args.assignment, names=args.names, threshold=args.similarity,
                 min_tokens=args.min_tokens)
    print(f"wrote {page} (and CSV/JSON beside it)")
    return 0


def _export(args):
    from .export import export

    course = _course(args)
    _names(course, [args.assignment])
    done = export(course, args.assignment, args.format, args.roster, out=args.output,
                  column=args.column, moodle_id=args.moodle_id)
    print(f"wrote {done.path}: {done.rows} student(s)")
    for sid in done.missing:
        print(f"WARNING {sid}: in the roster but no submission in the gradebook "
              "(empty grade written)", file=sys.stderr)
    for sid in done.unknown:
        print(f"PROBLEM {sid}: graded but not in the roster; their grade is NOT in the file "
              "(add them to the roster and export again)", file=sys.stderr)
    return 1 if done.unknown else 0


def _mutate(args):
    from functools import partial

    from .course import CourseError
    from .mutation import equivalent_mutants, run_notebook, sample

    course = _course(args)
    unexplained = 0
    for a in _names(course, args.assignments):
        equivalent = equivalent_mutants(course, a)
        choose = partial(sample, per_exercise=args.sample, always=set(equivalent)) \
            if args.sample else None
        notebooks = sorted((course / "source" / a).glob("*.ipynb"))
        if not notebooks:
            raise CourseError(f"{a} is not built yet (no source/{a}/): run "
                              f"`autodiff-course build {a}` first")
        for nb in notebooks:
            report = run_notebook(nb, choose=choose)
            print(f"{nb}: {len(report.killed)}/{len(report.mutants)} mutants killed")
            for mutant in report.survivors:
                why = equivalent.get(mutant.key)
                unexplained += why is None
                print(f"  survivor {mutant.key}\n    " +
                      (f"equivalent: {why}" if why else "NOT EXPLAINED: strengthen the tests"))
    return 1 if unexplained else 0


def _publish(args):
    from .publish import publish

    course = _course(args)
    try:
        publish(course, args.folder)
    except (FileNotFoundError, FileExistsError) as exc:
        print(f"PROBLEM {exc}", file=sys.stderr)
        return 1
    return 0


def _translations(args):
    from . import translation
    from .course import CourseError

    course = _course(args)
    known = translation.languages(course)
    langs = args.lang or known
    if not langs:
        raise CourseError(f"{course}/translations/ holds no language: create "
                          "translations/<lang>/ (e.g. zh_CN) and run "
                          "`autodiff-course translations update --lang <lang>`")
    if args.action == "update":
        for lang in langs:
            for state in translation.update(course, lang):
                new = f", {state.new} new" if state.new else ""
                print(state.line() + new)
        return 0
    problems = []
    for lang in langs:
        if lang not in known:
            raise CourseError(f"no catalogs for {lang!r} in {course}/translations/ "
                              f"(known: {', '.join(known) or 'none'})")
        problems += translation.check(course, lang)
    if not problems:
        print(f"catalogs of {', '.join(langs)}: complete and current")
    return _report(problems)


COMMANDS = {"build": _build, "verify": _verify, "grade": _grade, "report": _class_report,
            "export": _export, "mutate": _mutate, "translations": _translations,
            "publish": _publish}


if __name__ == "__main__":
    sys.exit(main())
