"""nbgrader's exchange with private submissions, for a shared server.

nbgrader 0.9.6 leaves a submission in the exchange's ``inbound/`` readable by
everyone (files 0644 in a folder 0777) and relies on its unguessable name
for privacy. On a server where students share the machine, ``PrivateSubmit``
makes a submission readable only by its author and the instructor's group:
the ``inbound/`` folder the instructor's ``release_assignment`` creates is
set-group-id, so a submission inherits the instructor's group, and this class
then sets its files to 0640 and its folders to 0750 (0770 for the top one, so
the instructor can remove it). The copy keeps the group on every file: the
folder is re-made inside ``inbound/`` after the copy (copying a folder's mode
drops its set-group-id bit, and a student cannot set it again on a group they
are not in, so files written into it later would get the student's group). Students select it in their nbgrader
configuration (``c.ExchangeFactory.submit``); see deploy/jupyterhub/.
"""

from __future__ import annotations

import os
import stat
import tempfile

from nbgrader.exchange.default.submit import ExchangeSubmit

FILE_MODE = 0o640
DIR_MODE = 0o750
TOP_MODE = 0o770


class PrivateSubmit(ExchangeSubmit):
    """``nbgrader submit`` whose submission only the instructor's group can read."""

    def _private(self):
        """True where the submission gets a group other than the student's own."""
        inbound = os.stat(self.inbound_path)
        return bool(inbound.st_mode & stat.S_ISGID) and inbound.st_gid != os.getgid()

    def do_copy(self, src, dest, log=None):
        super().do_copy(src, dest, log)
        if os.path.dirname(os.path.abspath(dest)) == os.path.abspath(self.inbound_path) \
                and self._private():
            # set-group-id and the instructor's group, from inbound/; a name
            # nbgrader's collect does not match while it is there
            fresh = tempfile.mkdtemp(prefix=".submitting-", dir=self.inbound_path)
            for entry in os.listdir(dest):
                os.rename(os.path.join(dest, entry), os.path.join(fresh, entry))
            os.rmdir(dest)
            os.rename(fresh, dest)

    def set_perms(self, dest, fileperms, dirperms):
        if self._private():
            fileperms, dirperms = FILE_MODE, DIR_MODE
        super().set_perms(dest, fileperms, dirperms)

    def copy_files(self):
        super().copy_files()
        if self._private():
            os.chmod(os.path.join(self.inbound_path, self.assignment_filename), TOP_MODE)
