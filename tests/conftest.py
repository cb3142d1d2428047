import fcntl
import json
import os
import shutil

import pytest

from course_helpers import copy_course


@pytest.fixture(scope="session")
def built_master(tmp_path_factory):
    """The course regenerated once per test session, shared by the xdist
    workers through the file system (the first one builds it), with the
    problems the build found. Built without verification (``--no-verify``:
    its leak and editions checks only): running every notebook is what
    test_course_pipeline.py tests, on its copy, while the other files go on."""
    from autodiff_course.build import build

    root = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):  # shared by the workers of one run
        root = root.parent
    master, done = root / "built-course", root / "built-course.json"
    with open(root / "built-course.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not done.exists():
            if master.exists():
                shutil.rmtree(master)
            problems = build(copy_course(master), do_verify=False, log=lambda *a: None)
            done.write_text(json.dumps(problems))
    return master, json.loads(done.read_text())


@pytest.fixture(scope="module")
def built_course(built_master, tmp_path_factory):
    """A private copy of the built course (tests submit to it and grade it),
    with the problems the build found."""
    master, problems = built_master
    course = tmp_path_factory.mktemp("course")
    shutil.copytree(master, course, dirs_exist_ok=True)
    return course, problems


def pytest_collection_modifyitems(session, config, items):
    """Long files first: with ``-n 2 --dist loadfile`` they then start early
    and the quick files fill in the end, instead of one worker idling while
    the other finishes a long file it began last. The servers (JupyterHub,
    JupyterLab with a browser) go first of all: they run longest and spend
    much of it waiting, leaving the CPU to the other worker."""
    def files(marker):
        return {item.path for item in items if item.get_closest_marker(marker)}

    hub, browser, slow = files("hub"), files("browser"), files("slow")
    items.sort(key=lambda item: (item.path not in hub, item.path not in browser,
                                 item.path not in slow))
