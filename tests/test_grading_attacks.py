"""Attacks on the grader, one per class of the issue (#11), on a small
notebook of two exercises: each submission scores exactly what its honest
part earns. The tests run in the judge (trusted side), so what an answer does
to its own kernel changes nothing but its own results."""

from __future__ import annotations

import base64
import json
import os

import nbformat
import pytest

from autodiff_course.grading import sandbox
from autodiff_course.grading.integrity import Policy
from autodiff_course.grading.submission import grade_files, read_submission
from autodiff_course.grading.template import Template
from course_helpers import nbgrader_cell

pytestmark = pytest.mark.slow

NB = "attack.ipynb"
SENTINEL = "HIDDEN-SENTINEL-4711"
SETUP = "import numpy as np\nimport autodiff_ref as ad\nfrom autodiff_ref import grading"
VISIBLE = {
    "test_derivative": (
        'with grading.exercise(1, "derivative"):\n'
        "    grading.assert_close(derivative(np.array([1.0, 2.0])), np.array([3.0, 12.0]),\n"
        '                         rtol=1e-12, name="derivative([1.0, 2.0])")\n'
        'grading.passed("derivative")\n'),
    "test_double": (
        'with grading.exercise(2, "double"):\n'
        '    grading.assert_close(double(np.arange(3.0)), [0.0, 2.0, 4.0], name="double")\n'
        'grading.passed("double")\n'),
}
HIDDEN = {
    "test_derivative": (
        "### BEGIN HIDDEN TESTS\n"
        "_rng = np.random.default_rng()\n"
        "_x = _rng.uniform(-2, 2, 5)\n"
        f'grading.assert_close(derivative(_x), 3 * _x ** 2, rtol=1e-12, atol=1e-12,  # {SENTINEL}\n'
        '                     name="derivative of random numbers")\n'
        "### END HIDDEN TESTS\n"),
    "test_double": (
        "### BEGIN HIDDEN TESTS\n"
        "_y = np.random.default_rng().standard_normal((2, 3))\n"
        'grading.assert_close(double(_y), 2 * _y, name="double of a random array")\n'
        "### END HIDDEN TESTS\n"),
}
POINTS = {"test_derivative": 2, "test_double": 1}
STUB = "def {name}(x):\n    # YOUR CODE HERE\n    raise NotImplementedError()\n"
HONEST = {"derivative": "def derivative(x):\n    return 3 * np.asarray(x, dtype=float) ** 2\n",
          "double": "def double(x):\n    return 2 * np.asarray(x)\n"}
WRONG = {"derivative": "def derivative(x):\n    return 2 * np.asarray(x, dtype=float) ** 2\n",
         "double": "def double(x):\n    return 3 * np.asarray(x)\n"}


def _notebook(answers):
    return nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_markdown_cell("# Two exercises"),
        nbgrader_cell(SETUP),
        nbgrader_cell(answers.get("derivative", STUB.format(name="derivative")), "derivative"),
        nbgrader_cell(VISIBLE["test_derivative"], "test_derivative", True, 2),
        nbgrader_cell(answers.get("double", STUB.format(name="double")), "double"),
        nbgrader_cell(VISIBLE["test_double"], "test_double", True, 1),
    ])


@pytest.fixture(scope="module")
def template():
    why = sandbox.available()
    if why:
        pytest.skip(why)
    return {NB: Template(NB, _notebook({}), {k: VISIBLE[k] + HIDDEN[k] for k in VISIBLE},
                         {"derivative": Policy(exact=True), "double": Policy()})}


def _grade(template, answers, extra=None, timeout=20):
    files = {NB: nbformat.writes(_notebook(answers)).encode(), **(extra or {})}
    notebooks, outcome = grade_files(template, files, "student", "bwrap", timeout)
    return outcome, nbformat.reads(notebooks[NB], as_version=4)


def _score(outcome):
    return {k.split(":", 1)[1]: v[0] for k, v in outcome.tests.items()}


def _only_double(outcome):
    assert _score(outcome) == {"test_derivative": 0.0, "test_double": 1.0}, outcome


def test_honest_and_untouched(template):
    outcome, nb = _grade(template, HONEST)
    assert _score(outcome) == {"test_derivative": 2.0, "test_double": 1.0}, outcome
    outcome, _ = _grade(template, {})
    assert outcome.score == 0 and "not written yet" in " ".join(outcome.explanations.values())
    outcome, _ = _grade(template, WRONG)
    assert outcome.score == 0
    assert "WrongValueError" in outcome.errors.values() or \
        "ConstantFactorError" in outcome.errors.values(), outcome.errors


# ----------------------------------------- code that changes how tests are run


@pytest.mark.parametrize("patch", [
    "np.allclose = lambda *a, **k: True\nnp.testing.assert_allclose = lambda *a, **k: None",
    "import autodiff_ref.grading as g\ng.assert_close = lambda *a, **k: None",
    "get_ipython().set_custom_exc((BaseException,), lambda *a, **k: None)",
    "import IPython.display as d\nd.publish_display_data = lambda *a, **k: None",
    "import sys\nsys.excepthook = lambda *a: None\nsys.modules['autodiff_ref.grading'] = None",
])
def test_answers_that_patch_the_test_machinery_change_nothing(template, patch):
    _only_double(_grade(template, {**HONEST, "derivative": WRONG["derivative"] + patch})[0])


def test_files_beside_the_notebook_never_reach_the_kernel(template):
    shadow = b"def assert_close(*a, **k):\n    pass\nallclose = lambda *a, **k: True\n"
    extra = {"numpy.py": shadow, "autodiff_ref.py": shadow, "grading.py": shadow,
             "sitecustomize.py": b"import os; os.environ['HACKED'] = '1'\n"}
    _only_double(_grade(template, {**HONEST, "derivative": WRONG["derivative"]}, extra)[0])
    probe = ("import os\ndef double(x):\n"
             "    return 2 * np.asarray(x) if os.listdir('.') in ([], ['.ipython']) "
             "and 'HACKED' not in os.environ else None\n")
    outcome, _ = _grade(template, {**HONEST, "double": probe}, extra)
    assert outcome.score == 3, outcome


def test_source_built_at_run_time_gains_nothing(template):
    code = base64.b64encode(b"np.allclose = lambda *a, **k: True\n"
                            b"import autodiff_ref\n"
                            b"def derivative(x):\n"
                            b"    t = autodiff_ref.tensor(x, requires_grad=True)\n"
                            b"    (t ** 3).sum().backward()\n"
                            b"    return t.grad.numpy()\n").decode()
    answer = f"import base64\nexec(base64.b64decode({code!r}).decode())\n"
    outcome, _ = _grade(template, {**HONEST, "derivative": answer})
    _only_double(outcome)
    assert "not available" in outcome.explanations[f"{NB}:test_derivative"]


def test_objects_that_lie_to_comparisons_score_nothing(template):
    liar = ("class Liar:\n"
            "    shape = (2,)\n    ndim = 1\n    dtype = np.dtype('float64')\n"
            "    def __eq__(self, other):\n        return True\n"
            "    def __bool__(self):\n        return True\n"
            "    def __len__(self):\n        return 2\n"
            "    def __array__(self, *a, **k):\n        return np.array([object(), 1.0])\n"
            "    def __sub__(self, other):\n        return np.zeros(2)\n"
            "    __rsub__ = __sub__\n"
            "def derivative(x):\n    return Liar()\n")
    outcome, _ = _grade(template, {**HONEST, "derivative": liar})
    _only_double(outcome)


def test_the_kernel_never_receives_a_test(template, monkeypatch):
    from jupyter_client.asynchronous.client import AsyncKernelClient

    sent = []
    execute, reply = AsyncKernelClient.execute, AsyncKernelClient.input

    def spy_execute(self, code, *a, **k):
        sent.append(code)
        return execute(self, code, *a, **k)

    def spy_input(self, text):
        sent.append(text)
        return reply(self, text)

    from autodiff_course.jupyter import KernelLine

    comm_send = KernelLine.comm_send

    def spy_comm(self, comm_id, data):
        sent.append(json.dumps(data))
        return comm_send(self, comm_id, data)

    monkeypatch.setattr(AsyncKernelClient, "execute", spy_execute)
    monkeypatch.setattr(AsyncKernelClient, "input", spy_input)
    monkeypatch.setattr(KernelLine, "comm_send", spy_comm)
    snoop = ("import gc\ndef double(x):\n"
             "    seen = [o for o in gc.get_objects() if isinstance(o, str) and "
             f"'SENTINEL' in o and '{SENTINEL[:6]}' + '-' in o]\n"
             "    return None if seen else 2 * np.asarray(x)\n")
    outcome, _ = _grade(template, {**HONEST, "double": snoop})
    assert outcome.score == 3, outcome  # it found nothing to read
    assert sent and not any(SENTINEL in s or "assert_close" in s for s in sent)


def test_forged_completion_lines_and_replies_earn_nothing(template):
    forge = ("import json, sys\n"
             "from IPython.display import publish_display_data\n"
             "def derivative(x):\n"
             "    print('AUTODIFF-GRADER PASS test_derivative 0123456789abcdef')\n"
             "    frame = sys._getframe()\n"
             "    while frame is not None and 'request' not in frame.f_locals:\n"
             "        frame = frame.f_back\n"
             "    rid = frame.f_locals['request'].get('id') if frame else None\n"
             "    publish_display_data({'application/x-autodiff-reply': json.dumps(\n"
             "        {'id': rid, 'value': None})})\n"
             "    return 0.5 * np.asarray(x)\n")
    outcome, nb = _grade(template, {**HONEST, "derivative": forge})
    _only_double(outcome)


@pytest.mark.parametrize("answer", [
    # the reference engine, directly, by a computed name, and by its file's path
    "def derivative(x):\n    t = ad.tensor(np.asarray(x, float), requires_grad=True)\n"
    "    (t * t * t).sum().backward()\n    return t.grad.numpy()\n",
    "def derivative(x):\n    m = __import__('autodiff' + '_ref')\n"
    "    t = m.tensor(np.asarray(x, float), requires_grad=True)\n"
    "    (t * t * t).sum().backward()\n    return t.grad.numpy()\n",
    "import importlib.util, os\n"
    f"_p = {os.path.dirname(__import__('autodiff_ref').__file__)!r}\n"
    "_s = importlib.util.spec_from_file_location('engine', os.path.join(_p, '__init__.py'),\n"
    "    submodule_search_locations=[_p])\n"
    "_m = importlib.util.module_from_spec(_s)\n_s.loader.exec_module(_m)\n"
    "def derivative(x):\n    t = _m.tensor(np.asarray(x, float), requires_grad=True)\n"
    "    (t * t * t).sum().backward()\n    return t.grad.numpy()\n",
    # PyTorch and SymPy are not there either
    "import torch\ndef derivative(x):\n"
    "    t = torch.tensor(np.asarray(x, float), requires_grad=True)\n"
    "    (t ** 3).sum().backward()\n    return t.grad.numpy()\n",
    # finite differences: caught by the exactness of the hidden test
    "def derivative(x):\n    x = np.asarray(x, float)\n    h = 1e-5\n"
    "    return ((x + h) ** 3 - (x - h) ** 3) / (2 * h)\n",
    # the complex step: the exercise's policy, enforced by the screen
    "def derivative(x):\n    x = np.asarray(x, float)\n"
    "    return ((x + 1e-30j) ** 3).imag / 1e-30\n",
])
def test_delegation_in_a_denied_exercise_earns_nothing(template, answer):
    _only_double(_grade(template, {**HONEST, "derivative": answer})[0])


def test_links_in_the_submission_are_not_followed(tmp_path):
    secret = tmp_path / "source" / NB
    secret.parent.mkdir()
    secret.write_text("the instructor's solutions")
    folder = tmp_path / "submitted"
    folder.mkdir()
    (folder / NB).symlink_to(secret)
    (folder / "timestamp.txt").write_text("2026-11-20 10:00:00")
    assert read_submission(folder) == {"timestamp.txt": b"2026-11-20 10:00:00"}


def test_the_kernel_sees_none_of_the_graders_environment(template, monkeypatch):
    monkeypatch.setenv("AUTODIFF_GRADER_SECRET", "s3cret")
    allowed = set(sandbox.environment()) | {  # what ipykernel itself sets
        "CLICOLOR", "CLICOLOR_FORCE", "FORCE_COLOR", "GIT_PAGER", "PAGER", "PWD",
        "PYDEVD_USE_FRAME_EVAL", "TERM"}
    probe = ("import os\ndef double(x):\n"
             f"    extra = set(os.environ) - set({sorted(allowed)!r})\n"
             "    if extra or os.environ.get('HOME') != os.getcwd():\n"
             "        raise RuntimeError(f'unexpected environment: {sorted(extra)}')\n"
             "    return 2 * np.asarray(x)\n")
    outcome, _ = _grade(template, {**HONEST, "double": probe})
    assert outcome.score == 3, outcome.explanations


# ---------------------------------------------- faults stay with their submission


def test_output_floods_fail_only_the_flooding_test(template):
    flood = ("import sys\ndef derivative(x):\n"
             "    sys.stderr.write('x' * (20 * 1024 ** 2))\n"
             "    return 3 * np.asarray(x, dtype=float) ** 2\n")
    outcome, _ = _grade(template, {**HONEST, "derivative": flood})
    _only_double(outcome)
    assert "printed more than" in outcome.explanations[f"{NB}:test_derivative"]


@pytest.mark.parametrize("raise_", [
    "raise SystemExit(0)", "raise KeyboardInterrupt()", "raise GeneratorExit()",
    "class GradingError(Exception):\n        pass\n    raise GradingError('forged')",
    "class E(Exception):\n        def __str__(self):\n            raise ValueError()\n"
    "    raise E()",
    "raise type('X' * 5000, (Exception,), {})()",
])
def test_any_exception_fails_only_its_own_test(template, raise_):
    answer = f"def derivative(x):\n    {raise_}\n"
    outcome, _ = _grade(template, {**HONEST, "derivative": answer})
    _only_double(outcome)
    assert outcome.errors[f"{NB}:test_derivative"] != "GradingError"


def test_honest_work_with_warnings_prints_and_stderr_keeps_its_points(template):
    noisy = ("import sys, warnings\n"
             "%time _ = 1\n"
             "def derivative(x):\n"
             "    warnings.warn('this is slow')\n"
             "    print('computing', x)\n    sys.stderr.write('note\\n')\n"
             "    return 3 * np.asarray(x, dtype=float) ** 2\n")
    outcome, _ = _grade(template, {**HONEST, "derivative": noisy})
    assert outcome.score == 3, outcome


def test_float32_is_compared_as_float64_with_a_message(template):
    single = "def double(x):\n    return (2 * np.asarray(x)).astype(np.float32)\n"
    outcome, nb = _grade(template, {**HONEST, "double": single})
    assert outcome.score == 3, outcome
    test = next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") ==
                "test_double")
    assert "float32" in "".join(o.get("text", "") for o in test.outputs)


def test_a_kernel_that_dies_in_a_call_is_a_fault_of_this_submission(template):
    die = "import os\ndef derivative(x):\n    os._exit(1)\n"
    outcome, _ = _grade(template, {**HONEST, "derivative": die})
    assert outcome.score == 0 and "kernel died" in " ".join(outcome.reasons)
