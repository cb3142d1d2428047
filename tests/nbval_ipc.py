"""Run pytest (with nbval) with kernels on Unix sockets instead of TCP.

nbval starts its kernels with jupyter_client's defaults; when other tests
start kernels at the same time, TCP port picking races and messages get
lost (cells then wait seconds for their output). Usage:
``python tests/nbval_ipc.py --nbval-lax notebook.ipynb``.
"""

import os
import sys
import tempfile

import nbval.kernel
import pytest
from jupyter_client import KernelManager


class IpcKernelManager(KernelManager):
    def __init__(self, **kwargs):
        folder = tempfile.mkdtemp(prefix="autodiff-nbval-")
        super().__init__(transport="ipc", ip=os.path.join(folder, "kernel"), **kwargs)


nbval.kernel.KernelManager = IpcKernelManager
sys.exit(pytest.main(sys.argv[1:]))
