"""nbgrader configuration of autodiff-course (read by every nbgrader command
run in this folder)."""

import atexit
import os
import shutil
import tempfile

from nbgrader.preprocessors import (ClearHiddenTests, ClearMarkScheme, ClearOutput, Execute,
                                    IncludeHeaderFooter, LockCells)

c = get_config()  # noqa: F821  (provided by nbgrader)

here = os.path.dirname(os.path.abspath(__file__))
c.CourseDirectory.course_id = "autodiff-course"
c.CourseDirectory.root = here

# The exchange: nbgrader's default (/usr/local/share/nbgrader/exchange), or
# what the environment's own nbgrader config sets (deploy/jupyterhub/ sets
# /srv/nbgrader/exchange); AUTODIFF_COURSE_EXCHANGE points it elsewhere (the
# tests use a temporary folder).
if os.environ.get("AUTODIFF_COURSE_EXCHANGE"):
    c.Exchange.root = os.environ["AUTODIFF_COURSE_EXCHANGE"]

# Each cell of a submission may run this long (seconds) when autograding.
c.Execute.timeout = 60

# What a student sees in place of a solution region.
c.ClearSolutions.code_stub = {"python": "# YOUR CODE HERE\nraise NotImplementedError()"}
c.ClearSolutions.text_stub = "YOUR ANSWER HERE"

# At autograde, cells of the release version a student deleted are put back
# (so a deleted test cell is graded, not silently worth 0).
c.OverwriteCells.add_missing_cells = True

# Solutions for students: the solution code and the outputs, but not the
# hidden tests (nbgrader's default keeps them).
c.GenerateSolution.preprocessors = [IncludeHeaderFooter, LockCells, ClearOutput,
                                    ClearHiddenTests, ClearMarkScheme, Execute]

# Collected submissions are owned by whoever runs collect on one machine.
c.ExchangeCollect.check_owner = False

# `autodiff-course grade` runs every submission in a sandbox first (phase 1)
# and then asks nbgrader to record the results without executing anything
# again (phase 2); see autodiff_course/grading/record.py.
from autodiff_course.grading.record import configure, configure_feedback  # noqa: E402

if os.environ.get("AUTODIFF_COURSE_PHASE") == "record":
    configure(c)

# Feedback students can use: the visible tests and the grader's explanation
# of each failure, never the hidden tests, a traceback or a path of this
# machine (nbgrader itself shows hidden tests in feedback).
configure_feedback(c)

# Kernels talk to nbgrader over Unix sockets rather than TCP ports: free TCP
# ports are found by binding and releasing them, which races (and loses
# messages) when several kernels start at once on one machine. The socket
# paths must be absolute (the kernel runs in the notebook's folder); their
# folder is removed when the nbgrader command ends.
_sockets = tempfile.mkdtemp(prefix="autodiff-nbgrader-")
atexit.register(shutil.rmtree, _sockets, ignore_errors=True)
c.KernelManager.transport = "ipc"
# nbgrader's kernels (generate_solution runs every solution) poll in slices
# (autodiff_course/edition/kernel_polling.py: a lost wake-up otherwise held
# a widget cell for 60 s)
c.AsyncKernelManager.client_class = "autodiff_course.edition.kernel_polling.SlicedKernelClient"
c.KernelManager.ip = os.path.join(_sockets, "kernel")
