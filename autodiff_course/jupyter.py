"""The Jupyter plumbing, one of each: an nbgrader command, a kernel over Unix
sockets (optionally inside the sandbox), a notebook runner on ``nbclient``,
and the nbgrader role of a cell.

Build, grading and mutation testing all run notebooks through
``NotebookRunner``; the grader's judge sends its requests to a running
kernel through ``KernelLine``; nothing else in the package starts a kernel
or reads kernel messages itself.

Kernels talk over Unix sockets (ZeroMQ ``ipc``), never TCP: free TCP ports
are found by binding and releasing them, which races when several kernels
start at once (parallel tests, parallel grading) and loses messages.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
from contextlib import contextmanager
from pathlib import Path

import nbformat
from jupyter_client import AsyncKernelManager
from jupyter_client.kernelspec import KernelSpec
from jupyter_core.utils import run_sync
from nbclient import NotebookClient
from nbclient.exceptions import CellTimeoutError, DeadKernelError
from nbgrader import utils as nbgrader_utils

from .edition.kernel_polling import SlicedKernelClient

__all__ = ["CellTimeoutError", "DeadKernelError", "KernelLine", "KernelSession", "NotebookRunner",
           "OutputFlood", "grade_id", "is_answer", "is_grade", "is_locked", "is_solution",
           "is_test", "kernel_manager", "nbgrader",
           "NbgraderLater", "points", "stop_kernel", "tool_environment"]


# ------------------------------------------------------------ nbgrader


def tool_environment(extra=None):
    """The environment for a tool of this Python (nbgrader runs `alembic` from
    PATH): this environment's scripts first on PATH, plus ``extra``."""
    path = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    return {**os.environ, "PATH": path, **(extra or {})}


# ``python -m nbgrader``, without jsonschema's iri parsers (skip_iri_formats);
# NbgraderLater's waits for a line "go" on stdin before the command starts,
# followed by the JSON list of any arguments to add
_NBGRADER_LOAD = ("from autodiff_course import skip_iri_formats; skip_iri_formats(); "
                  "import sys; from nbgrader.apps.nbgraderapp import main; "
                  "sys.argv[0] = 'nbgrader'; ")
_NBGRADER_MAIN = _NBGRADER_LOAD + "main()"
_NBGRADER_GO = _NBGRADER_LOAD + (
    "import json; go, _, more = sys.stdin.readline().partition(' '); "
    "go.strip() == 'go' or sys.exit(1); sys.argv += json.loads(more or '[]'); main()")


def nbgrader(course, *args, check=True, env=None):
    """Run one nbgrader command in the course folder; returns the CompletedProcess."""
    cmd = [sys.executable, "-c", _NBGRADER_MAIN, *args]
    proc = subprocess.run(cmd, cwd=course, capture_output=True, text=True,
                          env=tool_environment(env))
    return _checked(proc, args, check)


def _checked(proc, args, check):
    if check and proc.returncode != 0:
        raise RuntimeError(f"`nbgrader {' '.join(args)}` failed (exit {proc.returncode}):\n"
                           f"{proc.stdout}\n{proc.stderr}")
    return proc


class NbgraderLater:
    """One nbgrader command, its interpreter started now: Python and nbgrader
    load (about a second of one core) while the caller does other work, and
    the command itself, from reading the course's configuration on, runs at
    ``run()`` (as ``nbgrader()`` would run it, with ``more`` arguments: any
    length, they do not pass through the command line). ``cancel()`` ends it
    before it did anything; so does the end of its standard input."""

    def __init__(self, course, *args, env=None):
        self.args = args
        self.proc = subprocess.Popen([sys.executable, "-c", _NBGRADER_GO, *args], cwd=course,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True,
                                     env=tool_environment(env))

    def run(self, check=True, more=()):
        out, err = self.proc.communicate(f"go {json.dumps(list(more))}\n")
        return _checked(subprocess.CompletedProcess(self.proc.args, self.proc.returncode, out,
                                                    err), (*self.args, *more), check)

    def cancel(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.communicate()


# -------------------------------------------------------- cell roles


def is_grade(cell):
    return bool(nbgrader_utils.is_grade(cell))


def is_solution(cell):
    return bool(nbgrader_utils.is_solution(cell))


def is_locked(cell):
    return bool(nbgrader_utils.is_locked(cell))


def is_test(cell):
    """An autograded test cell: graded code without a solution."""
    return is_grade(cell) and cell.cell_type == "code"


def is_answer(cell):
    """A student's code answer cell."""
    return is_solution(cell) and cell.cell_type == "code"


def grade_id(cell):
    return cell.metadata.get("nbgrader", {}).get("grade_id")


def points(cell):
    return float(cell.metadata.get("nbgrader", {}).get("points", 0) or 0)


# ------------------------------------------------------------ kernels


class _IpcKernelManager(AsyncKernelManager):
    """A kernel manager over Unix sockets in ``folder``, whose kernel command
    may be prefixed (``prefix``: the sandbox's command line)."""

    def __init__(self, folder, prefix=(), **kw):
        folder = Path(folder)
        super().__init__(kernel_name="python3", transport="ipc", ip=str(folder / "kernel"),
                         connection_file=str(folder / "kernel.json"),
                         client_factory=SlicedKernelClient, **kw)
        self._argv = [*prefix, sys.executable, "-m", "ipykernel_launcher",
                      "-f", "{connection_file}"]

    @property
    def kernel_spec(self):
        return KernelSpec(argv=self._argv, display_name="autodiff-course", language="python")


def kernel_manager(folder, prefix=()):
    """The one way the package makes a kernel manager (see the module docstring)."""
    return _IpcKernelManager(folder, prefix)


def stop_kernel(km, now=True):
    """Shut a kernel down whatever state it is in (dead, hung, fine);
    ``now=False`` asks it to exit first."""
    if km is None:
        return
    provisioner = getattr(km, "provisioner", None)
    process = getattr(provisioner, "process", None)
    if process is not None:
        # Killed and reaped here: jupyter_client would find it dead only at its
        # next poll, a tenth of a second later (per kernel, per submission).
        if now and process.poll() is None:
            try:
                os.killpg(process.pid, signal.SIGKILL)  # its own process group
                process.wait(timeout=10)
            except (OSError, subprocess.TimeoutExpired):
                pass  # gone already, or left to jupyter_client below
        if process.poll() is not None:
            # Reaped (here, or when is_alive found it dead): its number is free
            # and may already be another program's process group, which
            # jupyter_client would interrupt and kill by that number. Its
            # provisioner forgets the process instead.
            run_sync(provisioner.wait)()
    for step, kwargs in ((km.shutdown_kernel, {"now": now}), (km.cleanup_resources, {})):
        try:
            run_sync(step)(**kwargs)
        except Exception:  # noqa: BLE001  (already dead or never started)
            pass


# ------------------------------------------------------------ running


class OutputFlood(RuntimeError):
    """A notebook produced more output in all than the runner accepts."""


class NotebookRunner(NotebookClient):
    """``nbclient.NotebookClient`` on an ipc kernel, with optional caps on the
    output kept per cell (``cell_limit`` bytes: the rest is replaced by one
    line) and produced in all (``total_limit``: ``OutputFlood`` stops the run).
    """

    def __init__(self, nb, cwd, *, km=None, timeout=120, cell_limit=None, total_limit=None,
                 **kw):
        self._sockets = None
        if km is None:
            self._sockets = tempfile.TemporaryDirectory(prefix="autodiff-kernel-")
            km = kernel_manager(self._sockets.name)
        super().__init__(nb, km=km, timeout=timeout, allow_errors=True, kernel_name="python3",
                         resources={"metadata": {"path": str(cwd)}}, **kw)
        self.cell_limit, self.total_limit, self.total = cell_limit, total_limit, 0

    def output(self, outs, msg, display_id, cell_index):
        if self.cell_limit is None and self.total_limit is None:
            return super().output(outs, msg, display_id, cell_index)
        size = len(json.dumps(msg.get("content", {}), default=str))
        self.total += size
        if self.total_limit is not None and self.total > self.total_limit:
            raise OutputFlood(f"the notebook produced more than "
                              f"{self.total_limit // 1024 ** 2} MB of output")
        kept = sum(len(json.dumps(o, default=str)) for o in outs)
        if self.cell_limit is not None and kept + size > self.cell_limit:
            if not any(o.get("name") == "autodiff-truncated" for o in outs):
                note = nbformat.v4.new_output(
                    "stream", name="stdout",
                    text=f"\n[output truncated by the autograder after "
                         f"{self.cell_limit // 1024} KB]\n")
                outs.append(note)
            return None
        return super().output(outs, msg, display_id, cell_index)

    def run_all(self):
        """Run every cell top to bottom in a fresh kernel, continuing past errors."""
        try:
            self.execute()
        finally:
            # nbclient leaves a kernel manager it was given alone: without this
            # the kernel outlives the run ("Parent appears to have exited").
            self.stop(now=False)
            self.close()
        return self.nb

    @contextmanager
    def session(self):
        """A started kernel for running cells one at a time (``run_cell``)."""
        try:
            with self.setup_kernel(stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL):
                yield self
        finally:
            self.stop()
            self.close()

    def run_cell(self, cell, index=0):
        """Run one cell; raises ``CellTimeoutError``, ``DeadKernelError`` or
        ``OutputFlood`` when the kernel does not come back with a result."""
        return self.execute_cell(cell, index)

    def stop(self, now=True):
        """Shut the kernel down whatever state it is in (``stop_kernel``)."""
        stop_kernel(self.km, now)

    def close(self):
        if self._sockets is not None:
            self._sockets.cleanup()
            self._sockets = None


class KernelLine:
    """Requests to a running kernel besides its notebook's cells (the grader's
    judge uses it): one ``execute`` request or comm message at a time whose
    iopub messages go to a callback, and the kernel's ``input()`` prompts
    (during an ``execute`` request), which the caller answers. ``kc``/``km``: the client and manager of a started
    ``NotebookRunner``. Raises ``TimeoutError`` past a deadline (the kernel is
    then shut down: a request that ignores interrupts cannot hold the grader)
    and ``DeadKernelError`` when the kernel is gone.

    A judge makes hundreds of requests per notebook, each a few messages, so
    they go over plain (blocking) ZeroMQ shadows of the client's sockets with
    the client's ``Session`` (signing, checking, packing), polled in one
    ``zmq.Poller``: no event loop runs per message. nbclient uses the same
    client's asyncio sockets only between requests, for the notebook's cells,
    and nothing is left waiting on them meanwhile."""

    def __init__(self, kc, km):
        self.kc, self.km = kc, km
        self._sockets = self._poller = None

    def _socket(self, name):
        if self._sockets is None:
            import zmq

            self._sockets = {channel: zmq.Socket.shadow(
                getattr(self.kc, f"{channel}_channel").socket.underlying)
                for channel in ("shell", "iopub", "stdin")}
            self._poller = zmq.Poller()
            for channel in ("iopub", "stdin"):
                self._poller.register(self._sockets[channel], zmq.POLLIN)
        return self._sockets[name]

    def _send(self, channel, kind, content):
        """Send a message; returns its id."""
        return self.kc.session.send(self._socket(channel), kind, content)["header"]["msg_id"]

    def _recv(self, channel):
        """The next message waiting on ``channel``, or None."""
        import zmq

        try:
            parts = self._socket(channel).recv_multipart(zmq.NOBLOCK)
        except zmq.Again:
            return None
        _, parts = self.kc.session.feed_identities(parts)
        return self.kc.session.deserialize(parts)

    def execute(self, code):
        """Send ``code``; returns the request's message id."""
        return self._send("shell", "execute_request", {
            "code": code, "silent": True, "store_history": False, "user_expressions": {},
            "allow_stdin": True, "stop_on_error": False})

    def answer(self, text):
        """Answer the kernel's pending ``input()``."""
        self._send("stdin", "input_reply", {"value": text})

    def comm_open(self, target, deadline):
        """Open a comm to ``target`` (registered in the kernel); returns its id."""
        import uuid

        comm_id = uuid.uuid4().hex
        msg_id = self._send("shell", "comm_open", {"comm_id": comm_id, "target_name": target,
                                                   "data": {}})
        self.messages(msg_id, lambda m: None, deadline)
        return comm_id

    def comm_send(self, comm_id, data):
        """Send ``data`` on a comm; returns the message id (its replies come on
        iopub, as for ``execute``, and then the kernel is idle)."""
        return self._send("shell", "comm_msg", {"comm_id": comm_id, "data": data})

    def messages(self, msg_id, on_message, deadline):
        """Hand each iopub message of request ``msg_id`` to ``on_message``
        until the kernel is idle (returns None) or asks for input (returns the
        prompt; call again after answering it)."""
        state = {}
        while True:
            self._check(deadline, state)
            msg = self._recv("iopub")
            if msg is not None and msg.get("parent_header", {}).get("msg_id") == msg_id:
                if msg.get("msg_type") == "status" and \
                        msg.get("content", {}).get("execution_state") == "idle":
                    return None
                on_message(msg)
            request = self._recv("stdin")
            if request is not None and request.get("msg_type") == "input_request":
                return request.get("content", {}).get("prompt", "")
            if msg is None and request is None:
                self._poller.poll(50)  # until iopub or stdin has a message

    def prompt(self, deadline):
        """The kernel's next ``input()`` prompt."""
        state = {}
        while True:
            self._check(deadline, state)
            request = self._recv("stdin")
            if request is None:
                self._poller.poll(50)
            elif request.get("msg_type") == "input_request":
                return request.get("content", {}).get("prompt", "")

    def finish(self, msg_id):
        """Take the request's reply off the shell channel."""
        import zmq

        shell = self._socket("shell")
        for _ in range(100):
            if not shell.poll(50, zmq.POLLIN):
                return
            msg = self._recv("shell")
            if msg is not None and msg.get("parent_header", {}).get("msg_id") == msg_id:
                return

    def _check(self, deadline, state):
        from time import monotonic

        if monotonic() > deadline:
            try:
                run_sync(self.km.shutdown_kernel)(now=True)
            except Exception:  # noqa: BLE001  (already gone)
                pass
            raise TimeoutError("past the deadline")
        if monotonic() - state.setdefault("checked", monotonic()) > 1.0:
            state["checked"] = monotonic()
            if not run_sync(self.km.is_alive)():
                raise DeadKernelError("the kernel died")


class KernelSession:
    """One kernel for running many snippets of code, restarted on demand
    (mutation testing runs hundreds of mutants in one kernel)."""

    def __init__(self, cwd, timeout=30):
        self.cwd, self.timeout = Path(cwd), timeout
        self._runner, self._context = None, None

    def start(self):
        self._runner = NotebookRunner(nbformat.v4.new_notebook(), self.cwd, timeout=self.timeout)
        self._context = self._runner.session()
        self._context.__enter__()

    def run(self, source):
        """Run ``source``: True if it raised nothing, False if it raised, None if
        it timed out or killed the kernel (the session is then restarted)."""
        cell = nbformat.v4.new_code_cell(source)
        self._runner.nb.cells = [cell]  # nbclient writes the result back into its notebook
        try:
            self._runner.run_cell(cell, 0)
        except (CellTimeoutError, DeadKernelError):
            self.restart()
            return None
        return not any(o.get("output_type") == "error" for o in cell.outputs)

    def restart(self):
        self.stop()
        self.start()

    def stop(self):
        if self._context is not None:
            self._context.__exit__(None, None, None)
        self._runner, self._context = None, None
