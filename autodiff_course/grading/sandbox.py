"""Running a submission's kernel in a sandbox.

The kernel runs under bubblewrap (``bwrap``) in new user, mount, PID,
network, IPC and UTS namespaces, with no capabilities:

* the file system it sees is the system (``/usr``, ``/etc``) and the Python
  environment, read-only, plus one writable scratch folder holding its copy
  of the submission; the course folder (sources, solutions, hidden tests,
  gradebook, other submissions), the home folders and the repository are not
  there at all;
* there is no network (only a private loopback); the kernel talks to the
  grader over Unix sockets in the scratch folder (ZeroMQ ``ipc`` transport);
* ``prlimit`` caps its address space (memory), CPU time and file size.

If bwrap is missing or namespaces are not permitted, ``available()`` says
why; the grader refuses to run untrusted code without it unless told to.

Three modes (``MODES``; ``autodiff-course grade --sandbox``):

* ``bwrap`` (the default): the above.
* ``container``: the worker's container (a Kubernetes pod, a Docker
  container) is the isolation boundary, because bubblewrap cannot make
  namespaces inside it (Docker's and Kubernetes' default seccomp profile,
  bubblewrap issue #505). The kernel runs under ``prlimit`` only, as the
  worker's user, in a scratch folder; docs/distributed-grading.md says what
  this does and does not protect.
* ``none``: no isolation and no limits (``--no-sandbox``, trusted code only).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

MEMORY_LIMIT = 3 * 1024 ** 3  # bytes of address space per kernel
CPU_LIMIT = 600  # CPU seconds per kernel
FILE_LIMIT = 64 * 1024 ** 2  # largest file the kernel may write


def _package_dirs():
    import autodiff_course
    import autodiff_ref

    return {str(Path(m.__file__).resolve().parent) for m in (autodiff_ref, autodiff_course)}


def _python_dirs():
    dirs = {sys.prefix, sys.base_prefix, os.path.realpath(sys.base_prefix),
            os.path.realpath(sys.prefix)}
    for p in sys.path:
        if p and os.path.isdir(p) and "site-packages" in p:
            dirs.add(os.path.realpath(p))
    return {d for d in dirs if not d.startswith(("/usr", "/etc"))}


def bwrap_args(scratch):
    """The bubblewrap command line (before the program) for one scratch folder."""
    args = ["bwrap", "--unshare-all", "--die-with-parent", "--new-session",
            "--ro-bind", "/usr", "/usr", "--ro-bind", "/etc", "/etc",
            "--dev", "/dev", "--proc", "/proc", "--tmpfs", "/tmp"]
    for top in ("/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"):
        if os.path.islink(top):
            args += ["--symlink", os.readlink(top), top]
        elif os.path.isdir(top):
            args += ["--ro-bind", top, top]
    for d in sorted(_python_dirs() | _package_dirs()):
        args += ["--ro-bind", d, d]
    # the kernel imports the grader's own copy of the packages (only the package
    # folders are visible, not the rest of the repository around them)
    parents = sorted({str(Path(d).parent) for d in _package_dirs()})
    args += ["--bind", str(scratch), str(scratch), "--chdir", str(scratch),
             "--setenv", "HOME", str(scratch), "--setenv", "MPLCONFIGDIR", "/tmp",
             "--setenv", "MPLBACKEND", "agg", "--setenv", "OPENBLAS_NUM_THREADS", "1",
             "--setenv", "OMP_NUM_THREADS", "1", "--setenv", "PYTHONDONTWRITEBYTECODE", "1",
             "--setenv", "PYTHONPATH", os.pathsep.join(parents),
             "--unsetenv", "JPY_PARENT_PID"]
    return args


def limit_args(memory=MEMORY_LIMIT, cpu=CPU_LIMIT, fsize=FILE_LIMIT):
    return ["prlimit", f"--as={memory}", f"--cpu={cpu}", f"--fsize={fsize}", "--core=0"]


MODES = ("bwrap", "container", "none")


def mode(value):
    """The sandbox mode named by ``value``: one of ``MODES``, or True (bwrap)
    / False (none) as the older ``use_sandbox`` flag said."""
    if value is True:
        return "bwrap"
    if value is False or value is None:
        return "none"
    if value not in MODES:
        raise ValueError(f"unknown sandbox {value!r}: one of {', '.join(MODES)}")
    return value


def prefix_for(sandbox_mode, scratch):
    """The command prefix of a kernel in ``scratch`` for one mode."""
    sandbox_mode = mode(sandbox_mode)
    if sandbox_mode == "bwrap":
        return command_prefix(scratch)
    if sandbox_mode == "container":
        return limit_args()
    return ()


def available(sandbox_mode="bwrap"):
    """``None`` if kernels can run here in ``sandbox_mode``, else the reason
    they cannot."""
    sandbox_mode = mode(sandbox_mode)
    if sandbox_mode == "none":
        return None
    if sandbox_mode == "container":
        if shutil.which("prlimit") is None:
            return "`prlimit` is not installed (Debian: apt-get install util-linux)"
        return None
    for tool in ("bwrap", "prlimit"):
        if shutil.which(tool) is None:
            return (f"`{tool}` is not installed (Debian: apt-get install bubblewrap "
                    "util-linux)")
    probe = subprocess.run(["bwrap", "--unshare-all", "--ro-bind", "/", "/", "--dev", "/dev",
                            "true"], capture_output=True, text=True)
    if probe.returncode != 0:
        return f"bubblewrap cannot create namespaces here: {probe.stderr.strip()}"
    return None


def command_prefix(scratch, memory=MEMORY_LIMIT, cpu=CPU_LIMIT):
    """What goes before the kernel's command line to run it sandboxed."""
    return limit_args(memory, cpu) + bwrap_args(scratch)
