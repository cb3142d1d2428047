"""Where phase 1 runs: a Dask cluster, embedded or existing.

* Embedded (the default): a ``distributed.LocalCluster`` on this machine, one
  worker process per core (or ``jobs``), one thread each. Nothing to start.
* Existing: ``autodiff-course grade A --scheduler tcp://HOST:PORT`` connects
  to a running Dask scheduler (``dask scheduler``, ``dask worker ADDRESS
  --nthreads 1``, dask-jobqueue, dask-kubernetes, ``dask ssh``).

Workers need this Python environment (the same autodiff_course and
autodiff_ref, ``check_workers`` compares a hash of their sources) and the
sandbox, but no shared file system: each task carries the instructor's
templates and one submission's files, and
returns the graded notebooks and the ``Outcome``.

Faults: a worker that dies mid-run has its tasks re-run on another worker by
the scheduler; a task that was running on ``ALLOWED_FAILURES`` + 1 workers
that died raises ``KilledWorker`` and is recorded as a fault by ``grade.py``.
On an existing cluster that limit is the scheduler's own setting
(``distributed.scheduler.allowed-failures``, 3 unless configured).
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import shutil
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager

import dask
from distributed import Client, LocalCluster, WorkerPlugin

from .. import skip_iri_formats
from . import sandbox

CONNECT_TIMEOUT = 10  # seconds to reach a scheduler
WORKER_WAIT = 60  # seconds to wait for the first worker of an existing cluster
ALLOWED_FAILURES = 2  # worker deaths a task may be part of before it is a fault
# Dask's own bookkeeping takes cores that run the kernels. Its profiler
# samples every worker's task thread every 10 ms: a grading task is one wait
# on the grading process, so the samples show nothing, at about a fifth of a
# second of a core per submission. Every scheduler, nanny and worker also
# checks its event loop every 20 ms (for a warning after 3 s without a tick)
# and samples its host's CPU and memory every 0.5 s (for the dashboard,
# which the embedded cluster has not): an idle 2-worker cluster used 5% of a
# core in this process and 2.5% in each worker, 1.8% and 0.8% with these.
# For the embedded cluster; docs/distributed-grading.md gives the settings
# for workers started by hand.
CLUSTER_SETTINGS = {"distributed.worker.profile.enabled": False,
                    "distributed.admin.tick.interval": "1s",
                    "distributed.admin.system-monitor.interval": "2s"}


class SchedulerUnreachable(RuntimeError):
    """``--scheduler`` names a scheduler that does not answer."""


class GradingProcessDied(RuntimeError):
    """The worker's grading process died while it ran a submission."""


# Each worker grades in one long-lived child process, started once and reused
# for every submission (never a kernel: each submission gets a fresh one). The
# kernel client then runs in that process's main thread: in a Dask worker's
# task thread, nbclient's ZeroMQ polling sometimes missed a reply until the
# cell's time limit ran out (30-60 s lost on a 3 s notebook).
_POOL = None
_POOL_LOCK = threading.Lock()


def _watch_parent(parent):
    while os.getppid() == parent:
        time.sleep(1)
    from .submission import remove_scratch

    remove_scratch()  # what the submission under way had on disk
    os._exit(1)  # the worker is gone: so is this process (and, with it, the kernels)


def _start_grading_process(parent):
    # before the grader imports nbformat (unless the program that started the
    # cluster is a script that imports it: this process imported that first)
    skip_iri_formats()
    # a Dask nanny sets this for its workers (glibc then returns freed memory
    # at once); inherited by the kernels it made numpy-heavy notebooks slower
    os.environ.pop("MALLOC_TRIM_THRESHOLD_", None)
    threading.Thread(target=_watch_parent, args=(parent,), daemon=True).start()
    warm_up()


def grading_pool():
    """This worker's grading process (started on first use)."""
    global _POOL
    with _POOL_LOCK:
        if _POOL is None:
            # A worker under a Dask nanny is a "daemonic" multiprocessing process,
            # which multiprocessing forbids to start children; the grading
            # process watches its parent itself (``_watch_parent``), so the flag
            # is lifted while it starts (the pool starts its one process at once).
            me = multiprocessing.current_process()
            daemonic = me.daemon
            me._config["daemon"] = False
            try:
                pool = ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn"),
                                           initializer=_start_grading_process,
                                           initargs=(os.getpid(),))
                pool.submit(warm_up).result()
            finally:
                me._config["daemon"] = daemonic
            _POOL = pool
        return _POOL


def grade_task(assignment_templates, files, student, sandbox_mode, cell_timeout):
    """The Dask task: ``submission.grade_files`` in this worker's grading process."""
    global _POOL
    from .submission import grade_files

    pool = grading_pool()
    try:
        return pool.submit(grade_files, assignment_templates, files, student, sandbox_mode,
                           cell_timeout).result()
    except BrokenProcessPool:
        with _POOL_LOCK:
            if _POOL is pool:
                _POOL = None
        raise GradingProcessDied(f"the grading process died while running {student}'s "
                                 "submission (its kernel killed it, or it ran out of memory)") \
            from None


def stop_grading_process():
    """Let this worker's grading process end (it ends its kernels) without
    waiting: a worker whose grading process still ran did not exit when its
    cluster closed, until the nanny killed it 4 s later."""
    global _POOL
    with _POOL_LOCK:
        pool, _POOL = _POOL, None
    if pool is not None:
        pool.shutdown(wait=False, cancel_futures=True)


class WarmUp(WorkerPlugin):
    """Start the worker's grading process, with the grader and its libraries
    imported, before the first submission (each task then starts only a
    fresh kernel); stop it with the worker."""

    name = "autodiff-course-warm-up"

    def setup(self, worker):
        grading_pool()

    def teardown(self, worker):
        stop_grading_process()


def warm_up():
    import nbclient  # noqa: F401
    import nbformat  # noqa: F401
    import numpy  # noqa: F401

    from . import judge, submission  # noqa: F401  (jupyter_client, nbgrader.utils, the screen)

    judge.warm_up()  # matplotlib, IPython's input transformer, the reference engine


def worker_report(sandbox_mode):
    """What a worker says about itself before it gets work (``client.run``):
    asked of its grading process, which runs the kernels and the grader's
    code (the worker process itself then never imports the grader)."""
    return grading_pool().submit(grading_process_report, sandbox_mode).result()


def grading_process_report(sandbox_mode):
    from .submission import package_digest

    return {"sandbox": sandbox.available(sandbox_mode), "digest": package_digest()}


@contextmanager
def connect(scheduler=None, jobs=None):
    """A ``distributed.Client`` on an existing scheduler (its address, or a
    ``Client`` the caller made, e.g. Dask Gateway's), or on an embedded
    ``LocalCluster`` of ``jobs`` single-threaded worker processes."""
    if isinstance(scheduler, Client):
        scheduler.register_plugin(WarmUp())
        yield scheduler
        return
    if scheduler:
        try:
            client = Client(scheduler, timeout=CONNECT_TIMEOUT, set_as_default=False)
        except (OSError, TimeoutError, ValueError) as exc:
            raise SchedulerUnreachable(
                f"cannot reach the Dask scheduler at {scheduler} ({type(exc).__name__}: "
                f"{str(exc)[:300]}). Check the address, start it (`dask scheduler`, then "
                f"`dask worker {scheduler} --nthreads 1` on each grading machine; "
                "docs/distributed-grading.md), or leave out --scheduler to grade on this "
                "machine.") from None
        with client:
            try:
                client.wait_for_workers(1, timeout=WORKER_WAIT)
            except (TimeoutError, OSError):
                raise SchedulerUnreachable(
                    f"the Dask scheduler at {scheduler} has no workers after {WORKER_WAIT} s: "
                    f"start some (`dask worker {scheduler} --nthreads 1`)") from None
            client.register_plugin(WarmUp())
            yield client
        return
    with dask.config.set({"distributed.scheduler.allowed-failures": ALLOWED_FAILURES,
                          **CLUSTER_SETTINGS}):
        cluster = LocalCluster(n_workers=jobs or os.cpu_count() or 1, threads_per_worker=1,
                               processes=True, dashboard_address=None,
                               silence_logs=logging.ERROR)
    with cluster, Client(cluster, set_as_default=False) as client:
        client.register_plugin(WarmUp())
        yield client


class Session:
    """``connect`` in the background: started while the caller reads the
    class (``start``), waited for when the client is needed (``client``),
    and closed while the caller records the results (``close_in_background``);
    leaving the ``with`` block waits for whatever is still under way and
    closes it. An error of ``connect`` is raised by ``client``."""

    def __init__(self, scheduler=None, jobs=None):
        self._args = (scheduler, jobs)
        self._opening = self._closing = self._context = self._client = self._error = None

    def __enter__(self):
        return self

    def start(self):
        if self._opening is None:
            self._opening = threading.Thread(target=self._open, name="autodiff-course connect",
                                             daemon=True)
            self._opening.start()
        return self

    def _open(self):
        try:
            context = connect(*self._args)
            self._client = context.__enter__()
            self._context = context
        except BaseException as exc:  # noqa: BLE001  (raised by client() in the caller)
            self._error = exc

    def client(self):
        self.start()._opening.join()
        if self._error is not None:
            raise self._error
        return self._client

    def close_in_background(self):
        if self._opening is not None and self._closing is None:
            self._closing = threading.Thread(target=self._close, name="autodiff-course close",
                                             daemon=True)
            self._closing.start()

    def _close(self):
        self._opening.join()
        context, self._context = self._context, None
        if context is not None:
            context.__exit__(None, None, None)

    def __exit__(self, *exc):
        if self._closing is None and self._opening is not None:
            self._close()
        elif self._closing is not None:
            self._closing.join()


def check_workers(client, sandbox_mode, digest):
    """Refuse to start unless every worker can sandbox kernels and runs the
    same grader as this machine. Returns the number of workers."""
    reports = client.run(worker_report, sandbox_mode)
    problems = []
    for address, report in sorted(reports.items()):
        if report["sandbox"]:
            problems.append(f"worker {address}: {report['sandbox']}")
        if report["digest"] != digest:
            problems.append(f"worker {address} runs another version of autodiff_course or "
                            "autodiff_ref than this machine: install the same one there")
    if any(r["sandbox"] for r in reports.values()) and sandbox.mode(sandbox_mode) == "bwrap":
        problems.append(
            "the workers cannot run bubblewrap, which isolates each student's kernel. Inside "
            "Docker or Kubernetes the default seccomp profile blocks the namespaces it needs "
            "(bubblewrap issue #505). Either install bubblewrap on hosts that allow it, or "
            "pass --sandbox=container when each worker runs in its own container that is the "
            "isolation boundary (docs/distributed-grading.md says what that protects and "
            "what not), or --no-sandbox only for trusted code.")
    if problems:
        raise RuntimeError("cannot grade on these workers:\n  " + "\n  ".join(problems))
    return len(reports)
