"""Where the time of one `autodiff-course grade --jobs N` run goes: a timeline.

    python benchmarks/timeline_grading.py [--students 16] [--jobs 2] [--master DIR]

Builds a class the way bench_grading.py does (``make_course``; with
``--master DIR`` the built class is kept there and reused by later runs),
copies it, and grades the copy once with ``grade(course, A, jobs=N)`` while
recording, on one clock (``time.time()``, all processes are on this machine):

* on this machine: reading the templates and the submissions, the
  fingerprints, the cluster's start, the client, the worker checks, each
  result's arrival and publication, phase 2 (nbgrader), the gradebook check,
  the report, the cluster's stop;
* on each worker (a task wrapped around the real one, and the warm-up
  plugin and worker report timed around theirs): when the worker process
  started, when its grading process was warm, each submission's start and
  end, and from the graded notebook when its kernel ran the first cell and
  answered the last.

It measures by wrapping the package's functions from outside; the package
is not changed. Prints the events in order, per-worker lanes, and a summary
of the fixed costs and idle gaps.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "benchmarks"))
sys.path.insert(0, str(REPO / "tests"))

import nbformat  # noqa: E402
from distributed import WorkerPlugin  # noqa: E402

from bench_grading import make_course  # noqa: E402
from course_helpers import CLASS_ASSIGNMENT as A  # noqa: E402

EVENTS = []  # (time, who, what)
LOG = None  # the workers' events file (set in main; the task and plugin carry it)


def mark(what, who="host"):
    EVENTS.append((time.time(), who, what))


def _wlog(what, who=None, **extra):
    """An event on a worker, appended to LOG."""
    import time as _time

    from distributed import get_worker

    try:
        who = who or get_worker().address
    except ValueError:
        who = f"pid{os.getpid()}"
    with open(LOG, "a") as f:
        f.write(json.dumps({"t": _time.time(), "who": who, "what": what, **extra}) + "\n")


class TimedWarmUp(WorkerPlugin):
    name = "autodiff-course-warm-up"

    def setup(self, worker):
        import psutil

        from autodiff_course.grading.cluster import grading_pool

        _wlog("worker process started", worker.address, t0=psutil.Process().create_time())
        _wlog("warm-up start", worker.address)
        grading_pool()
        _wlog("warm-up end (grading process warm)", worker.address)


def timed_report(sandbox_mode):
    from autodiff_course.grading.cluster import worker_report

    _wlog("worker report start")
    report = worker_report(sandbox_mode)
    _wlog("worker report end")
    return report


def timed_task(tmpl, files, student, *args, **kw):
    from autodiff_course.grading.cluster import grade_task

    _wlog(f"task {student} start")
    result = grade_task(tmpl, files, student, *args, **kw)
    _wlog(f"task {student} end", seconds=result[1].seconds)
    return result


def wrap(module, name, label=None, each=False):
    """Time calls of ``module.name``; ``each``: one event pair per call."""
    f = getattr(module, name)
    label = label or name

    def timed(*a, **k):
        mark(f"{label} start")
        try:
            return f(*a, **k)
        finally:
            mark(f"{label} end")

    setattr(module, name, timed)


def instrument():
    import autodiff_course.grading.cluster as C
    import autodiff_course.grading.grade as G

    for name in ("templates", "read_submission", "fingerprint", "cached_outcome", "publish",
                 "record_in_gradebook", "gradebook_scores", "write_report", "check_gradebook"):
        wrap(G, name)
    wrap(C, "check_workers")
    C.WarmUp = TimedWarmUp
    C.worker_report = timed_report

    real_cluster, real_client = C.LocalCluster, C.Client

    def cluster(*a, **k):
        mark("LocalCluster() start")
        c = real_cluster(*a, **k)
        mark("LocalCluster() end")
        real_close = c.close

        def close(*a2, **k2):
            mark("cluster close start")
            try:
                return real_close(*a2, **k2)
            finally:
                mark("cluster close end")

        c.close = close
        return c

    class client(real_client):
        def __init__(self, *a, **k):
            mark("Client() start")
            super().__init__(*a, **k)
            mark("Client() end")

        def register_plugin(self, *a, **k):
            mark("register_plugin start")
            try:
                return super().register_plugin(*a, **k)
            finally:
                mark("register_plugin end")

    C.LocalCluster, C.Client = cluster, client
    real_connect = C.connect

    @contextmanager
    def connect(*a, **k):
        mark("connect start")
        with real_connect(*a, **k) as c:
            mark("connect ready")
            try:
                yield c
            finally:
                mark("connect exit start")
        mark("connect exit end")

    C.connect = connect
    real_phase1 = G.run_phase1

    def run_phase1(client, assignment, tmpl, todo, sandbox_mode, cell_timeout, done, bar,
                   task=None, **kw):
        def timed_done(student, *rest):
            mark(f"result {student} arrived")
            done(student, *rest)

        if kw.get("tail"):
            tail = kw["tail"]

            def timed_tail():
                mark("tail: a worker is idle")
                tail()

            kw["tail"] = timed_tail
        mark("run_phase1 start")
        try:
            return real_phase1(client, assignment, tmpl, todo, sandbox_mode, cell_timeout,
                               timed_done, bar, task=timed_task, **kw)
        finally:
            mark("run_phase1 end")

    G.run_phase1 = run_phase1


def _stamp(text):
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def kernel_events(course):
    """From each published notebook: first cell's start and last cell's reply."""
    out = []
    for nb_path in (course / "autograde-input").glob(f"*/{A}/*.ipynb"):
        student = nb_path.parent.parent.name
        stamps = []
        for cell in nbformat.read(nb_path, as_version=4).cells:
            t = cell.get("metadata", {}).get("execution", {})
            if "iopub.execute_input" in t:
                stamps.append((_stamp(t["iopub.execute_input"]),
                               _stamp(t.get("shell.execute_reply", t["iopub.execute_input"]))))
        if stamps:
            out.append((stamps[0][0], student, "first cell"))
            out.append((stamps[-1][1], student, "last cell replied"))
    return out


def summarize(events, t0, n_students):
    """Fixed costs and gaps from the merged events."""
    def at(what, who=None, last=False):
        hits = [t for t, w, x in events if x == what and (who is None or w == who)]
        return (max(hits) if last else min(hits)) - t0 if hits else None

    rows = []
    tasks = {}
    for t, who, what in events:
        if what.startswith("task ") and what.endswith((" start", " end")):
            student = what.split()[1]
            tasks.setdefault(student, {})["who"] = who
            tasks[student][what.rsplit(" ", 1)[1]] = t - t0
    workers = sorted({v["who"] for v in tasks.values()})
    first_task = min(v["start"] for v in tasks.values()) if tasks else None
    last_end = max(v["end"] for v in tasks.values()) if tasks else None
    rows.append(("inputs read and fingerprinted", at("connect start")))
    rows.append(("cluster up (LocalCluster() returned)", at("LocalCluster() end")))
    rows.append(("client connected", at("Client() end")))
    rows.append(("warm-up plugin registered (all workers warm)", at("register_plugin end")))
    rows.append(("workers checked", at("check_workers end")))
    rows.append(("first submission starts on a worker", first_task))
    rows.append(("last submission ends on a worker", last_end))
    rows.append(("phase 1 loop done (all published)", at("run_phase1 end")))
    rows.append(("cluster stopped", at("connect exit end")))
    rows.append(("phase 2 start", at("record_in_gradebook start")))
    rows.append(("phase 2 end", at("record_in_gradebook end")))
    rows.append(("end", at("grade end")))
    print("\nmilestones (s from grade() start):")
    for label, value in rows:
        print(f"  {label:48s} {value:7.2f}" if value is not None else f"  {label:48s}     -")
    print("\nper worker:")
    for w in workers:
        mine = sorted((v["start"], v["end"], s) for s, v in tasks.items() if v["who"] == w)
        busy = sum(e - s for s, e, _ in mine)
        gaps = sum(b[0] - a[1] for a, b in zip(mine, mine[1:]))
        ready = at("warm-up end (grading process warm)", w)
        proc = [x for x in events if x[1] == w and x[2] == "worker process started"]
        print(f"  {w}: {len(mine)} submissions, busy {busy:.2f} s "
              f"({busy / max(len(mine), 1):.2f} s each), gaps between tasks {gaps:.2f} s, "
              f"warm at {ready:.2f} s, first task {mine[0][0]:.2f} s, last ends "
              f"{mine[-1][1]:.2f} s (idle at the end {last_end - mine[-1][1]:.2f} s)")
    first = {w: t - t0 for t, w, x in events if x == "first cell"}
    last = {w: t - t0 for t, w, x in events if x == "last cell replied"}
    both = [s for s in tasks if s in first and s in last]
    if both:
        def mean(values):
            return sum(values) / len(values)

        print(f"per submission (mean of {len(both)}): task start -> first cell "
              f"{mean([first[s] - tasks[s]['start'] for s in both]):.2f} s, cells "
              f"{mean([last[s] - first[s] for s in both]):.2f} s, last cell -> task end "
              f"{mean([tasks[s]['end'] - last[s] for s in both]):.2f} s, task "
              f"{mean([tasks[s]['end'] - tasks[s]['start'] for s in both]):.2f} s")
    return tasks


def main():
    global LOG
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--students", type=int, default=16)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--master", help="keep the built class here and reuse it")
    parser.add_argument("--json", help="write the merged events here")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        if args.master and (Path(args.master) / "submitted").is_dir():
            master = Path(args.master)
        else:
            master = make_course(Path(args.master) if args.master else tmp / "master",
                                 args.students)
        course = tmp / "course"
        shutil.copytree(master, course, ignore=shutil.ignore_patterns(
            "autograde-input", "autograded", "grading-reports", "feedback"))
        LOG = str(tmp / "worker-events.jsonl")
        Path(LOG).touch()
        instrument()
        from autodiff_course.grading.grade import grade

        load = os.getloadavg()
        lines = []
        mark("grade start")
        grade(course, A, jobs=args.jobs, log=lines.append)
        mark("grade end")
        events = list(EVENTS)
        for line in Path(LOG).read_text().splitlines():
            e = json.loads(line)
            if e["what"] == "worker process started":
                events.append((e["t0"], e["who"], e["what"]))
            else:
                events.append((e["t"], e["who"], e["what"]))
        events += kernel_events(course)
        events.sort()
        t0 = next(t for t, w, x in events if x == "grade start")
        who_short = {}
        for _, who, _ in events:
            if who.startswith("tcp://"):
                who_short.setdefault(who, f"W{len(who_short)}")
        print(f"load average before: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}; "
              f"after: {os.getloadavg()[0]:.2f}")
        print(lines[0])
        for t, who, what in events:
            print(f"{t - t0:8.2f}  {who_short.get(who, who):8s} {what}")
        summarize([(t, who_short.get(w, w), x) for t, w, x in events], t0, args.students)
        if args.json:
            Path(args.json).write_text(json.dumps(
                [(t - t0, who_short.get(w, w), x) for t, w, x in events], indent=0))


if __name__ == "__main__":
    main()
