"""Grading throughput: plain serial `nbgrader autograde` against
`autodiff-course grade` (phase 1 on Dask), measured in the same run.

    python benchmarks/bench_grading.py [--students N]

Builds notebook 01 of a temporary copy of the course once, fills in N
submissions (tests/course_helpers.py `submit_class`: right answers and
mistakes) and grades the same class, each in its own copy, these ways:

1. plain `nbgrader autograde` (serial, unsandboxed: the baseline);
2. `autodiff-course grade --jobs 1` (embedded Dask cluster, one worker);
3. `autodiff-course grade --jobs 2` (embedded, both cores: the default here);
4. `autodiff-course grade --scheduler` on a separate `dask scheduler` with
   two `dask worker --nthreads 1` processes on 127.0.0.1;
5. `--jobs 1 --no-sandbox` (what isolation costs per submission).

Prints wall time, submissions per minute, the ratios against (1), the time
phase 2 (the one nbgrader writer) takes, and what a submission costs on a
worker beyond the notebook's own run time (kernel start, sandbox, rebuild).
The target for (3) against (1) is at least 1.7x; it is printed, not asserted.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))

import nbformat  # noqa: E402

from autodiff_course.build import build  # noqa: E402
from autodiff_course.grading.grade import grade  # noqa: E402
from course_helpers import (CLASS_ASSIGNMENT as A, copy_course, dask_cluster,  # noqa: E402
                            submit_class)


def make_course(folder, students):
    course = copy_course(folder)
    # verified, as `autodiff-course build` is by default: the build keeps the
    # figures that do not depend on the answers, so graders need not draw them
    problems = build(course, [A], log=lambda *a: None)
    assert not problems, problems
    submit_class(course, students)
    return course


def plain_nbgrader(course):
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    env.pop("AUTODIFF_COURSE_PHASE", None)
    proc = subprocess.run([sys.executable, "-m", "nbgrader", "autograde", A, "--force"],
                          cwd=course, capture_output=True, text=True, env=env)
    assert proc.returncode == 0, proc.stderr[-2000:]


def ours(course, **kw):
    """grade(); returns the seconds of phase 2 (from its summary line)."""
    lines = []
    grade(course, A, log=lines.append, **kw)
    m = next(m for line in lines
             if (m := re.search(r"phase 1 ([\d.]+) s .* total ([\d.]+) s", line)))
    return float(m.group(2)) - float(m.group(1))


def _stamp(text):
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def per_submission(course):
    """(mean seconds a worker spent per submission, mean seconds the kernel's
    cells ran: nbclient's execute_input -> execute_reply timing, mean number of
    the judge's requests to the kernel and mean seconds they took)."""
    spent, cells, requests, request_seconds = [], [], [], []
    for record in (course / "autograde-input").glob(f"*/{A}/.autodiff-grading.json"):
        outcome = json.loads(record.read_text())["outcome"]
        spent.append(outcome["seconds"])
        requests.append(outcome.get("requests", 0))
        request_seconds.append(outcome.get("request_seconds", 0.0))
        own = 0.0
        for nb_path in record.parent.glob("*.ipynb"):
            for cell in nbformat.read(nb_path, as_version=4).cells:
                t = cell.get("metadata", {}).get("execution", {})
                if "iopub.execute_input" in t and "shell.execute_reply" in t:
                    own += (_stamp(t["shell.execute_reply"]) -
                            _stamp(t["iopub.execute_input"])).total_seconds()
        cells.append(own)
    n = len(spent)
    return sum(spent) / n, sum(cells) / n, sum(requests) / n, sum(request_seconds) / n


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--students", type=int, default=16)
    args = parser.parse_args()
    n = args.students
    rows, phase2 = [], {}
    with tempfile.TemporaryDirectory() as tmp:
        master = make_course(Path(tmp) / "master", n)
        names = ("plain", "jobs1", "jobs2", "external", "nosandbox")
        setups = {}
        for name in names:
            setups[name] = Path(tmp) / name
            shutil.copytree(master, setups[name])

        def timed(label, fn):
            start = time.perf_counter()
            result = fn()
            rows.append((label, time.perf_counter() - start))
            return result

        timed("plain nbgrader autograde (serial)", lambda: plain_nbgrader(setups["plain"]))
        phase2["jobs1"] = timed("grade --jobs 1 (embedded, 1 worker)",
                                lambda: ours(setups["jobs1"], jobs=1))
        phase2["jobs2"] = timed("grade --jobs 2 (embedded, 2 workers)",
                                lambda: ours(setups["jobs2"], jobs=2))
        with dask_cluster(Path(tmp) / "cluster", workers=2) as (address, _):
            phase2["external"] = timed("grade --scheduler (2 dask workers)",
                                       lambda: ours(setups["external"], scheduler=address))
        phase2["nosandbox"] = timed("grade --jobs 1 --no-sandbox",
                                    lambda: ours(setups["nosandbox"], jobs=1, use_sandbox=False))
        start = time.perf_counter()
        ours(setups["jobs2"], jobs=2)
        rerun = time.perf_counter() - start
        worker1, cells1, requests1, request_seconds1 = per_submission(setups["jobs1"])
        worker_nobox, *_ = per_submission(setups["nosandbox"])
    base = rows[0][1]
    print(f"Grading {n} submissions of notebook 01 on {os.cpu_count()} cores "
          f"(load average before: {os.getloadavg()[0]:.1f})\n")
    print(f"{'how':40s} {'seconds':>8s} {'subs/min':>9s} {'vs plain':>9s} {'phase 2':>8s}")
    for (label, seconds), key in zip(rows, [None, *names[1:]]):
        p2 = f"{phase2[key]:7.1f}s" if key else "       -"
        print(f"{label:40s} {seconds:8.1f} {60 * n / seconds:9.1f} {base / seconds:8.2f}x {p2}")
    print(f"\nspeed-up of the embedded default (2 workers) over plain serial nbgrader: "
          f"{base / rows[2][1]:.2f}x (target >= 1.7x)")
    print(f"external 2-worker cluster over plain: {base / rows[3][1]:.2f}x")
    print(f"parallel speed-up, 2 workers over 1: {rows[1][1] / rows[2][1]:.2f}x")
    print(f"per submission on a worker (--jobs 1): {worker1:.2f} s, of which the notebook's "
          f"kernel's cells ran {cells1:.2f} s: the rest {worker1 - cells1:.2f} s (kernel "
          f"start, sandbox, rebuild, the judge's test cells)")
    print(f"the judge's requests to the kernel per submission: {requests1:.0f}, taking "
          f"{request_seconds1:.2f} s with the student's code they ran "
          f"({1000 * request_seconds1 / max(requests1, 1):.1f} ms each on average)")
    print(f"isolation overhead per submission (sandbox vs none): {worker1 - worker_nobox:.2f} s")
    print(f"re-run of an unchanged class (all cached): {rerun:.1f} s")


if __name__ == "__main__":
    main()
