"""`autodiff-course grade` on a Dask cluster: a real scheduler and two
workers as separate processes on 127.0.0.1 (as `dask scheduler` and `dask
worker` start them on grading machines), with no shared course folder.

The class graded through `--scheduler` must export the same grades as the
embedded default, also when one worker is killed mid-run; a submission that
kills its workers is recorded as a fault; an unreachable scheduler is refused
before anything runs.

The class is of a quick assignment (course_helpers.QUICK_SOURCE: three
exercises, right and wrong answers, visible and hidden tests) built in a
course of its own: what is tested here is the cluster, and a submission of it
costs the grading machinery's own time (sandbox, kernel, guard), not
notebook 01's."""

from __future__ import annotations

import csv
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from autodiff_course.grading import sandbox
from course_helpers import (CLASS_NOTEBOOK, MISTAKES, QUICK_ASSIGNMENT as A, QUICK_MISTAKES,
                            QUICK_NOTEBOOK, dask_cluster, free_port, quick_course, run,
                            submit_class)

pytestmark = pytest.mark.slow

STUDENTS = 32


def _scores(course, assignment=A, notebook=QUICK_NOTEBOOK, mistakes=QUICK_MISTAKES):
    """submit_class's three kinds of submission: right, one mistake (central
    difference), two mistakes (and the gradient, or product partials in
    notebook 01): their scores."""
    import nbformat

    nb = nbformat.read(Path(course) / "source" / assignment / notebook, as_version=4)
    points = {c.metadata.nbgrader["grade_id"]: float(c.metadata.nbgrader["points"])
              for c in nb.cells if c.cell_type == "code" and
              c.metadata.get("nbgrader", {}).get("grade")}
    full = sum(points.values())
    first, second = mistakes
    one = full - points[f"test_{first}"]
    return [full, one, one - points[f"test_{second}"]]


def _grade(course, *args, wait=True):
    """`autodiff-course grade` as the instructor types it, in the course folder."""
    cmd = [sys.executable, "-m", "autodiff_course", "grade", A, "--cell-timeout", "30", *args]
    proc = subprocess.Popen(cmd, cwd=course, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    return proc.communicate(timeout=900) + (proc.returncode,) if wait else proc


def _export(course, path):
    run(["nbgrader", "export", "--to", str(path)], course)
    with open(path, newline="") as f:
        rows = [r for r in csv.DictReader(f) if r["assignment"] == A]
    assert len(rows) == len({r["student_id"] for r in rows})  # none twice
    return path.read_text(), {r["student_id"]: float(r["score"]) for r in rows}


def _report(course):
    report = json.loads((course / "grading-reports" / A / "report.json").read_text())
    students = [s["student"] for s in report["submissions"]]
    assert len(students) == len(set(students))  # none twice
    return report, students


@pytest.fixture(scope="module")
def graded_class(tmp_path_factory):
    """The class graded once by the embedded default (`grade A --jobs 2`)."""
    if sandbox.available() and not os.environ.get("CI"):
        pytest.skip(sandbox.available())
    course = quick_course(tmp_path_factory.mktemp("quick") / "course")
    students = submit_class(course, STUDENTS, assignment=A, notebook=QUICK_NOTEBOOK,
                            mistakes=QUICK_MISTAKES)
    out, err, code = _grade(course, "--jobs", "2")
    assert code == 0, out + err
    tmp = tmp_path_factory.mktemp("export")
    text, scores = _export(course, tmp / "embedded.csv")
    assert len(set(_scores(course))) == 3  # the CSV holds three different scores
    assert scores == {s: _scores(course)[i % 3] for i, s in enumerate(students)}
    return course, students, text, tmp


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """One external cluster (a scheduler, two workers) for the two tests
    below, as a grading machine's cluster serves one run after another; the
    second kills one of its workers."""
    with dask_cluster(tmp_path_factory.mktemp("cluster")) as (address, workers):
        yield address, workers


def test_an_external_cluster_grades_the_class_like_the_embedded_default(graded_class, cluster):
    course, students, embedded, tmp = graded_class
    address, _ = cluster
    out, err, code = _grade(course, "--scheduler", address, "--force")
    assert code == 0, out + err
    assert f"on 2 worker(s) at {address}" in out
    assert "(0 unchanged)" in out  # every submission went to the cluster
    text, _ = _export(course, tmp / "external.csv")
    assert text == embedded
    report, listed = _report(course)
    assert report["problems"] == [] and sorted(listed) == students


def test_a_worker_killed_mid_run_loses_nothing_and_counts_nothing_twice(graded_class, cluster):
    """A third of the class is graded again (their results deleted: an
    interrupted run resumes with what is left) and a worker is killed while
    it works; the export is still the embedded default's."""
    course, students, embedded, tmp = graded_class
    address, workers = cluster
    assert all(w.poll() is None for w in workers)  # both workers alive at the start
    records = course / "autograde-input"
    redo = students[-12:]
    for student in redo:
        shutil.rmtree(records / student)
    started = time.time()
    proc = _grade(course, "--scheduler", address, wait=False)

    def published():
        return sum(p.stat().st_mtime > started
                   for p in records.glob(f"*/{A}/.autodiff-grading.json"))

    deadline = time.monotonic() + 600
    while published() < 3:
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
        time.sleep(0.1)
    os.kill(workers[0].pid, signal.SIGKILL)
    at_kill = published()
    out, err = proc.communicate(timeout=900)
    assert workers[0].wait(timeout=10) == -signal.SIGKILL
    # the killed worker's grading process ended too, and took its
    # submission's scratch folder (sandbox, kernel sockets) with it
    deadline = time.monotonic() + 30
    while list(workers[0].temporary.glob("autodiff-grade-*")):
        assert time.monotonic() < deadline, "a killed worker left its scratch folder"
        time.sleep(0.5)
    assert proc.returncode == 0, out + err
    assert f"({STUDENTS - len(redo)} unchanged)" in out
    assert at_kill < len(redo) - 2  # the kill happened with work left to do
    assert published() == len(redo)
    assert sorted(p.parent.parent.name for p in records.glob(f"*/{A}/.autodiff-grading.json")
                  ) == students
    text, _ = _export(course, tmp / "killed.csv")
    assert text == embedded
    report, listed = _report(course)
    assert report["problems"] == [] and sorted(listed) == students
    assert not any(s["reasons"] for s in report["submissions"])


def test_an_unreachable_scheduler_is_refused_before_anything_runs(graded_class):
    course, *_ = graded_class
    before = sorted(p.stat().st_mtime for p in (course / "autograde-input").rglob("*"))
    out, err, code = _grade(course, "--scheduler", f"tcp://127.0.0.1:{free_port()}", "--force")
    assert code == 1
    assert "cannot reach the Dask scheduler at tcp://127.0.0.1:" in err
    assert "dask scheduler" in err and "leave out --scheduler" in err
    assert sorted(p.stat().st_mtime for p in (course / "autograde-input").rglob("*")) == before


def test_a_rerun_with_nothing_new_records_only_what_the_gradebook_lacks(graded_class):
    """Nothing changed since the last run: phase 2 (nbgrader autograde of the
    whole class) is not run again; once a student's autograded copy is gone,
    it is, and the copy is back."""
    course, students, embedded, tmp = graded_class
    out, err, code = _grade(course)
    assert code == 0, out + err
    assert f"({STUDENTS} unchanged)" in out and "phase 2 not needed" in out
    assert _export(course, tmp / "nothing-new.csv")[0] == embedded
    copy = course / "autograded" / students[0] / A / QUICK_NOTEBOOK
    copy.unlink()
    out, err, code = _grade(course)
    assert code == 0, out + err
    assert f"({STUDENTS} unchanged)" in out and "phase 2 not needed" not in out
    assert copy.is_file()
    assert _export(course, tmp / "restored.csv")[0] == embedded


def test_a_submission_that_kills_its_workers_is_a_fault_not_retried_forever(built_course):
    """A task that kills the worker running it is re-run on fresh workers up
    to the scheduler's limit (distributed.scheduler.allowed-failures), then
    recorded as a fault with the reason; its classmates are graded as usual.

    The classmates hand in notebook 01, not the quick assignment of the
    tests above: the scheduler counts a worker's death against every task
    assigned to it, queued ones included, and a quick classmate was seen
    queued behind the killer on the workers it killed, then recorded as a
    fault too. Notebook 01's classmates run long enough not to be."""
    from autodiff_course.grading.cluster import connect
    from autodiff_course.grading.grade import run_phase1
    from autodiff_course.grading.submission import read_submission
    from autodiff_course.grading.template import templates
    from course_helpers import CLASS_ASSIGNMENT, grade_or_kill_worker

    course, problems = built_course
    assert problems == []
    a01 = CLASS_ASSIGNMENT
    students = submit_class(course, 2)
    todo = {s: (read_submission(course / "submitted" / s / a01), "key") for s in students}
    todo["killer"] = todo[students[0]]
    results = {}

    class Bar:
        def update(self):
            pass

    started = time.monotonic()
    with connect(jobs=2) as client:
        # the embedded workers do not sample their task threads for Dask's profiler
        # and check their event loop and host less often (cluster.CLUSTER_SETTINGS)
        import dask

        assert set(client.run(dask.config.get, "distributed.worker.profile.enabled").values()) \
            == {False}
        assert set(client.run(dask.config.get, "distributed.admin.tick.interval").values()) \
            == {"1s"}
        errors = run_phase1(client, a01, templates(course, a01), todo, "bwrap", 30,
                            lambda s, nbs, outcome, key: results.setdefault(s, outcome), Bar(),
                            task=grade_or_kill_worker)
    assert errors == {}
    assert sorted(results) == sorted(todo)
    scores = _scores(course, a01, CLASS_NOTEBOOK, MISTAKES)
    assert results["killer"].score == 0 and results["killer"].max_score == scores[0]
    assert "killed the worker processes" in " ".join(results["killer"].reasons)
    assert [results[s].score for s in students] == scores[:2]
    assert time.monotonic() - started < 300


def test_phase_two_records_in_batches_and_a_failed_batch_is_redone(tmp_path, monkeypatch):
    """Phase 2 (``grade.Recording``) records what has arrived while phase 1
    goes on: a batch once ``BATCH`` results wait, one batch at a time; the
    last records everyone no batch did, or the whole class after a batch
    failed. nbgrader is replaced by a recorder of
    its arguments here (the class tests run the real one)."""
    import subprocess as sp
    import threading

    from autodiff_course.grading import grade as G

    students = [f"s{i:02d}" for i in range(12)]
    for s in students:
        (tmp_path / "autograde-input" / s / "a").mkdir(parents=True)
    calls, release = [], threading.Event()

    class Later:
        def __init__(self, course, assignment):
            self.cancelled = False

        def run(self, check=False, more=()):
            excluded = set(more[0].split("=", 1)[1].split(",")) if more else set()
            calls.append(sorted(set(students) - excluded))
            if len(calls) == 1:
                release.wait(10)  # the first batch takes a while
            return sp.CompletedProcess([], 1 if fail and len(calls) == 1 else 0, "", "")

        def cancel(self):
            self.cancelled = True

    monkeypatch.setattr(G, "recorder", Later)
    monkeypatch.setattr(G, "BATCH", 4)
    for fail in (False, True):
        calls.clear()
        release.clear()
        recording = G.Recording(tmp_path, "a", len(students))
        recording.load()
        for s in students[:6]:
            recording.add(s)
        assert calls == [students[:4]]  # four waited; one batch at a time
        release.set()
        recording.batch[0][0].join()
        for s in students[6:9]:
            recording.add(s)
        # the next four waited: a batch again, unless the first one failed
        assert calls[1:] == ([] if fail else [students[4:8]])
        if recording.batch is not None:
            recording.batch[0][0].join()
        proc = recording.finish()  # the rest arrived (or were graded in an earlier run)
        recording.close()
        assert proc.returncode == 0
        # the last batch: everyone not yet recorded, or everyone after a failure
        assert calls[-1] == (students if fail else students[8:]), calls
        assert recording.later is None
