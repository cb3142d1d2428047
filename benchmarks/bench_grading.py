"""Grading throughput: plain serial `nbgrader autograde` against
`autodiff-course grade` on both cores, measured in the same run.

    python benchmarks/bench_grading.py [--students N]

Builds a temporary copy of the course, fills in N submissions of notebook 01
(half right, half with two mistakes) and grades the same class four ways:

1. plain `nbgrader autograde` (serial, unsandboxed: the baseline);
2. `autodiff-course grade --jobs 2` (sandboxed, both cores: what instructors run);
3. the same with `--jobs 1` (to separate the parallel speed-up);
4. `--jobs 1` without the sandbox (what isolation costs per submission).

Prints wall time, submissions per minute and the ratios. The target for
(2) against (1) is at least 1.7x; it is printed for context, not asserted.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))

import nbformat  # noqa: E402

from autodiff_course.build import build  # noqa: E402
from autodiff_course.grading.grade import grade  # noqa: E402
from course_helpers import copy_course, fill_in, solution_sources  # noqa: E402

A, NB = "01_derivatives", "derivatives.ipynb"
MISTAKES = {
    "central_difference": "def central_difference(f, x, eps):\n"
                          "    return (f(x + eps) - f(x - eps)) / eps\n",
    "product_partials": "def product_partials(theta):\n    return np.prod(theta) / theta\n",
}


def make_course(folder, students):
    course = copy_course(folder)
    problems = build(course, do_verify=False, log=lambda *a: None)
    assert not problems, problems
    answers = solution_sources(course / "source" / A / NB)
    for i in range(students):
        target = course / "submitted" / f"s{i:03d}" / A
        target.mkdir(parents=True)
        shutil.copy(course / "release" / A / NB, target / NB)
        (target / "timestamp.txt").write_text("2026-11-20 10:00:00.000000 UTC")
        fill_in(target / NB, answers if i % 2 == 0 else {**answers, **MISTAKES})
    return course


def timed(fn):
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def plain_nbgrader(course):
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    env.pop("AUTODIFF_COURSE_PHASE", None)
    proc = subprocess.run([sys.executable, "-m", "nbgrader", "autograde", A, "--force"],
                          cwd=course, capture_output=True, text=True, env=env)
    assert proc.returncode == 0, proc.stderr[-2000:]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--students", type=int, default=12)
    args = parser.parse_args()
    n = args.students
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        setups = {name: make_course(Path(tmp) / name, n)
                  for name in ("plain", "jobs2", "jobs1", "nosandbox")}
        quiet = dict(log=lambda *a: None)
        rows.append(("plain nbgrader autograde (serial)", timed(lambda: plain_nbgrader(setups["plain"]))))
        rows.append(("autodiff-course grade --jobs 2", timed(lambda: grade(setups["jobs2"], A, jobs=2, **quiet))))
        rows.append(("autodiff-course grade --jobs 1", timed(lambda: grade(setups["jobs1"], A, jobs=1, **quiet))))
        rows.append(("--jobs 1 --no-sandbox", timed(lambda: grade(setups["nosandbox"], A, jobs=1, use_sandbox=False, **quiet))))
        rerun = timed(lambda: grade(setups["jobs2"], A, jobs=2, **quiet))
    base = rows[0][1]
    print(f"Grading {n} submissions of notebook 01 on {os.cpu_count()} cores\n")
    print(f"{'how':40s} {'seconds':>8s} {'subs/min':>9s} {'vs plain':>9s}")
    for name, seconds in rows:
        print(f"{name:40s} {seconds:8.1f} {60 * n / seconds:9.1f} {base / seconds:8.2f}x")
    print(f"\nspeed-up of grade --jobs 2 over plain serial nbgrader: {base / rows[1][1]:.2f}x "
          "(target >= 1.7x)")
    print(f"parallel speed-up, --jobs 2 over --jobs 1: {rows[2][1] / rows[1][1]:.2f}x")
    print(f"isolation overhead per submission (sandbox vs none, --jobs 1): "
          f"{(rows[2][1] - rows[3][1]) / n:.2f} s")
    print(f"re-run of an unchanged class (all cached): {rerun:.1f} s")


if __name__ == "__main__":
    main()
