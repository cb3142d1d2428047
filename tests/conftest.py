import pytest

from course_helpers import copy_course


@pytest.fixture(scope="module")
def built_course(tmp_path_factory):
    """A temporary copy of the course, regenerated and verified by the
    instructor command (``autodiff-course build``), with its problems list."""
    from autodiff_course.build import build

    course = copy_course(tmp_path_factory.mktemp("course"))
    problems = build(course, log=lambda *a: None)
    return course, problems
