"""Where a course lives and what it holds.

A course is a folder with ``nbgrader_config.py`` (like nbgrader, every
command works on the course it is run in: the current folder or its nearest
parent holding that file) and the notebook sources under
``notebooks/<assignment>/*.py``.
"""

from __future__ import annotations

import difflib
from pathlib import Path

CONFIG = "nbgrader_config.py"


class CourseError(RuntimeError):
    """A command cannot run on this course; the message says how to fix it."""


def find_course(start=None):
    """The course folder: ``start`` (default: the current folder) or its
    nearest parent that holds ``nbgrader_config.py``."""
    here = Path.cwd() if start is None else Path(start)
    here = here.resolve()
    for folder in (here, *here.parents):
        if (folder / CONFIG).is_file():
            return folder
    below = sorted(p.parent.name for p in here.glob(f"*/{CONFIG}"))
    hint = f" (here: `cd {below[0]}`)" if below else ""
    raise CourseError(f"no course here: neither {here} nor a folder above it has {CONFIG}. "
                      "Run the command inside the course folder (the one with "
                      f"{CONFIG}){hint}, or pass --course FOLDER.")


def check_course(folder):
    """``folder`` as a course folder, or a clear error."""
    folder = Path(folder).resolve()
    if not (folder / CONFIG).is_file():
        raise CourseError(f"{folder} is not a course folder: it has no {CONFIG}.")
    return folder


def assignments(course):
    """Assignment ids: the folders of ``notebooks/`` holding a ``.py`` source."""
    root = Path(course) / "notebooks"
    if not root.is_dir():
        return []
    return sorted(p.name for p in root.iterdir() if p.is_dir() and any(p.glob("*.py")))


def unknown_assignment(name, known, what="assignment"):
    """The error for a name that is not one of ``known``, with a suggestion."""
    close = difflib.get_close_matches(name, known, n=1)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    listing = ", ".join(known) if known else "none"
    return CourseError(f"no {what} {name!r} in this course.{hint} Known: {listing}.")
