"""The instructor tools' own bugs, one test each (build, nbgrader config,
grading cache)."""

from __future__ import annotations

import shutil

import nbformat
import pytest

from course_helpers import COURSE, copy_course, run


def test_no_verify_checks_every_assignment_for_leaks(tmp_path, monkeypatch):
    """`build --no-verify` runs the leak check on every assignment, not just
    the first: a release that leaks in the second assignment is a problem."""
    from autodiff_course import build as build_module

    course = copy_course(tmp_path / "course")
    names = sorted(p.name for p in (course / "notebooks").iterdir() if p.is_dir())[:2]

    def fake_nbgrader(course_dir, command, assignment, *args, **kw):
        # copy the instructor's notebooks as they are: solutions and hidden tests
        # reach the "student version" of the second assignment only
        folder = {"generate_assignment": "release", "generate_solution": "solution"}[command]
        target = course_dir / folder / assignment
        target.mkdir(parents=True, exist_ok=True)
        for nb in (course_dir / "source" / assignment).glob("*.ipynb"):
            content = nbformat.read(nb, as_version=4)
            if assignment == names[0]:
                for cell in content.cells:
                    cell.source = "\n".join(line for line in cell.source.splitlines()
                                            if "SOLUTION" not in line and "HIDDEN" not in line)
            nbformat.write(content, target / nb.name)

    monkeypatch.setattr(build_module, "nbgrader", fake_nbgrader)
    problems = build_module.build(course, names, do_verify=False, log=lambda *a: None)
    # (the fake student version of the first keeps its solution code without
    # markers: its comments have no translation, which the build also says)
    leaks = [p for p in problems if " contains " in p]
    assert leaks and all(names[1] in p for p in leaks)
    assert any("release" in p for p in leaks) and any("solution" in p for p in leaks)


@pytest.mark.slow
def test_nbgrader_commands_leave_no_temporary_folders(tmp_path):
    course = copy_course(tmp_path / "course")
    private_tmp = tmp_path / "tmp"
    private_tmp.mkdir()
    for _ in range(3):
        run(["nbgrader", "db", "student", "list"], course, env={"TMPDIR": str(private_tmp)})
    assert list(private_tmp.iterdir()) == []


def test_grading_cache_key_covers_the_whole_engine_and_tooling():
    from autodiff_course.grading.submission import _package_files

    files = {f"{package}/{relative}" for package, relative, _ in _package_files()}
    for expected in ("autodiff_ref/nn.py", "autodiff_ref/optim.py", "autodiff_ref/viz.py",
                     "autodiff_ref/ops/shape.py", "autodiff_ref/grading.py",
                     "autodiff_course/grading/agent.py", "autodiff_course/grading/judge.py",
                     "autodiff_course/jupyter.py"):
        assert expected in files


def test_grading_cache_key_changes_with_the_templates():
    """A different hidden test or policy invalidates cached phase-1 results."""
    from autodiff_course.grading.integrity import Policy
    from autodiff_course.grading.submission import fingerprint
    from autodiff_course.grading.template import Template

    nb = nbformat.v4.new_notebook()
    base = {"a.ipynb": Template("a.ipynb", nb, {"t": "assert f() == 1"}, {"f": Policy()})}
    other = {"a.ipynb": Template("a.ipynb", nb, {"t": "assert f() == 2"}, {"f": Policy()})}
    strict = {"a.ipynb": Template("a.ipynb", nb, {"t": "assert f() == 1"},
                                  {"f": Policy(exact=True)})}
    files = {"a.ipynb": b"{}"}  # the submission, name -> bytes
    keys = {fingerprint(files, t, 60) for t in (base, other, strict)}
    assert len(keys) == 3
    assert fingerprint(files, base, 60) != fingerprint(files, base, 30)
    assert fingerprint(files, base, 60) != fingerprint({"a.ipynb": b"[]"}, base, 60)
    assert fingerprint(files, base, 60) != fingerprint(files, base, 60, "container")


def test_a_missed_wake_up_costs_a_slice_not_the_time_limit(monkeypatch):
    """A message that arrived while the poll slept (ZeroMQ's wake-up lost)
    is found by the next short poll, not at the end of the cell's limit."""
    import asyncio
    import time
    from queue import Empty

    from jupyter_client.channels import AsyncZMQSocketChannel

    from autodiff_course.edition.kernel_polling import POLL_SLICE, SlicedChannel

    arrives = time.monotonic() + 0.2

    async def deaf_get_msg(self, timeout=None):  # sees the socket only when its poll ends
        await asyncio.sleep(timeout)
        if time.monotonic() >= arrives:
            return {"msg_type": "execute_reply"}
        raise Empty

    monkeypatch.setattr(AsyncZMQSocketChannel, "get_msg", deaf_get_msg)
    channel = SlicedChannel.__new__(SlicedChannel)
    started = time.monotonic()
    assert asyncio.run(channel.get_msg(timeout=60))["msg_type"] == "execute_reply"
    assert time.monotonic() - started < 0.2 + 2 * POLL_SLICE
    arrives = float("inf")  # nothing comes: Empty once the limit is over, not before
    started = time.monotonic()
    with pytest.raises(Empty):
        asyncio.run(channel.get_msg(timeout=1.2))
    assert 1.2 <= time.monotonic() - started < 1.2 + POLL_SLICE


def test_nbgraders_kernels_poll_in_slices(tmp_path):
    """nbgrader's own kernels (generate_solution executes every solution;
    a student's Validate, in the student edition) get the sliced client, as
    the grader's do."""
    from jupyter_client import AsyncKernelManager
    from traitlets.config.loader import PyFileConfigLoader

    from autodiff_course.edition import kernel_polling
    from autodiff_course.jupyter import kernel_manager
    from autodiff_course.publish import EDITION

    config = PyFileConfigLoader("nbgrader_config.py", path=str(COURSE)).load_config()
    assert AsyncKernelManager(config=config).client_factory is kernel_polling.SlicedKernelClient
    assert kernel_manager(tmp_path).client_factory is kernel_polling.SlicedKernelClient
    client = kernel_polling.SlicedKernelClient
    assert client.shell_channel_class.default_value is kernel_polling.SlicedChannel
    assert client.iopub_channel_class.default_value is kernel_polling.SlicedChannel
    # the student edition has no autodiff_course: its config loads the file beside it
    for name in ("nbgrader_config.py", "kernel_polling.py"):
        shutil.copy2(EDITION / name, tmp_path / name)
    config = PyFileConfigLoader("nbgrader_config.py", path=str(tmp_path)).load_config()
    factory = AsyncKernelManager(config=config).client_factory
    assert factory.__name__ == "SlicedKernelClient"
    assert factory.__module__ == "kernel_polling"
    assert factory.shell_channel_class.default_value.__name__ == "SlicedChannel"
