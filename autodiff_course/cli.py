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
            rebuilt from the course's own cells, on every core (or on a Dask
            cluster: --scheduler); then nbgrader records the scores (use
            instead of `nbgrader autograde`)
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
    m = sub.add_parser("mutate", help="mutation-test the tests of the built source notebooks")
    m.add_argument("assignments", nargs="*", help="assignment ids (default: all)")
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
        grade(course, args.assignment, jobs=args.jobs,
              use_sandbox="none" if args.no_sandbox else args.sandbox, force=args.force,
              cell_timeout=args.cell_timeout, scheduler=args.scheduler)
    except (RuntimeError, FileNotFoundError) as exc:
        print(f"PROBLEM {exc}", file=sys.stderr)
        return 1
    return 0


def _mutate(args):
    from .mutation import equivalent_mutants, run_notebook

    course = _course(args)
    unexplained = 0
    for a in _names(course, args.assignments):
        equivalent = equivalent_mutants(course, a)
        for nb in sorted((course / "source" / a).glob("*.ipynb")):
            report = run_notebook(nb)
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
