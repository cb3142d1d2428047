"""A kernel client that waits for each message in short polls.

nbclient (what runs notebooks for nbgrader's Validate, generate_solution and
the grader) waits for a cell's reply with one ZeroMQ poll as long as the
cell's time limit. When the socket's wake-up is lost (seen on the cell that
displays an ``interactive`` widget, about every other run, and under load),
a finished cell then waits until the limit runs out, 30 to 60 s, with no
error. A fresh poll looks at the socket again, so a lost wake-up costs one
slice instead.

The course's kernels use it (``autodiff_course.jupyter``) and so does
nbgrader through ``nbgrader_config.py``; the student edition ships this file
beside its own ``nbgrader_config.py`` (it has no ``autodiff_course``).
"""

import time
from queue import Empty

from jupyter_client.asynchronous import AsyncKernelClient
from jupyter_client.channels import AsyncZMQSocketChannel
from traitlets import Type

POLL_SLICE = 0.5  # seconds: the longest a lost wake-up can delay a message


class SlicedChannel(AsyncZMQSocketChannel):
    """A kernel channel whose ``get_msg`` polls at most ``POLL_SLICE`` at a time."""

    async def get_msg(self, timeout=None):
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            left = POLL_SLICE if deadline is None else max(0.0, deadline - time.monotonic())
            try:
                return await super().get_msg(timeout=min(POLL_SLICE, left))
            except Empty:
                if deadline is not None and time.monotonic() >= deadline:
                    raise


class SlicedKernelClient(AsyncKernelClient):
    """``AsyncKernelClient`` with sliced polls on the shell and iopub channels."""

    shell_channel_class = Type(SlicedChannel)
    iopub_channel_class = Type(SlicedChannel)
