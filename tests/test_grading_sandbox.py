"""The sandboxed kernel on its own: isolation and faults.

These run answer cells that the static screen would flag (os._exit, open,
socket): the sandbox is what holds, whatever the code.
"""

import hashlib
import os
from pathlib import Path

import nbformat
import pytest

from autodiff_course.grading import sandbox, submission as grader
from autodiff_course.grading.template import Template

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module", autouse=True)
def need_sandbox():
    why = sandbox.available()
    if why:
        if os.environ.get("CI"):
            pytest.fail(f"CI must be able to sandbox kernels: {why}")
        pytest.skip(why)


def _answer(index, source):
    """A student's answer cell: it runs only in the sandboxed kernel."""
    cell = nbformat.v4.new_code_cell(source)
    cell.metadata["nbgrader"] = {"grade": False, "solution": True, "locked": False,
                                 "grade_id": f"answer{index}", "schema_version": 3}
    return cell


def _run(tmp_path, cells, timeout=20):
    nb = nbformat.v4.new_notebook(cells=[_answer(i, c) for i, c in enumerate(cells)])
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    fault = grader.execute(nb, scratch, use_sandbox=True, cell_timeout=timeout)
    texts = ["".join(o.get("text", "") + o.get("evalue", "") for o in c.outputs)
             for c in nb.cells]
    return fault, texts


def _digest(folder):
    h = hashlib.sha256()
    for p in sorted(Path(folder).rglob("*")):
        if p.is_file():
            h.update(str(p).encode() + p.read_bytes())
    return h.hexdigest()


def test_kernel_sees_no_course_no_network_and_writes_only_its_scratch(tmp_path):
    course = tmp_path / "course"
    for rel in ("source/a/nb.ipynb", "gradebook.db", "submitted/bob/a/nb.ipynb",
                "solution/a/nb.ipynb"):
        (course / rel).parent.mkdir(parents=True, exist_ok=True)
        (course / rel).write_text("secret " + rel)
    before = _digest(course)
    probe = f"""
import os, socket
for rel in ("source/a/nb.ipynb", "gradebook.db", "solution/a/nb.ipynb"):
    try:
        print("READ", open(os.path.join({str(course)!r}, rel)).read())
    except OSError as e:
        print("blocked read", type(e).__name__)
for rel in ("gradebook.db", "submitted/bob/a/nb.ipynb", "new.txt"):
    try:
        open(os.path.join({str(course)!r}, rel), "w").write("pwned")
        print("WROTE", rel)
    except OSError as e:
        print("blocked write", type(e).__name__)
try:
    socket.create_connection(("1.1.1.1", 80), timeout=2)
    print("NETWORK")
except OSError as e:
    print("blocked network", type(e).__name__)
open("mine.txt", "w").write("ok")
print("scratch ok", open("mine.txt").read(), os.listdir("/"))
"""
    fault, texts = _run(tmp_path, [probe])
    assert fault is None
    out = texts[0]
    assert "READ" not in out and "WROTE" not in out and "NETWORK" not in out, out
    assert out.count("blocked read") == 3 and out.count("blocked write") == 3, out
    assert "blocked network" in out and "scratch ok ok" in out, out
    assert "work" not in out.split("scratch ok ok", 1)[1] or str(course) not in out
    assert _digest(course) == before  # byte for byte


def test_a_dying_kernel_keeps_earlier_results_and_says_why(tmp_path):
    fault, texts = _run(tmp_path, ["print('before')", "import os\nos._exit(3)",
                                   "print('after')"])
    assert fault and "kernel died" in fault
    assert "before" in texts[0]
    assert "kernel died" in texts[1] and "not run" in texts[2] and "after" not in texts[2]


def test_a_loop_that_ignores_sigint_is_stopped(tmp_path):
    loop = "import signal\nsignal.signal(signal.SIGINT, signal.SIG_IGN)\nwhile True:\n    pass"
    fault, texts = _run(tmp_path, ["print('before')", loop, "print('after')"], timeout=3)
    assert fault and "more than 3 s" in fault
    assert "before" in texts[0] and "not run" in texts[2]


def test_memory_is_capped_per_submission(tmp_path):
    bomb = "try:\n    x = bytearray(8 * 1024 ** 3)\n    print('GOT 8 GB')\n" \
           "except MemoryError:\n    print('capped')"
    fault, texts = _run(tmp_path, [bomb, "print('still alive')"])
    assert fault is None
    assert "capped" in texts[0] and "still alive" in texts[1]


def test_huge_output_is_cut_and_a_flood_stops_the_run(tmp_path):
    fault, texts = _run(tmp_path, ["for i in range(100000):\n    print(i)", "print('next')"])
    assert fault is None
    assert len(texts[0]) < 2 * grader.CELL_OUTPUT_LIMIT and "truncated" in texts[0]
    assert "next" in texts[1]
    fault, texts = _run(tmp_path / "b" if (tmp_path / "b").mkdir() is None else tmp_path,
                        ["print('x' * (40 * 1024 ** 2))", "print('after')"])
    assert fault and "MB of output" in fault and "not run" in texts[1]


def test_a_long_temporary_folder_still_gets_its_kernels_running(tmp_path, monkeypatch):
    # a kernel's Unix sockets live in its scratch folder, and their paths may
    # not be longer than 107 bytes: a long TMPDIR must not fail every submission
    deep = tmp_path / ("a-temporary-folder-with-a-long-name-" * 3)
    deep.mkdir()
    monkeypatch.setattr("tempfile.tempdir", str(deep))
    template = Template("long.ipynb", nbformat.v4.new_notebook(cells=[
        _answer(0, "x = 2 + 3\nprint(x)\n")]), {}, {})
    nb = nbformat.v4.new_notebook(cells=[_answer(0, "x = 2 + 3\nprint(x)\n")])
    assert grader.run_submission(nb, template, True, 20) is None
    assert nb.cells[0].outputs[0]["text"] == "5\n"
    assert not grader.SCRATCH  # and the scratch folder is gone again


def test_kernels_read_the_graders_font_list_and_cannot_change_it(tmp_path):
    # matplotlib in each kernel reads the font list the grader made (it does
    # not search the system's fonts again), keeps it read-only for the next
    # kernel, and lists only fonts whose files the sandbox shows
    probe = """
import glob, os, matplotlib, matplotlib.pyplot as plt
from matplotlib import font_manager
listed = glob.glob('/tmp/fontlist-*.json')
print('LISTED', len(listed))
before = os.stat(listed[0]).st_mtime_ns
fonts = font_manager.fontManager.ttflist
print('FONTS', len(fonts), 'MISSING', sum(not os.path.isfile(f.fname) for f in fonts))
plt.plot([0, 1]); plt.savefig('figure.png')
print('SAME', os.stat(listed[0]).st_mtime_ns == before)
try:
    open(listed[0], 'w').write('{}')
    print('CHANGED')
except OSError as e:
    print('read-only', type(e).__name__)
"""
    fault, texts = _run(tmp_path, [probe])
    out = texts[0]
    assert fault is None, fault
    assert "LISTED 1" in out and "SAME True" in out and "read-only" in out, out
    assert "CHANGED" not in out and "MISSING 0" in out, out
    assert int(out.split("FONTS ", 1)[1].split()[0]) > 0, out
