"""The static screen, one attack at a time (fast); which findings still decide."""

import numpy as np
import pytest

import autodiff_ref as ad
from autodiff_course.grading.integrity import Policy, screen

NO_ENGINE = Policy()
EXERCISE = Policy(allow={"tensor", "Tensor", "Function", "no_grad"},
                  deny={"sigmoid", "backward", "grad"}, exact=True)

ATTACKS = {
    # tampering with the test machinery
    "patch assert_allclose": ("np.testing.assert_allclose = lambda *a, **k: None",
                              "attribute-assignment"),
    "patch np.allclose": ("np.allclose = lambda *a, **k: True", "attribute-assignment"),
    "patch our helper": ("grading.assert_close = print", "grading"),
    "import the helper": ("from autodiff_ref import grading as g\ng.check_vjp = print",
                          "import"),
    "sys.modules": ("import sys\nsys.modules['autodiff_ref.grading'] = None", "import"),
    "builtins": ("import builtins\nbuiltins.AssertionError = Warning", "import"),
    "exception display": ("get_ipython().set_custom_exc((Exception,), lambda *a: None)",
                          "forbidden-name"),
    "excepthook via dunder": ("__builtins__.print = None", "private"),
    "dunder walk": ("x = ().__class__.__base__.__subclasses__()", "private"),
    "getattr": ("getattr(np, 'all' + 'close')", "forbidden-name"),
    "exec": ("exec('np.allclose = 1')", "forbidden-name"),
    "frames": ("def g():\n    yield\nit = g()\nframe = it.gi_frame", "introspection"),
    "module as value": ("def f(ctx):\n    ctx.allclose = 1\nf(np)", "module-value"),
    "submodule as value": ("def f(ctx):\n    ctx.norm = 1\nf(np.linalg)", "module-value"),
    "engine class as value": ("def f(ctx):\n    ctx.backward = 1\nf(ad.Tensor)", "module-value"),
    "magic": ("%load_ext something", "magic"),
    "shell": ("!rm -rf /", "magic"),
    "open a file": ("open('/etc/passwd').read()", "forbidden-name"),
    "os": ("import os\nos._exit(1)", "import"),
    # delegation
    "engine for the answer": ("def f(x):\n    return ad.sigmoid(ad.tensor(x))", "delegation"),
    "engine passed around": ("engine = ad\nengine.sigmoid(1)", "delegation"),
    "denied method": ("def f(x):\n    return x.sigmoid()", "delegation"),
    "autograd for the answer": ("def f(x, g):\n    y = (x * x).sum()\n    y.backward()\n"
                                "    return x.grad", "delegation"),
    "complex step": ("def d(f, x):\n    return f(x + 1e-20j).imag / 1e-20", "exact"),
    "complex dtype": ("def d(f, x):\n    return f(np.complex128(x))", "exact"),
}

HONEST = {
    "numpy formula": "import numpy as np\ndef f(x):\n    s = 1 / (1 + np.exp(-x))\n"
                     "    return s * (1 - s)\n",
    "linear algebra": "def f(a, b):\n    return np.linalg.norm(a - b) / max(np.linalg.norm(a), 1e-12)",
    "random": "def f(theta, rng=None):\n    rng = np.random.default_rng() if rng is None else rng\n"
              "    d = rng.standard_normal(theta.shape)\n    return d / np.linalg.norm(d)",
    "custom Function": "class Square(ad.Function):\n    @staticmethod\n    def forward(ctx, x):\n"
                       "        ctx.save_for_backward(x)\n        ctx.scale = 2\n"
                       "        return x.data ** 2\n    @staticmethod\n"
                       "    def backward(ctx, g):\n        (x,) = ctx.saved_tensors\n"
                       "        return g * ctx.scale * x\n",
    "training loop": "with ad.no_grad():\n    for p in params:\n        p.data -= 0.1 * p.grad.data\n"
                     "        p.grad = None\n",
    "a class with state": "class Counter:\n    def step(self):\n        self.n = 1\n",
    "isinstance": "ok = isinstance(x, ad.Tensor)",
}


@pytest.mark.parametrize("name", sorted(ATTACKS))
def test_attack_is_flagged_with_its_rule(name):
    source, rule = ATTACKS[name]
    found = screen(source, EXERCISE)
    assert rule in {v.rule for v in found}, (name, [str(v) for v in found])
    assert all(v.line >= 1 and v.detail for v in found)


@pytest.mark.parametrize("name", sorted(HONEST))
def test_honest_answer_passes(name):
    policy = Policy(allow={"tensor", "Tensor", "Function", "no_grad"}, exact=True)
    assert screen(HONEST[name], policy) == [], name


def test_engine_is_off_limits_unless_allowed():
    source = "def f(x):\n    return ad.tensor(x)"
    assert screen(source, Policy(allow={"tensor"})) == []
    assert {v.rule for v in screen(source, NO_ENGINE)} == {"delegation"}


def test_dunder_methods_only_where_allowed():
    source = "class Dual:\n    def __init__(self, v, d):\n        self.v, self.d = v, d\n" \
             "    def __mul__(self, o):\n        return Dual(self.v * o.v, self.v * o.d + self.d * o.v)\n"
    assert screen(source, Policy(dunder_methods=True)) == []
    assert "private" in {v.rule for v in screen(source, Policy())}
    # dunder *access* stays forbidden even then
    assert screen("x = Dual.__mul__", Policy(dunder_methods=True))


def test_complex_numbers_only_banned_for_exact_exercises():
    source = "def d(f, x):\n    return f(x + 1e-20j).imag / 1e-20"
    assert screen(source, Policy(exact=False)) == []
    assert screen(source, Policy(exact=True))


def test_syntax_errors_are_left_to_fail_on_their_own():
    assert screen("def f(:\n  pass") == []


# ------------------------------------------- what the screen still decides


def _answer_nb(source, gid="ex"):
    import nbformat

    cell = nbformat.v4.new_code_cell(source)
    cell.metadata["nbgrader"] = {"grade": False, "solution": True, "locked": False,
                                 "grade_id": gid, "schema_version": 3}
    return nbformat.v4.new_notebook(cells=[cell])


@pytest.mark.parametrize("source", ["np.allclose = lambda *a, **k: True",
                                    "import sys\nsys.modules['numpy'] = None",
                                    "get_ipython().set_custom_exc((Exception,), print)"])
def test_tampering_is_only_noted_now_that_tests_run_elsewhere(source):
    """The tests run in the judge: changing the kernel's machinery changes no
    grade, so such an answer runs (and is reported)."""
    from autodiff_course.grading.submission import screen_answers

    nb = _answer_nb(source)
    notes = screen_answers(nb, {"ex": NO_ENGINE})
    assert nb.cells[0].source == source
    assert notes and "noted (graded anyway)" in notes[0]


@pytest.mark.parametrize("source, rule", [
    ("def d(f, x):\n    return f(x + 1e-20j).imag / 1e-20", "exact"),
    ("def s(x):\n    return ad.sigmoid(x)", "delegation"),
])
def test_a_break_of_the_exercise_policy_still_replaces_the_answer(source, rule):
    from autodiff_course.grading.submission import screen_answers

    nb = _answer_nb(source)
    notes = screen_answers(nb, {"ex": EXERCISE})
    assert nb.cells[0].source.startswith("raise RuntimeError(") and rule in nb.cells[0].source
    assert notes and "not run" in notes[0]
