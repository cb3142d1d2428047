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
  build     regenerate source/, release/ and solution/ from notebooks/*.py and
            verify them (full marks for the solutions, every test failing on
            the student version, no solution or hidden test leaked)
  verify    run only the checks of build on what is built
  grade     grade every collected submission of an assignment: sandboxed,
            rebuilt from the course's own cells, both cores; then nbgrader
            records the scores (use instead of `nbgrader autograde`)
  mutate    mutation-test the test cells of the built source notebooks
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
                       "(sandboxed, tamper-checked, both cores)",
                       description="Grade every submission in submitted/*/ASSIGNMENT "
                       "(after `nbgrader collect`) and record the grades in gradebook.db.")
    g.add_argument("assignment")
    g.add_argument("--jobs", type=int, default=2, help="submissions run in parallel")
    g.add_argument("--force", action="store_true", help="re-run even unchanged submissions")
    g.add_argument("--cell-timeout", type=int, default=60, help="seconds a cell may run")
    g.add_argument("--no-sandbox", action="store_true",
                   help="run student code unsandboxed (only for trusted code)")
    _course_option(g)
    m = sub.add_parser("mutate", help="mutation-test the tests of the built source notebooks")
    m.add_argument("assignments", nargs="*", help="assignment ids (default: all)")
    m.add_argument("--sample", type=int, metavar="N",
                   help="only N mutants per exercise (a fixed choice) and the listed "
                        "equivalents: a quick check")
    _course_option(m)
    pub = sub.add_parser("publish", help="write the student edition to a new folder",
                         description="Write the student edition: a repository students "
                         "may see (release notebooks, autodiff_ref, Binder, README).")
    pub.add_argument("folder", help="a new (or empty) folder")
    _course_option(pub)
    return p


def main(argv=None):
    args = parser().parse_args(argv)
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
        grade(course, args.assignment, jobs=args.jobs, use_sandbox=not args.no_sandbox,
              force=args.force, cell_timeout=args.cell_timeout)
    except (RuntimeError, FileNotFoundError) as exc:
        print(f"PROBLEM {exc}", file=sys.stderr)
        return 1
    return 0


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


COMMANDS = {"build": _build, "verify": _verify, "grade": _grade, "mutate": _mutate,
            "publish": _publish}


if __name__ == "__main__":
    sys.exit(main())
