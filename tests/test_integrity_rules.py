"""The static screen and the runtime guard, one attack at a time (fast)."""

import numpy as np
import pytest

import autodiff_ref as ad
from autodiff_course.grading import guard
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


# ------------------------------------------------------------- the guard


@pytest.fixture
def armed():
    """Arm the guard inside the test (pytest swaps sys.stdout between phases)."""
    def arm():
        guard._state.clear()
        guard.arm()
    yield arm
    guard._state.clear()


def test_guard_sees_a_replaced_function_and_its_restoration(armed):
    armed()
    original = np.allclose
    assert guard.changes() == []
    np.allclose = lambda *a, **k: True
    try:
        assert "numpy.allclose was replaced" in guard.changes()
        with pytest.raises(guard.TamperingDetected, match="numpy.allclose"):
            guard.check("t", "token")
    finally:
        np.allclose = original
    assert guard.changes() == []


def test_guard_sees_patched_engine_methods_and_helpers(armed):
    from autodiff_ref import grading

    armed()
    saved_backward, saved_assert = ad.Tensor.backward, grading.assert_close
    ad.Tensor.backward = lambda self, *a, **k: None
    grading.assert_close = lambda *a, **k: None
    try:
        found = guard.changes()
        assert any("Tensor.backward was replaced" in c for c in found), found
        assert "autodiff_ref.grading.assert_close was replaced" in found
    finally:
        ad.Tensor.backward, grading.assert_close = saved_backward, saved_assert
    assert guard.changes() == []


def test_guard_prints_the_completion_line_only_when_clean(armed, capsys):
    armed()
    guard.check("test_x", "abc123")
    assert "AUTODIFF-GRADER PASS test_x abc123" in capsys.readouterr().out


@pytest.mark.parametrize("module, owner, attr", [
    ("autodiff_ref.nn", "Linear", "forward"),
    ("autodiff_ref.optim", "SGD", "step"),
    ("autodiff_ref.viz", None, "draw"),
    ("autodiff_ref.ops.nn", "CrossEntropy", "backward"),
])
def test_guard_watches_every_module_of_the_engine(armed, module, owner, attr):
    """Computed from what is loaded, not a list: nn, optim and viz included."""
    import importlib

    mod = importlib.import_module(module)
    armed()
    target = getattr(mod, owner) if owner else mod
    saved = vars(target)[attr]
    setattr(target, attr, lambda *a, **k: None)
    try:
        assert any(attr in c and "replaced" in c for c in guard.changes()), guard.changes()
    finally:
        setattr(target, attr, saved)
    assert guard.changes() == []


def test_verdict_and_guard_share_the_completion_line(armed, capsys):
    from autodiff_course.grading.verdict import completion_line

    armed()
    guard.check("test_y", "t0k")
    assert completion_line("test_y", "t0k") in capsys.readouterr().out
