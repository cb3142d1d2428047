"""Running a submission's kernel in a sandbox.

The kernel runs under bubblewrap (``bwrap``) in new user, mount, PID,
network, IPC and UTS namespaces, with no capabilities:

* the file system it sees is the system (``/usr``, ``/etc``) and the Python
  environment, read-only; its working folder (also its ``HOME``) and
  ``/tmp`` are empty in-memory file systems of a fixed size (``WORK_SIZE``,
  ``TMP_SIZE``: writing there never touches the host's disk and cannot
  grow past the cap), holding only the instructor's data files; the course
  folder (sources, solutions, hidden tests, gradebook, other submissions),
  the submission folder, the home folders and the repository are not there
  at all;
* its environment is ``environment()``: a few variables set here, nothing
  of the grader's;
* with ``engine=False`` the reference engine is replaced by a stand-in of
  the same module names that raises when used (``engine_stub``), and
  ``HIDDEN_PACKAGES`` (PyTorch, JAX, SymPy, ...: other ways to get a
  derivative) are empty folders: an answer that must not delegate cannot;
* there is no network (only a private loopback); the kernel talks to the
  grader over Unix sockets in a folder of its own (ZeroMQ ``ipc`` transport);
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
import tempfile
from pathlib import Path

MEMORY_LIMIT = 3 * 1024 ** 3  # bytes of address space per kernel
CPU_LIMIT = 600  # CPU seconds per kernel
FILE_LIMIT = 64 * 1024 ** 2  # largest file the kernel may write
WORK_SIZE = 256 * 1024 ** 2  # bytes of the kernel's working folder (in memory)
TMP_SIZE = 64 * 1024 ** 2  # bytes of its /tmp (in memory)
WORK_DIR = "/home/student"  # the kernel's working folder and HOME, inside the sandbox
HIDDEN_PACKAGES = ("torch", "functorch", "jax", "jaxlib", "autograd", "sympy", "mpmath",
                   "tensorflow", "numdifftools", "findiff", "scipy/differentiate")
UNAVAILABLE = "the reference engine (autodiff_ref) is not available"  # the stand-in's words
ENGINE_STUB = '''"""A stand-in for the reference engine: this kernel grades answers that must
not use it, so every name of it raises when used."""

MESSAGE = ("the reference engine (autodiff_ref) is not available to the answers of "
           "this notebook: the exercise asks you to compute it yourself")


class Unavailable:
    def __init__(self, name):
        self.name = name

    def __getattr__(self, attr):
        if attr.startswith("__"):
            raise AttributeError(attr)
        raise ModuleNotFoundError(MESSAGE)

    def __call__(self, *args, **kwargs):
        raise ModuleNotFoundError(MESSAGE)

    def __mro_entries__(self, bases):  # class F(autodiff_ref.Function)
        raise ModuleNotFoundError(MESSAGE)

    def __repr__(self):
        return f"<autodiff_ref.{self.name}: not available here>"


def __getattr__(name):
    if name.startswith("__"):
        raise AttributeError(name)
    return Unavailable(name)
'''


def _package_dirs():
    import autodiff_course
    import autodiff_ref

    return {str(Path(m.__file__).resolve().parent) for m in (autodiff_ref, autodiff_course)}


def _engine_dir():
    import autodiff_ref

    return Path(autodiff_ref.__file__).resolve().parent


def _python_dirs():
    dirs = {sys.prefix, sys.base_prefix, os.path.realpath(sys.base_prefix),
            os.path.realpath(sys.prefix)}
    for p in sys.path:
        if p and os.path.isdir(p) and "site-packages" in p:
            dirs.add(os.path.realpath(p))
    return {d for d in dirs if not d.startswith(("/usr", "/etc"))}


def _site_dirs():
    return sorted({os.path.realpath(p) for p in sys.path if p and os.path.isdir(p)
                   and "-packages" in p})


def hidden_dirs():
    """The folders of ``HIDDEN_PACKAGES`` installed here."""
    return [os.path.join(site, name) for site in _site_dirs() for name in HIDDEN_PACKAGES
            if os.path.isdir(os.path.join(site, name))]


def engine_stub(folder):
    """Write the stand-in of the reference engine into ``folder``: every module
    file of the real package becomes a file of the same name that raises when
    anything of it is used. Returns ``folder``."""
    folder, real = Path(folder), _engine_dir()
    for path in real.rglob("*.py"):
        target = folder / path.relative_to(real)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(ENGINE_STUB)
    return folder


def environment(work=WORK_DIR):
    """The whole environment of a sandboxed kernel: nothing of the grader's."""
    parents = sorted({str(Path(d).parent) for d in _package_dirs()})
    return {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": str(work), "LANG": "C.UTF-8",
            "MPLBACKEND": "agg", "MPLCONFIGDIR": "/tmp", "OPENBLAS_NUM_THREADS": "1",
            "OMP_NUM_THREADS": "1", "PYTHONDONTWRITEBYTECODE": "1",
            "PYTHONPATH": os.pathsep.join(parents)}


_FONTS = {}  # the font list's file name and text, made once per process


def font_list(folder):
    """Write matplotlib's list of the fonts a sandboxed kernel can see into
    ``folder``; returns the file, or None without matplotlib.

    A kernel's ``/tmp`` (matplotlib's cache folder there) starts empty, so
    each kernel that imported matplotlib searched and read every font of the
    system again: about a fifth of a second of a core per submission. The
    grader searches once per process, as a kernel would (not from its own
    cache, which may predate fonts installed since, such as the CJK fonts of
    the Chinese edition); the fonts outside the folders the sandbox shows
    are left out, and the file is shown to the kernel read-only
    (``bwrap_args``): a kernel cannot change what the next one reads."""
    if not _FONTS:
        try:
            from matplotlib import font_manager
        except ImportError:
            return None
        seen = tuple(f"{d.rstrip('/')}/" for d in ("/usr", "/etc", *_python_dirs(),
                                                    *_package_dirs()))
        fonts = font_manager.FontManager()
        fonts.ttflist = [f for f in fonts.ttflist if f.fname.startswith(seen)]
        fonts.afmlist = [f for f in fonts.afmlist if f.fname.startswith(seen)]
        scratch = Path(tempfile.mkdtemp())
        try:
            font_manager.json_dump(fonts, scratch / "fonts.json")
            _FONTS["text"] = (scratch / "fonts.json").read_text()
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
        _FONTS["name"] = f"fontlist-v{font_manager.FontManager.__version__}.json"
    path = Path(folder) / _FONTS["name"]
    path.write_text(_FONTS["text"])
    return path


def bwrap_args(sockets, engine=True, data=(), stubs=None, fonts=None):
    """The bubblewrap command line (before the program): Unix sockets in
    ``sockets``, the working folder ``WORK_DIR`` (in memory) with the files
    ``data`` ({name: host path}) read-only in it. With ``engine=False`` the
    reference engine is the stand-in in ``stubs`` and ``HIDDEN_PACKAGES`` are
    hidden. ``fonts``: a ``font_list`` file, shown read-only in ``/tmp``."""
    args = ["bwrap", "--unshare-all", "--die-with-parent", "--new-session", "--clearenv",
            "--ro-bind", "/usr", "/usr", "--ro-bind", "/etc", "/etc",
            "--dev", "/dev", "--proc", "/proc", "--size", str(TMP_SIZE), "--tmpfs", "/tmp"]
    if fonts is not None:
        args += ["--ro-bind", str(fonts), f"/tmp/{Path(fonts).name}"]
    for top in ("/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"):
        if os.path.islink(top):
            args += ["--symlink", os.readlink(top), top]
        elif os.path.isdir(top):
            args += ["--ro-bind", top, top]
    for d in sorted(_python_dirs() | _package_dirs()):
        args += ["--ro-bind", d, d]
    if not engine:
        args += ["--ro-bind", str(stubs), str(_engine_dir())]
        empty = Path(sockets).parent / "empty"
        empty.mkdir(exist_ok=True)
        for d in hidden_dirs():
            args += ["--ro-bind", str(empty), d]
    args += ["--size", str(WORK_SIZE), "--tmpfs", WORK_DIR]
    for name, path in sorted(dict(data).items()):
        args += ["--ro-bind", str(path), f"{WORK_DIR}/{name}"]
    args += ["--bind", str(sockets), str(sockets), "--chdir", WORK_DIR]
    for key, value in environment().items():
        args += ["--setenv", key, value]
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


def prefix_for(sandbox_mode, sockets, engine=True, data=(), stubs=None, fonts=None):
    """The command prefix of a kernel for one mode (see ``bwrap_args``). In
    ``container`` mode the environment is the same but the files are not
    hidden: the stand-in engine only comes first on the path."""
    sandbox_mode = mode(sandbox_mode)
    if sandbox_mode == "bwrap":
        return limit_args() + bwrap_args(sockets, engine, data, stubs, fonts)
    if sandbox_mode == "container":
        env = environment(Path(sockets).parent / "work")
        if not engine:
            env["PYTHONPATH"] = os.pathsep.join([str(Path(stubs).parent), env["PYTHONPATH"]])
        return ["env", "-i", *(f"{k}={v}" for k, v in env.items()), *limit_args()]
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
