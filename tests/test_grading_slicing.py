"""Which of the instructor's cells the judge runs (grading/slicing.py): the
tests' names and everything that may change them are kept; demonstrations
that change nothing the tests read are left out."""

from __future__ import annotations

import textwrap

import pytest

from autodiff_course.grading.slicing import constant, kernel_skips, needed, reasons

SETUP = ("other", "import numpy as np\nimport matplotlib.pyplot as plt\n")
ANSWER = ("answer", "def gradient(f, x):\n    raise NotImplementedError()\n")


def kept(*cells):
    """The indices of the "other" cells kept, for cells given as (kind, source)."""
    cells = tuple((kind, textwrap.dedent(source)) for kind, source in cells)
    return sorted(needed(cells))


def test_a_demonstration_that_binds_nothing_the_tests_read_is_left_out():
    demo = ("other", """
        xs = np.linspace(-1, 1, 50)
        fig, ax = plt.subplots()
        ax.plot(xs, np.sin(xs))
        for h in [0.1, 0.01]:
            print(h, (np.sin(1 + h) - np.sin(1)) / h)
        plt.show()
        """)
    test = ("test", "assert np.isclose(gradient(np.sin, 0.0), 1.0)\n")
    assert kept(SETUP, ANSWER, demo, test) == [0]


def test_names_the_tests_read_are_kept_with_what_they_are_made_from():
    data = ("other", "rng = np.random.default_rng(0)\nX = rng.standard_normal((5, 3))\n")
    scale = ("other", "scale = 2.0\n")
    derived = ("other", "X_scaled = scale * X\n")
    test = ("test", "assert gradient(np.sum, X_scaled).shape == (5, 3)\n")
    assert kept(SETUP, data, scale, ANSWER, derived, test) == [0, 1, 2, 4]


def test_a_name_the_test_binds_itself_needs_no_earlier_cell():
    earlier = ("other", "t = np.arange(3.0)\nprint(t)\n")
    test = ("test", "t = np.ones(2)\nassert gradient(np.sum, t).shape == t.shape\n")
    assert kept(SETUP, earlier, ANSWER, test) == [0]
    reads_first = ("test", "print(t)\nt = np.ones(2)\n")
    assert kept(SETUP, earlier, ANSWER, reads_first) == [0, 1]


@pytest.mark.parametrize("change", [
    "data.append(4.0)",            # a method of the object
    "data[0] = 10.0",              # a store into it
    "alias = data\nalias.append(4.0)",   # through another name in the cell
    "del data[0]",
    "data += [5.0]",
])
def test_a_cell_that_may_change_an_object_the_tests_read_is_kept(change):
    data = ("other", "data = [1.0, 2.0, 3.0]\n")
    cell = ("other", change + "\n")
    test = ("test", "assert gradient(sum, data) is not None\n")
    assert kept(SETUP, data, cell, ANSWER, test) == [1, 2]  # (the test uses no module)


def test_an_alias_made_in_an_earlier_cell_carries_the_change():
    data = ("other", "data = [1.0, 2.0]\nsame = data\n")
    change = ("other", "same.append(3.0)\n")
    test = ("test", "assert len(data) == 3\n")
    assert kept(SETUP, data, change, test) == [1, 2]


@pytest.mark.parametrize("call", ["np.random.seed(0)", "np.set_printoptions(precision=3)",
                                  "np.random.shuffle(values)", "plt.rcParams['lines.lw'] = 2"])
def test_a_change_of_a_modules_state_is_kept(call):
    cell = ("other", f"values = [3, 1, 2]\n{call}\n")
    test = ("test", "assert gradient(np.sin, 0.0) == 1.0\n")
    assert kept(SETUP, ANSWER, cell, test) == [0, 2]


def test_fresh_generators_and_drawing_change_no_module_state():
    cell = ("other", "g = np.random.default_rng(1)\nplt.plot(g.standard_normal(4))\n")
    test = ("test", "assert gradient(np.sin, 0.0) == 1.0\n")
    assert kept(SETUP, ANSWER, cell, test) == [0]


def test_a_function_that_changes_a_global_is_followed_to_where_it_is_called():
    counter = ("other", """
        calls = 0
        def counted(x):
            global calls
            calls += 1
            return np.sin(x)
        """)
    demo = ("other", "for x in [0.1, 0.2]:\n    counted(x)\n")
    test = ("test", "assert calls == 2\n")
    assert kept(SETUP, counter, demo, test) == [0, 1, 2]
    reads_it = ("test", "assert counted(0.0) == 0.0\n")  # (counted reads calls)
    assert kept(SETUP, counter, demo, reads_it) == [0, 1, 2]
    unrelated = ("test", "assert np.sin(0.0) == 0.0\n")
    assert kept(SETUP, counter, demo, unrelated) == [0]


def test_a_function_that_changes_its_argument_given_to_other_code_is_followed():
    helper = ("other", "def grow(items):\n    items.append(0)\n    return items\n")
    data = ("other", "data = [1]\n")
    handed = ("other", "list(map(grow, [data]))\n")
    test = ("test", "assert len(data) == 2\n")
    assert kept(SETUP, helper, data, handed, test) == [1, 2, 3]
    called = ("other", "grow(data)\n")
    assert kept(SETUP, helper, data, called, test) == [1, 2, 3]
    elsewhere = ("other", "grow([5])\n")
    assert kept(SETUP, helper, data, elsewhere, test) == [2]


def test_what_a_students_function_does_to_its_arguments_is_not_followed():
    # the kernel's changes come back to the judge's arrays, but the tests use
    # the instructor's values as the instructor's cells made them
    data = ("other", "X = np.ones(3)\n")
    demo = ("other", "print(gradient(np.sum, X))\n")
    test = ("test", "assert gradient(np.sum, X).shape == (3,)\n")
    assert kept(SETUP, ANSWER, data, demo, test) == [0, 2]
    instructor = ("other", "def gradient_ref(f, x):\n    x[0] = 0.0\n    return x\n")
    demo = ("other", "print(gradient_ref(np.sum, X))\n")
    assert kept(SETUP, instructor, data, demo, test) == [0, 1, 2, 3]


@pytest.mark.parametrize("source", [
    "class Helper:\n    pass\n",                  # its objects cross by the class's name
    "exec('z = 1')\n",                             # names reached dynamically
    "globals()['z'] = 1\n",
    "def broken(:\n",                              # does not parse
])
def test_what_cannot_be_analysed_is_kept(source):
    cell = ("other", source)
    test = ("test", "assert gradient(np.sin, 0.0) == 1.0\n")
    assert kept(SETUP, ANSWER, cell, test) == [0, 2]


def test_a_dynamic_cell_keeps_every_cell_before_it():
    demo = ("other", "unused = 3\n")
    dynamic = ("other", "exec('print(unused)')\n")
    test = ("test", "assert True\n")
    assert kept(SETUP, demo, dynamic, test) == [0, 1, 2]


def test_magics_are_read_as_python():
    cell = ("other", "%matplotlib inline\nimport time\nstart = time.perf_counter()\n")
    test = ("test", "assert start > 0\n")
    assert kept(cell, test) == [0]


def test_each_kept_cell_says_why():
    data = ("other", "data = [1]\n")
    change = ("other", "data.append(2)\n")
    seed = ("other", "np.random.seed(1)\n")
    test = ("test", "assert data\n")
    why = reasons(tuple((k, s) for k, s in (SETUP, data, change, seed, test)))
    assert "data" in why[1] and "data" in why[2] and "state" in why[3]


def test_cells_whose_outputs_cannot_depend_on_the_answers():
    cells = (SETUP, ("other", "def curve(x):\n    return np.sin(x)\n"),
             ("other", "plt.plot(curve(np.arange(3.0)))\n"), ANSWER,
             ("other", "plt.plot(gradient(np.sin, np.arange(3.0)))\n"),
             ("other", "def via(x):\n    return gradient(np.sin, x)\n"),
             ("other", "plt.plot(via(np.arange(3.0)))\n"),
             ("test", "assert gradient(np.sin, 0.0) == 1.0\n"))
    assert sorted(constant(cells)) == [0, 1, 2]  # (5 defines a function that calls one)


def test_what_an_answer_made_taints_the_cells_that_read_it():
    cells = (SETUP, ANSWER, ("other", "g = gradient(np.sin, 1.0)\n"), ("other", "print(g)\n"),
             ("other", "log = []\n"), ("other", "log.append(gradient(np.cos, 0.0))\n"),
             ("other", "print(log)\n"), ("other", "print(np.pi)\n"))
    assert sorted(constant(cells)) == [0, 4, 7]
    # an answer that changes an instructor's object, or reaches names dynamically
    changer = ("answer", "log.append(0.0)\ndef gradient(f, x):\n    return f(x)\n")
    cells = (SETUP, ("other", "log = []\n"), changer, ("other", "print(log)\n"),
             ("other", "print(np.pi)\n"))
    assert sorted(constant(cells)) == [0, 1, 4]
    dynamic = ("answer", "globals()['log'] = [1]\n")
    assert sorted(constant((SETUP, ("other", "log = []\n"), dynamic,
                            ("other", "print(np.pi)\n")))) == [0, 1]


def skipped(*cells, saved=None):
    """The kernel's skipped cells, every "other" cell's outputs saved unless
    ``saved`` says which."""
    cells = tuple((kind, textwrap.dedent(source)) for kind, source in cells)
    if saved is None:
        saved = [i for i, (kind, _) in enumerate(cells) if kind == "other"]
    return sorted(kernel_skips(cells, frozenset(saved)))


def test_the_kernel_skips_only_what_nothing_it_runs_needs():
    helper = ("other", "def twice(x):\n    return 2 * x\n")
    demo = ("other", "shown = np.sin(1.0)\nprint(shown)\n")
    answer = ("answer", "def gradient(f, x):\n    return twice(np.asarray(f(x)))\n")
    test = ("test", "assert gradient(np.sin, 0.0) == 0.0\n")
    # the answer's function reads twice when the judge calls it, after every cell
    assert skipped(SETUP, helper, demo, answer, test) == [2]
    # a cell that must run (it reads an answer) needs what it reads
    data = ("other", "xs = np.linspace(0, 1, 5)\n")
    uses = ("other", "print(gradient(np.sin, xs))\n")
    assert skipped(SETUP, data, ANSWER, uses, test) == []
    # without the build's outputs a cell runs
    assert skipped(SETUP, helper, demo, answer, test, saved=[1]) == []
    # an answer that reaches names dynamically may need every cell before it
    dynamic = ("answer", "def gradient(f, x):\n    return globals()['np'].cos(x)\n")
    assert skipped(SETUP, demo, dynamic, test) == []
    # a cell that changes a module's state runs
    seed = ("other", "np.random.seed(0)\n")
    assert skipped(SETUP, seed, demo, answer, test) == [2]


# ------------------------------------------------ figures drawn once, at build time

FIGURE_NB = "figures.ipynb"


def _cells(answer):
    import nbformat

    from course_helpers import nbgrader_cell as cell

    return nbformat.v4.new_notebook(cells=[
        cell("%matplotlib inline\nimport numpy as np\nimport matplotlib.pyplot as plt\n"),
        cell("plt.plot(np.sin(np.linspace(0, 3, 20)))\nplt.title('the same for everyone')\n"
             "plt.show()\n"),
        cell("SCALE = 2.0\nprint('scale', SCALE, np.random.default_rng().random())\n"),
        cell("print('a demonstration', np.random.default_rng().random())\n"),
        cell(answer, "slope"),
        cell("plt.plot([0, 1], [0, slope(1.0)])\nplt.title(f'slope {slope(1.0)}')\nplt.show()\n"),
        cell("assert slope(1.0) == 2.0\n", "test_slope", test=True, points=1),
    ])


def _graded(outputs, answer="def slope(x):\n    return SCALE * x\n"):
    import nbformat

    from autodiff_course.grading.integrity import Policy
    from autodiff_course.grading.submission import grade_files
    from autodiff_course.grading.template import Template

    release = _cells("def slope(x):\n    raise NotImplementedError()\n")
    template = Template(FIGURE_NB, release, {"test_slope": "assert slope(1.0) == 2.0\n"},
                        {"slope": Policy()}, outputs=outputs)
    files = {FIGURE_NB: nbformat.writes(_cells(answer)).encode()}
    notebooks, outcome = grade_files({FIGURE_NB: template}, files, "student", "none", 30)
    code = [c for c in nbformat.reads(notebooks[FIGURE_NB], as_version=4).cells
            if c.cell_type == "code"]
    images = [[o["data"]["image/png"] for o in c.get("outputs", [])
               if "image/png" in o.get("data", {})] for c in code]
    texts = ["".join(o.get("text", "") for o in c.get("outputs", [])) for c in code]
    return outcome, images, texts


@pytest.mark.slow
def test_outputs_that_cannot_depend_on_the_answers_are_shown_from_the_build():
    """The build's outputs of cells that cannot depend on the answers are
    shown; such a cell runs in the student's kernel only if that student's
    answers need it (and then only its figures are the build's)."""
    import nbformat

    saved = {1: [nbformat.v4.new_output("display_data", data={"image/png": "U0FWRUQ=",
                                                               "text/plain": "<Figure>"})],
             2: [nbformat.v4.new_output("stream", name="stdout", text="SAVED-2\n")],
             3: [nbformat.v4.new_output("stream", name="stdout", text="SAVED-3\n")]}
    outcome, images, texts = _graded(saved)
    assert outcome.score == 1.0  # SCALE, which the answer reads, was defined in the kernel
    assert images[1] == ["U0FWRUQ="]  # the build's figure, not drawn again
    assert texts[2].startswith("scale 2.0 ")  # run: this answer reads SCALE
    assert texts[3] == "SAVED-3\n"  # not run: nothing this student's kernel runs needs it
    drawn = images[5]  # depends on the answer: drawn by the student's kernel
    assert len(drawn) == 1 and drawn[0].startswith("iVBOR")
    _, other, other_texts = _graded(saved, "def slope(x):\n    return 3.0 * x\n")
    assert other[1] == ["U0FWRUQ="] and other[5] != drawn
    assert other_texts[2] == "SAVED-2\n"  # this answer does not read SCALE
    _, unsaved, unsaved_texts = _graded({})
    assert len(unsaved[1]) == 1 and unsaved[1][0].startswith("iVBOR")
    assert unsaved_texts[3].startswith("a demonstration ")


