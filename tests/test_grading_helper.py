"""autodiff_ref.grading names each kind of wrong gradient in words."""

import numpy as np
import pytest

import autodiff_ref as ad
from autodiff_ref import grading


def matmul_forward(a, b):
    return a @ b


def matmul_backward(g, a, b):
    return g @ b.T, a.T @ g


def bias_forward(x, b):
    return x + b  # b of shape (4,) is broadcast over the rows of x (3, 4)


WRONG = {
    # kind: (backward, forward, shapes, words the message must contain)
    "wrong shape": (lambda g, a, b: (g @ b.T, (a.T @ g)[:2]), matmul_forward, [(3, 4), (4, 2)],
                    ["wrong shape", "expected (4, 2), got (2, 2)"]),
    "transposed (non-square)": (lambda g, a, b: (g @ b.T, (a.T @ g).T), matmul_forward,
                                [(3, 4), (4, 2)], ["transposed", "expected shape (4, 2)"]),
    "transposed (square)": (lambda g, a, b: ((g @ b.T).T, a.T @ g), matmul_forward,
                            [(4, 4), (4, 4)], ["transposed"]),
    "constant factor": (lambda g, a, b: (2 * g @ b.T, a.T @ g), matmul_forward,
                        [(3, 4), (4, 2)], ["off by a constant factor", "2"]),
    "wrong sign": (lambda g, a, b: (-(g @ b.T), a.T @ g), matmul_forward, [(3, 4), (4, 2)],
                   ["wrong sign"]),
    "missing broadcast sum": (lambda g, x, b: (g, g), bias_forward, [(3, 4), (4,)],
                              ["missing the sum over the broadcast", "(0,)", "(4,)"]),
    "ignores upstream": (lambda g, a, b: (np.ones_like(g) @ b.T, a.T @ g), matmul_forward,
                         [(3, 4), (4, 2)], ["ignores the upstream gradient"]),
    "returns nothing": (lambda g, a, b: (None, a.T @ g), matmul_forward, [(3, 4), (4, 2)],
                        ["returned nothing", "return"]),
    "wrong count": (lambda g, a, b: g @ b.T, matmul_forward, [(3, 4), (4, 2)],
                    ["must return 2 gradient(s)"]),
    "nan": (lambda g, a, b: (g @ b.T / 0.0, a.T @ g), matmul_forward, [(3, 4), (4, 2)],
            ["NaN or infinity"]),
    "plain wrong": (lambda g, a, b: (g @ b.T + 0.1, a.T @ g), matmul_forward, [(3, 4), (4, 2)],
                    ["wrong values", "largest error", "expected", "got"]),
}


CATEGORY = {  # kind -> the stable code the class report counts it under
    "wrong shape": "wrong_shape", "transposed (non-square)": "transposed",
    "transposed (square)": "transposed", "constant factor": "constant_factor",
    "wrong sign": "wrong_sign", "missing broadcast sum": "missing_broadcast_sum",
    "ignores upstream": "ignores_upstream", "returns nothing": "returned_nothing",
    "wrong count": "wrong_count", "nan": "not_finite", "plain wrong": "wrong_values",
}


@pytest.mark.parametrize("kind", sorted(WRONG))
def test_helper_names_the_mistake(kind):
    backward, forward, shapes, words = WRONG[kind]
    with np.errstate(all="ignore"), pytest.raises(grading.GradingError) as info:
        grading.check_vjp(backward, forward, shapes, rng=np.random.default_rng(0))
    for w in words:
        assert w in " ".join(str(info.value).split()), (kind, str(info.value))
    # the category travels in the error's type, whatever the wording
    assert info.value.category == CATEGORY[kind]
    assert grading.category_of(type(info.value).__name__) == CATEGORY[kind]
    assert isinstance(info.value, grading.CATEGORIES[CATEGORY[kind]])


def test_diagnose_returns_the_category_with_the_same_sentence():
    e = np.arange(6.0).reshape(2, 3) + 1
    cases = {"transposed": e.T, "wrong_sign": -e, "constant_factor": 2 * e,
             "needs_reshape": e.reshape(3, 2), "not_finite": e * np.inf,
             "wrong_shape": e[:1], "returned_nothing": None, "wrong_values": e + [[1, 0, 0]] * 1}
    for code, got in cases.items():
        with np.errstate(all="ignore"):
            found = grading.diagnose(got, e, category=True)
            sentence = grading.diagnose(got, e)
        assert found == (code, sentence), (code, found)
    assert grading.diagnose(e, e, category=True) is None
    close = e * (1 + 1e-6)
    assert grading.diagnose(close, e, rtol=1e-12, category=True)[0] == "not_exact"
    assert grading.diagnose(np.ones((3, 2)), np.full(2, 3.0), category=True)[0] == \
        "missing_broadcast_sum"


def test_every_category_has_one_error_type_and_the_stub_counts_as_not_written():
    assert len(grading.CATEGORIES) == len(grading.ERRORS)
    assert len({cls.__name__ for cls in grading.ERRORS}) == len(grading.ERRORS)
    assert grading.category_of("NotImplementedError") == "not_written"
    assert grading.category_of("ExerciseNotWritten") == "not_written"
    assert grading.category_of("GradingError") == "check_failed"
    assert grading.category_of("ValueError") is None
    with pytest.raises(grading.OutOfBoundsError):
        grading.assert_less(2.0, 1.0)


def test_correct_rules_pass_against_reference_and_finite_differences():
    rng = np.random.default_rng(1)
    grading.check_vjp(matmul_backward, matmul_forward, [(3, 4), (4, 2)], rng=rng,
                             reference=lambda a, b: a @ b)
    grading.check_vjp(lambda g, x, b: (g, g.sum(0)), bias_forward, [(3, 4), (4,)],
                             rng=rng, reference=lambda x, b: x + b)
    sig = lambda x: 1 / (1 + np.exp(-x))  # noqa: E731
    grading.check_vjp(lambda g, x: g * sig(x) * (1 - sig(x)), sig, [(5,)], rng=rng,
                             reference=lambda x: ad.sigmoid(x))


def test_a_bug_in_the_reference_is_not_blamed_on_the_student():
    with pytest.raises(RuntimeError, match="bug in the test"):
        grading.check_vjp(matmul_backward, matmul_forward, [(3, 4), (4, 2)],
                          reference=lambda a, b: 2 * (a @ b))


def test_scalar_messages():
    assert "factor of 2" in grading.diagnose(2.0, 1.0)
    assert "expected 1, got 1.3" in grading.diagnose(1.3, 1.0)
    assert "single number" in grading.diagnose(np.ones(3), 1.0)
    assert grading.diagnose(1.0 + 1e-12, 1.0) is None


def test_threshold_helpers():
    grading.assert_less(1e-9, 1e-6)
    grading.assert_greater(0.5, 1e-3)
    with pytest.raises(grading.GradingError, match="should be below 1e-06. look closer"):
        grading.assert_less(0.1, 1e-6, hint="look closer")
    with pytest.raises(grading.GradingError, match="should be above"):
        grading.assert_greater(0.0, 1e-3)


def test_untouched_exercise_says_so_in_one_line():
    def central_difference(f, x, eps):
        raise NotImplementedError()

    with pytest.raises(grading.ExerciseNotWritten) as info:
        with grading.exercise(2, "central_difference"):
            central_difference(np.sin, 1.0, 1e-5)
    assert str(info.value).startswith("Exercise 2 (`central_difference`) is not written yet")
    assert info.value.__suppress_context__


def test_exercise_names_the_unwritten_one_it_needs():
    def relative_error(a, b):
        raise NotImplementedError()

    def directional_check(f, g, x):
        return relative_error(1.0, 2.0)

    with pytest.raises(grading.ExerciseNotWritten) as info:
        with grading.exercise(5, "directional_check", needs=[(4, "relative_error")]):
            directional_check(None, None, None)
    assert "exercise 4 (`relative_error`), which is not written yet" in " ".join(str(info.value).split())


def test_other_errors_pass_through_exercise():
    with pytest.raises(ZeroDivisionError):
        with grading.exercise(1, "f"):
            1 / 0


def test_long_explanations_wrap():
    with pytest.raises(grading.GradingError) as info:
        grading.assert_close(np.ones((3, 4)) * 2, np.ones((3, 4)), name="a rather long name " * 3)
    assert max(len(line) for line in str(info.value).splitlines()) <= grading.WIDTH


def test_passed_prints_one_line(capsys):
    grading.passed("central_difference")
    assert capsys.readouterr().out == "\u2713 central_difference passes the visible tests\n"


def test_sum_of_parts_names_the_missing_path():
    parts = {"xpy": 1.5, "sigx": -0.25, "num": 0.5}
    grading.assert_sum_of_parts(1.75, parts, name="dx")
    with pytest.raises(grading.GradingError) as info:
        grading.assert_sum_of_parts(1.25, parts, name="dx")  # xpy + sigx only
    message = " ".join(str(info.value).split())
    assert "misses the path(s) through num" in message and "(+=)" in message
    assert info.value.category == "missing_paths"
    with pytest.raises(grading.GradingError) as info:
        grading.assert_sum_of_parts(7.0, parts, name="dx")
    assert "through xpy 1.5" in " ".join(str(info.value).split())
