import fcntl
import json
import os
import shutil

import pytest

from course_helpers import CLASS_ASSIGNMENT, copy_course


@pytest.fixture(scope="session")
def built_master(tmp_path_factory):
    """The course regenerated once per test session, shared by the xdist
    workers through the file system (the first one builds it), with the
    problems the build found. Built without verification (``--no-verify``:
    its leak and editions checks only) but for the class tests' assignment:
    running every notebook is what test_course_pipeline.py tests, on its
    copy, while the other files go on."""
    from autodiff_course.build import build, verify

    root = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):  # shared by the workers of one run
        root = root.parent
    master, done = root / "built-course", root / "built-course.json"
    with open(root / "built-course.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not done.exists():
            if master.exists():
                shutil.rmtree(master)
            course = copy_course(master)
            problems = build(course, do_verify=False, log=lambda *a: None)
            # the class tests' assignment verified, as an instructor's build
            # is: the build keeps its figures, which graders then need not draw
            problems += verify(course, [CLASS_ASSIGNMENT], log=lambda *a: None)
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


# The long files, longest first (as measured on 2 cores with `-n 2 --dist
# loadfile`, about): JupyterHub (4 min, much of it waiting on its servers),
# then the browser test, whose module builds the shared course (built_master)
# meanwhile, then the others by length. Files not listed follow, the slow
# ones first.
LONGEST_FIRST = ("test_hub.py", "test_browser.py", "test_readme_path.py",
                 "test_grading_class.py", "test_course_pipeline.py",
                 "test_grading_distributed.py", "test_class_report.py", "test_translations.py",
                 "test_student_edition.py", "test_grading_languages.py", "test_mutation.py",
                 "test_tooling.py", "test_grading_sandbox.py")


def pytest_collection_modifyitems(session, config, items):
    """Long files first: with ``-n 2 --dist loadfile`` they then start early
    and the quick files fill in the end, instead of one worker idling while
    the other finishes a long file it began last."""
    slow = {item.path for item in items if item.get_closest_marker("slow")}
    rank = {name: i for i, name in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: (rank.get(item.path.name, len(rank)), item.path not in slow))
