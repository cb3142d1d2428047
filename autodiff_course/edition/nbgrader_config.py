"""nbgrader settings for students (Validate, fetch, submit), read when
nbgrader runs in this folder (start `jupyter lab` here)."""

import atexit
import importlib.util
import os
import shutil
import tempfile

c = get_config()  # noqa: F821  (provided by nbgrader)

c.CourseDirectory.course_id = "autodiff-course"

# Validate's kernel talks over Unix sockets, not unencrypted local TCP (the
# kernel warns about TCP). Windows has no Unix sockets: it keeps TCP there.
if os.name != "nt":
    _sockets = tempfile.mkdtemp(prefix="nbgrader-validate-")
    atexit.register(shutil.rmtree, _sockets, ignore_errors=True)
    c.KernelManager.transport = "ipc"
    c.KernelManager.ip = os.path.join(_sockets, "kernel")

# Validate's kernel waits for each message in short polls (kernel_polling.py,
# beside this file: a lost wake-up otherwise held a widget cell for a minute)
_spec = importlib.util.spec_from_file_location(
    "kernel_polling", os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                   "kernel_polling.py"))
_polling = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_polling)
c.AsyncKernelManager.client_factory = _polling.SlicedKernelClient
