# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 01 · Derivatives and gradient checking
#
# Training a model means making a loss $L(\theta)$ small by changing the
# parameters $\theta$, and almost every method for doing that follows the
# gradient $\nabla L(\theta)$. A modern network has millions of parameters,
# so the whole field rests on one question: **how do we get the derivatives
# of a program, exactly and cheaply?**
#
# This course builds the answer (reverse-mode automatic differentiation) from
# first principles. This first notebook sets the stage:
#
# 1. what a derivative and a gradient *are*: the best local linear
#    approximation, and why $-\nabla L$ is the way downhill;
# 2. how to estimate derivatives with finite differences, and how accurate
#    that can be in floating point (truncation error vs round-off error);
# 3. why finite differences are far too slow to train with, yet are the tool
#    we use to **check** every gradient we compute some other way;
# 4. why differentiating formulas by hand (symbolic differentiation) can waste
#    work, and a first glimpse of how reverse mode avoids it.
#
# **How this notebook works.** Read from top to bottom and run each cell
# (Shift-Enter). There are eleven autograded exercises (18 points) and two
# written answers (2 points, graded by hand). In each exercise, replace
# `raise NotImplementedError()` with your code, then run the test cell right
# below it. The visible tests use the numbers from the text; when the
# notebook is graded, further hidden tests run your function on fresh random
# inputs. A failing test tells you in words what is wrong (wrong sign, off by
# a factor of 2, wrong shape, ...); a passing one prints a line starting
# with ✓. Every other cell runs without your code. A written answer goes in
# the markdown cell marked "YOUR ANSWER HERE"; write it *before* you run the
# cells below it, since they reveal the answer.
#
# **Run All stops at the first unfinished exercise**: its test cell raises an
# error, and Jupyter stops there. Either work through the exercises in order,
# or run cells one at a time (Shift-Enter), or use *Run → Run All Above
# Selected Cell* to catch up to where you are.
#
# Symbols and conventions used throughout the course are collected on the
# [notation card](../notation.md).

# %%
# %matplotlib inline
import time

import numpy as np
import matplotlib.pyplot as plt
import ipywidgets as widgets
import autodiff_ref as ad
from autodiff_ref import grading

# %% [markdown]
# ## 1. The derivative is a local linear approximation
#
# For a function $f:\mathbb{R}\to\mathbb{R}$ the derivative at $x$ is the
# number $f'(x)$ that makes the straight line through $(x, f(x))$ the best
# approximation of $f$ near $x$:
#
# $$
# f(x+h) \;\approx\; f(x) + f'(x)\,h \qquad \text{for small } h .
# $$
#
# "Best" has a precise meaning: the error of this line shrinks *faster* than
# $h$ itself. If $f$ is smooth, Taylor's theorem tells us by how much,
#
# $$
# f(x+h) = f(x) + f'(x)\,h + \tfrac12 f''(x)\,h^2 + O(h^3),
# $$
#
# so the error of the linear approximation is about $\tfrac12 f''(x)\,h^2$:
# halve $h$ and the error drops four times.
#
# **Worked example.** Take $f = \sin$ at $x = 1$: $f(1) = 0.841471$ and
# $f'(1) = \cos 1 = 0.540302$. With $h = 0.1$ the line predicts
# $0.841471 + 0.540302 \times 0.1 = 0.895501$, while the true value is
# $\sin 1.1 = 0.891207$. The error, $-0.004294$, is close to
# $\tfrac12 f''(1)\,h^2 = -\tfrac12 \sin(1) \times 0.01 = -0.004207$.
# The next cell repeats this for smaller $h$: the ratio error$/h^2$ settles at
# $-\tfrac12\sin 1 \approx -0.4207$.

# %%
x0 = 1.0
print(f"{'h':>8} {'sin(1+h)':>12} {'line':>12} {'error':>12} {'error/h^2':>10}")
for h in [0.1, 0.05, 0.01, 0.001]:
    true, line = np.sin(x0 + h), np.sin(x0) + np.cos(x0) * h
    print(f"{h:8.3f} {true:12.8f} {line:12.8f} {true - line:12.3e} {(true - line) / h**2:10.4f}")

xs = np.linspace(-0.5, 2.5, 200)
fig, ax = plt.subplots(figsize=(6, 3.5))
ax.plot(xs, np.sin(xs), label=r"$f(x) = \sin x$")
ax.plot(xs, np.sin(x0) + np.cos(x0) * (xs - x0), "--", label=r"$f(1) + f'(1)\,(x - 1)$")
ax.plot([x0], [np.sin(x0)], "ko")
ax.set_ylim(-1.2, 1.6)
ax.set_xlabel("x")
ax.set_ylabel("y")
ax.legend(loc="upper left")
ax.set_title("Near x = 1 the tangent line is an excellent stand-in for sin")
plt.show()

# %% [markdown]
# ## 2. Gradients, steepest ascent and gradient descent
#
# A loss depends on many numbers, $L:\mathbb{R}^n \to \mathbb{R}$. Its
# **gradient** collects the partial derivatives (each one: vary one
# coordinate, hold the others fixed) into a vector of the same shape as
# $\theta$:
#
# $$
# \nabla L(\theta) = \left(\frac{\partial L}{\partial \theta_1}, \dots,
# \frac{\partial L}{\partial \theta_n}\right)^{\!\top},
# \qquad
# L(\theta + h) \approx L(\theta) + \nabla L(\theta)^\top h .
# $$
#
# The second formula is the same linear approximation as before, now with a
# small step $h \in \mathbb{R}^n$. Among all steps of a fixed small length
# $\|h\| = r$, which one increases $L$ the most? The change is
# $\nabla L^\top h$, and by the Cauchy–Schwarz inequality
# $\nabla L^\top h \le \|\nabla L\|\,\|h\|$, with equality exactly when $h$
# points along $\nabla L$. So **the gradient is the direction of steepest
# ascent**, $\|\nabla L\|$ is the slope in that direction, and $-\nabla L$ is
# the direction of steepest descent. Gradient descent takes a small step that
# way, again and again, with a step size (learning rate) $\eta > 0$:
#
# $$
# \theta \;\leftarrow\; \theta - \eta\, \nabla L(\theta).
# $$
#
# **Worked example.** $L(\theta) = \theta_1^2 + 3\theta_2^2$ has
# $\nabla L = (2\theta_1,\; 6\theta_2)$. Start at $\theta = (2, 1)$ where
# $L = 7$ and $\nabla L = (4, 6)$. With $\eta = 0.1$:
#
# | step | $\theta$ | $L(\theta)$ | $\nabla L(\theta)$ |
# |---|---|---|---|
# | 0 | $(2, 1)$ | $7$ | $(4, 6)$ |
# | 1 | $(2 - 0.4,\ 1 - 0.6) = (1.6, 0.4)$ | $3.04$ | $(3.2, 2.4)$ |
# | 2 | $(1.28, 0.16)$ | $1.7152$ | $(2.56, 0.96)$ |
#
# Each step multiplies $\theta_1$ by $1 - 2\eta = 0.8$ and $\theta_2$ by
# $1 - 6\eta = 0.4$. If $\eta > 1/3$, then $|1 - 6\eta| > 1$ and $\theta_2$
# oscillates with growing size: a learning rate that is too large makes
# gradient descent diverge. The plot shows both cases.
#
# > **Common mistake: stepping along the gradient.** The gradient points
# > *uphill*, towards the steepest increase of $L$. A minimiser must step
# > along the **negative** gradient, $\theta - \eta\nabla L$. Writing
# > $\theta + \eta\nabla L$ climbs the loss; it is a one-character bug that
# > no shape check catches, only a loss that grows.

# %%
def loss(t):
    return t[0] ** 2 + 3 * t[1] ** 2


def loss_grad(t):
    return np.array([2 * t[0], 6 * t[1]])


# %% [markdown]
# ### Exercise 1 (1 point): gradient descent
#
# Write `gradient_descent(grad, theta0, eta, steps)`: starting from `theta0`,
# take `steps` steps of gradient descent with learning rate `eta`, and return
# the whole path, the starting point included, one row per point. The cell
# after the test draws the paths of the table for $\eta = 0.1$ and for a
# learning rate that is too large.

# %% solution="gradient_descent"
def gradient_descent(grad, theta0, eta, steps):
    """The path of gradient descent on a loss whose gradient is grad.

    grad: maps a 1-D array theta of length n to the gradient of the loss at
    theta (a 1-D array of length n); theta0: the starting point, a 1-D array
    (left unchanged); eta: the learning rate; steps: the number of steps.
    Returns an ndarray of shape (steps + 1, n): row 0 is theta0, row k the
    point after k steps.
    """
    ### BEGIN SOLUTION
    path = [np.array(theta0, dtype=np.float64)]
    for _ in range(steps):
        path.append(path[-1] - eta * np.asarray(grad(path[-1]), dtype=np.float64))
    return np.array(path)
    ### END SOLUTION


# %% test="test_gradient_descent" points=1
with grading.exercise(1, "gradient_descent"):
    path = gradient_descent(loss_grad, np.array([2.0, 1.0]), 0.1, 2)
    if np.shape(path) == (3, 2) and np.allclose(path[1], [2.4, 1.6]):
        raise grading.GradingError("gradient_descent stepped uphill: the gradient points "
                                   "towards larger loss; step along minus the gradient.")
    grading.assert_close(path, np.array([[2.0, 1.0], [1.6, 0.4], [1.28, 0.16]]), rtol=1e-12,
                         name="gradient_descent(loss_grad, [2.0, 1.0], 0.1, 2) (the table)")
grading.passed("gradient_descent")
### BEGIN HIDDEN TESTS
_rng = np.random.default_rng()
for _ in range(3):
    # L = sum_i a_i theta_i^2: each step multiplies theta_i by (1 - 2 a_i eta)
    _n = int(_rng.integers(1, 6))
    _a = _rng.uniform(0.1, 3, _n)
    _t0 = _rng.uniform(-2, 2, _n)
    _before = _t0.copy()
    _eta = float(_rng.uniform(0.01, 0.3))
    _steps = int(_rng.integers(0, 8))
    _got = gradient_descent(lambda t: 2 * _a * t, _t0, _eta, _steps)
    if not np.array_equal(_t0, _before):
        raise grading.GradingError("gradient_descent changed its argument theta0 in place.")
    grading.assert_close(_got, (1 - 2 * _a * _eta) ** np.arange(_steps + 1)[:, None] * _t0,
                         rtol=1e-10, atol=1e-12,
                         name=f"gradient_descent on sum_i a_i theta_i^2, n={_n}, eta={_eta:.3f}, "
                              f"{_steps} steps")
### END HIDDEN TESTS

# %%
try:
    for k, t in enumerate(gradient_descent(loss_grad, np.array([2.0, 1.0]), 0.1, 2)):
        print(f"step {k}: theta = {t}, L = {loss(t):.4f}, grad = {loss_grad(t)}")

    g1, g2 = np.meshgrid(np.linspace(-2.5, 2.5, 101), np.linspace(-1.8, 1.8, 101))
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.8))
    for ax, eta in zip(axes, [0.1, 0.35]):
        path = gradient_descent(loss_grad, np.array([2.0, 1.0]), eta, 15 if eta < 1 / 3 else 6)
        ax.contour(g1, g2, g1**2 + 3 * g2**2, levels=[0.25, 1, 2, 4, 7, 10], colors="0.7")
        ax.plot(path[:, 0], path[:, 1], "o-", ms=3)
        ax.set_title(f"eta = {eta}: L goes from 7 to {loss(path[-1]):.3g}")
        ax.set_xlabel(r"$\theta_1$")
        ax.set_ylabel(r"$\theta_2$")
        ax.set_aspect("equal")
    plt.show()
except NotImplementedError:
    print("Finish Exercise 1 (gradient_descent) to see the table and the paths.")

# %% [markdown]
# ## 3. Finite differences
#
# The derivative is a limit, $f'(x) = \lim_{\varepsilon \to 0}
# \frac{f(x+\varepsilon) - f(x)}{\varepsilon}$. Stop short of the limit and
# you get a computable estimate, the **forward difference**. Taylor's
# expansion shows how good it is:
#
# $$
# f(x+\varepsilon) = f(x) + f'(x)\,\varepsilon + \tfrac12 f''(x)\,\varepsilon^2
# + O(\varepsilon^3)
# \quad\Longrightarrow\quad
# \frac{f(x+\varepsilon) - f(x)}{\varepsilon}
# = f'(x) + \underbrace{\tfrac12 f''(x)\,\varepsilon}_{\text{error}} + O(\varepsilon^2).
# $$
#
# The error is $O(\varepsilon)$: ten times smaller $\varepsilon$, ten times
# smaller error. We can do much better at the same price by stepping to
# *both* sides. Write the expansion for $+\varepsilon$ and for $-\varepsilon$:
#
# $$
# \begin{aligned}
# f(x+\varepsilon) &= f(x) + f'(x)\,\varepsilon + \tfrac12 f''(x)\,\varepsilon^2
#   + \tfrac16 f'''(x)\,\varepsilon^3 + O(\varepsilon^4),\\
# f(x-\varepsilon) &= f(x) - f'(x)\,\varepsilon + \tfrac12 f''(x)\,\varepsilon^2
#   - \tfrac16 f'''(x)\,\varepsilon^3 + O(\varepsilon^4).
# \end{aligned}
# $$
#
# The two rows differ only in the signs of the odd powers. **Derive the
# estimate yourself** (it is Exercise 3): combine $f(x+\varepsilon)$ and
# $f(x-\varepsilon)$ so that $f(x)$ and the $f''$ term cancel, then divide
# by the multiple of $\varepsilon$ that leaves $f'(x)$ with coefficient $1$.
# (Does a sum or a difference of the two rows remove the even powers?) What
# remains after $f'(x)$ is the error; you should find that it starts with
# $\tfrac16 f'''(x)\,\varepsilon^2$, and that the next term is of order
# $\varepsilon^4$.
#
# This **central difference** has error $O(\varepsilon^2)$: ten times smaller
# $\varepsilon$, a hundred times smaller error. Geometrically, the forward
# difference is the slope of the secant through $x$ and $x+\varepsilon$; the
# central difference is the slope of the secant through $x-\varepsilon$ and
# $x+\varepsilon$, which is tilted symmetrically around $x$ and so matches the
# tangent much better.
#
# **Worked numbers** for $f = \sin$ at $x = 1$ (where $f' = \cos 1 = 0.5403023$):
#
# | $\varepsilon$ | forward | its error | $\tfrac12 f''\varepsilon = -\tfrac12\sin(1)\,\varepsilon$ | central | its error | $\tfrac16 f'''\varepsilon^2 = -\tfrac16\cos(1)\,\varepsilon^2$ |
# |---|---|---|---|---|---|---|
# | $10^{-1}$ | 0.4973638 | $-4.29\times10^{-2}$ | $-4.21\times10^{-2}$ | 0.5394023 | $-9.00\times10^{-4}$ | $-9.01\times10^{-4}$ |
# | $10^{-2}$ | 0.5360860 | $-4.22\times10^{-3}$ | $-4.21\times10^{-3}$ | 0.5402933 | $-9.005\times10^{-6}$ | $-9.005\times10^{-6}$ |
# | $10^{-3}$ | 0.5398815 | $-4.21\times10^{-4}$ | $-4.21\times10^{-4}$ | 0.5403022 | $-9.005\times10^{-8}$ | $-9.005\times10^{-8}$ |
#
# The Taylor terms predict the errors almost exactly.
#
# ### Exercise 2 (1 point): the forward difference
#
# Write `forward_difference(f, x, eps)`. It should work for a float `x` and,
# without any extra effort, for a NumPy array `x` of points (then `f` is
# applied element by element, like `np.sin`).

# %% solution="forward_difference"
def forward_difference(f, x, eps):
    """Forward-difference estimate of f'(x), from f at x and at x + eps.

    f: a function of one variable; x: a float (or an array of points);
    eps: the step, a small positive float.
    Returns the slope of the secant through x and x + eps: a float (an
    array of x's shape if x is an array). Its error is O(eps).
    """
    ### BEGIN SOLUTION
    return (f(x + eps) - f(x)) / eps
    ### END SOLUTION


# %% test="test_forward_difference" points=1
with grading.exercise(2, "forward_difference"):
    grading.assert_close(forward_difference(np.sin, 1.0, 1e-4), np.cos(1.0),
                         name="forward_difference(np.sin, 1.0, 1e-4)", rtol=0, atol=1e-4)
    # the error is the Taylor term f''(1) eps / 2 = -sin(1) eps / 2 of the table
    steps = np.array([1e-3, 1e-4])
    errors = np.array([forward_difference(np.sin, 1.0, e) for e in steps]) - np.cos(1.0)
    grading.assert_close(errors, -np.sin(1.0) * steps / 2, rtol=1e-3, atol=0,
                         name="forward_difference(np.sin, 1.0, eps) - cos(1) for eps = 1e-3, "
                              "1e-4 (Taylor: -sin(1) eps / 2)")
    # a straight line has no curvature: the estimate is exact
    grading.assert_close(forward_difference(lambda x: 3 * x + 2, -1.5, 1e-3), 3.0,
                         name="forward_difference(lambda x: 3*x + 2, -1.5, 1e-3)", rtol=1e-9)
grading.passed("forward_difference")
### BEGIN HIDDEN TESTS
_rng = np.random.default_rng()
for _ in range(3):
    # for a parabola a x^2 + b x + c the forward difference is exactly 2 a x + b + a eps
    _a, _b, _c = _rng.uniform(-2, 2, 3)
    _x = _rng.uniform(-3, 3, 5)
    _eps = 10 ** _rng.uniform(-4, -2)
    grading.assert_close(
        forward_difference(lambda t: _a * t**2 + _b * t + _c, _x, _eps),
        2 * _a * _x + _b + _a * _eps,
        name=(f"forward_difference of {_a:.3f} x^2 + {_b:.3f} x + {_c:.3f} at 5 random "
              f"points x, eps={_eps:.2e}"), rtol=1e-7, atol=1e-8)
    # for exp it is exactly exp(x) (exp(eps) - 1) / eps
    _x = _rng.uniform(-2, 2, 4)
    _eps = 10 ** _rng.uniform(-5, -3)
    grading.assert_close(forward_difference(np.exp, _x, _eps),
                         np.exp(_x) * np.expm1(_eps) / _eps,
                         name=f"forward_difference(np.exp, x, {_eps:.2e}) at 4 random points x",
                         rtol=1e-8, atol=0)
### END HIDDEN TESTS

# %% [markdown]
# ### Exercise 3 (1 point): the central difference
#
# Write `central_difference(f, x, eps)`, the symmetric estimate you derived
# above. The tests check its error term too: for $\sin$ at $x = 1$ the
# estimate must be off by the Taylor term of the table.

# %% solution="central_difference"
def central_difference(f, x, eps):
    """Central-difference estimate of f'(x), from f at x - eps and x + eps.

    f: a function of one variable; x: a float (or an array of points);
    eps: the step, a small positive float.
    Returns the symmetric estimate whose error is f'''(x) eps^2 / 6 + O(eps^4):
    a float (an array of x's shape if x is an array).
    """
    ### BEGIN SOLUTION
    return (f(x + eps) - f(x - eps)) / (2 * eps)
    ### END SOLUTION


# %% test="test_central_difference" points=1
with grading.exercise(3, "central_difference"):
    grading.assert_close(central_difference(np.sin, 1.0, 1e-5), np.cos(1.0),
                         name="central_difference(np.sin, 1.0, 1e-5)", rtol=1e-8)
    # the error is the Taylor term f'''(1) eps^2 / 6 = -cos(1) eps^2 / 6 of the table
    steps = np.array([1e-2, 1e-3])
    errors = np.array([central_difference(np.sin, 1.0, e) for e in steps]) - np.cos(1.0)
    grading.assert_close(errors, -np.cos(1.0) * steps**2 / 6, rtol=1e-3, atol=0,
                         name="central_difference(np.sin, 1.0, eps) - cos(1) for eps = 1e-2, "
                              "1e-3 (Taylor: -cos(1) eps^2 / 6)")
    # a parabola has f''' = 0: the estimate is exact even with a big step
    grading.assert_close(central_difference(lambda x: x**2 - 4 * x, 3.0, 0.5), 2.0,
                         name="central_difference(lambda x: x**2 - 4*x, 3.0, 0.5)", rtol=1e-12)
grading.passed("central_difference")
### BEGIN HIDDEN TESTS
_rng = np.random.default_rng()
for _ in range(3):
    # a cubic a x^3 + b x^2 + c x + d: exactly 3 a x^2 + 2 b x + c + a eps^2
    _a, _b, _c, _d = _rng.uniform(-2, 2, 4)
    _x = _rng.uniform(-3, 3, 5)
    _eps = 10 ** _rng.uniform(-3, -1)
    grading.assert_close(
        central_difference(lambda t: ((_a * t + _b) * t + _c) * t + _d, _x, _eps),
        3 * _a * _x**2 + 2 * _b * _x + _c + _a * _eps**2,
        name=(f"central_difference of {_a:.3f} x^3 + {_b:.3f} x^2 + {_c:.3f} x + {_d:.3f} "
              f"at 5 random points x, eps={_eps:.2e}"), rtol=1e-7, atol=1e-8)
    # sin: exactly cos(x) sin(eps) / eps
    _x = _rng.uniform(-3, 3, 4)
    _eps = 10 ** _rng.uniform(-3, -0.5)
    grading.assert_close(central_difference(np.sin, _x, _eps), np.cos(_x) * np.sin(_eps) / _eps,
                         name=f"central_difference(np.sin, x, {_eps:.2e}) at 4 random points x",
                         rtol=1e-8, atol=1e-10)
# against the reference engine: g(x) = sin(x) exp(x/2) + x^3/3 at random points
_x = _rng.uniform(-2, 2, 6)
_t = ad.tensor(_x, requires_grad=True)
(ad.sin(_t) * ad.exp(_t * 0.5) + _t**3 / 3).sum().backward()
grading.assert_close(
    central_difference(lambda t: np.sin(t) * np.exp(t / 2) + t**3 / 3, _x, 1e-5),
    _t.grad.numpy(),
    name="central_difference(sin(x) exp(x/2) + x^3/3, x, 1e-5) vs autodiff_ref",
    rtol=1e-6, atol=1e-8)
### END HIDDEN TESTS

# %% [markdown]
# ### Richardson extrapolation: cancel the next error term too
#
# Carry the two Taylor expansions two orders further and the central
# difference $D(\varepsilon)$ turns out to have only even powers of
# $\varepsilon$ in its error:
#
# $$
# D(\varepsilon) = f'(x) + a\,\varepsilon^2 + b\,\varepsilon^4 + O(\varepsilon^6),
# \qquad a = \tfrac16 f'''(x), \quad b = \tfrac{1}{120} f^{(5)}(x).
# $$
#
# We do not know $a$ (that would need $f'''$), but we know how the error
# *scales*: halve the step and the $\varepsilon^2$ term shrinks four times.
# So two estimates with different steps contain the same unknown $a$ in a
# known ratio, and a weighted average of them can cancel it. This is
# **Richardson extrapolation**. The recipe:
#
# 1. write the expansions of $D(\varepsilon)$ and $D(\varepsilon/2)$;
# 2. look for weights $w_1, w_2$ with $w_1 + w_2 = 1$ (so that $f'(x)$ keeps
#    the coefficient $1$) for which $w_1 D(\varepsilon) + w_2 D(\varepsilon/2)$
#    has no $a$ term;
# 3. what is left after $f'(x)$ is the new error: a multiple of
#    $f^{(5)}(x)\,\varepsilon^4$. Work out that multiple too.
#
# **Worked numbers** for $\sin$ at $x = 1$ with $\varepsilon = 0.1$:
# $D(0.1) = 0.5394022522$ (error $-9.0\times10^{-4}$) and
# $D(0.05) = 0.5400772080$ (error $-2.3\times10^{-4}$); the extrapolated
# value is $0.5403021933$, with error $-1.13\times10^{-7}$. Your error
# formula from step 3 should predict that last number to about three digits.
#
# ### Exercise 4 (2 points): one step of Richardson extrapolation

# %% solution="richardson"
def richardson(f, x, eps):
    """Richardson-extrapolated derivative estimate of f at x.

    f: a function of one variable; x: a float (or an array of points);
    eps: the larger of the two steps, a positive float.
    Returns the weighted combination of the central differences with steps
    eps and eps / 2 that cancels their eps^2 error term (weights summing to
    1): an estimate of f'(x) with error O(eps^4). Evaluate f yourself (at
    x +- eps and x +- eps / 2); do not call central_difference.
    """
    ### BEGIN SOLUTION
    coarse = (f(x + eps) - f(x - eps)) / (2 * eps)
    fine = (f(x + eps / 2) - f(x - eps / 2)) / eps
    # coarse = f' + a eps^2 + ..., fine = f' + a eps^2 / 4 + ...: 4 fine - coarse = 3 f' + O(eps^4)
    return (4 * fine - coarse) / 3
    ### END SOLUTION


# %% test="test_richardson" points=2
with grading.exercise(4, "richardson"):
    grading.assert_close(richardson(np.sin, 1.0, 0.1), 0.5403021933386563, rtol=1e-12,
                         name="richardson(np.sin, 1.0, 0.1) (the worked number)")
    # a quartic: the eps^4 error term needs f^(5), which is 0, so the estimate is exact
    grading.assert_close(richardson(lambda x: x**4 - 2 * x, 0.5, 0.5), 4 * 0.5**3 - 2,
                         rtol=1e-12, name="richardson(lambda x: x**4 - 2*x, 0.5, 0.5)")
grading.passed("richardson")
### BEGIN HIDDEN TESTS
_rng = np.random.default_rng()
for _ in range(3):
    # a quintic c x^5 + (quartic): f^(5) = 120 c, so the error is exactly -c eps^4 / 4
    _c = _rng.uniform(0.5, 2) * _rng.choice([-1, 1])
    _q = _rng.uniform(-2, 2, 5)
    _x = _rng.uniform(-2, 2, 4)
    _eps = float(_rng.uniform(0.1, 1.0))
    _f = lambda t: _c * t**5 + np.polyval(_q, t)  # noqa: E731
    _exact = 5 * _c * _x**4 + np.polyval(np.polyder(_q), _x)
    grading.assert_close(richardson(_f, _x.copy(), _eps) - _exact,
                         np.full(4, -_c * _eps**4 / 4), rtol=1e-6, atol=1e-9,
                         name=f"the error of richardson on {_c:.3f} x^5 + (a random quartic), "
                              f"eps = {_eps:.3f} (should be -f^(5) eps^4 / 480)")
    # exp: halving eps divides the error by 16
    _x0 = float(_rng.uniform(-1, 1))
    _e1, _e2 = (richardson(np.exp, _x0, _h) - np.exp(_x0) for _h in (0.2, 0.1))
    grading.assert_close(_e1 / _e2, 16.0, rtol=0.02,
                         name=f"the error ratio of richardson(np.exp, {_x0:.3f}, eps) for eps = "
                              "0.2 and 0.1 (an O(eps^4) error shrinks 16 times)")
    grading.assert_close(_e1, -np.exp(_x0) * 0.2**4 / 480, rtol=0.02, atol=0,
                         name=f"the error of richardson(np.exp, {_x0:.3f}, 0.2)")
### END HIDDEN TESTS

# %% [markdown]
# ### Exercise 5 (2 points): the Richardson table
#
# Why stop after one step? The extrapolated values have an error
# $c\,h^4 + O(h^6)$ (with $h$ the smaller step of the two), again a pure power
# series in even powers, so the same trick cancels the $h^4$ term, then the
# $h^6$ term, and so on. Arrange the estimates in a triangular table:
#
# * column $0$ holds central differences with the steps
#   $\varepsilon, \varepsilon/2, \varepsilon/4, \dots$: row $k$ uses
#   $h_k = \varepsilon/2^k$;
# * entry $T[k, j]$ (for $1 \le j \le k$) combines $T[k, j-1]$ and
#   $T[k-1, j-1]$, two estimates whose leading errors are $c\,h_k^{2j}$ and
#   $c\,(2h_k)^{2j}$ with the same unknown $c$. Choose the weights (summing to
#   $1$) that cancel that term. They depend on $j$: derive them in general,
#   and check that $j = 1$ gives your Exercise 4, $T[k, 1] =$
#   `richardson(f, x, eps / 2**(k-1))`.
#
# Then $T[k, j]$ has error $O(h_k^{2j+2})$, and it is **exact for every
# polynomial of degree at most $2j + 2$** (the tests use that).

# %% solution="richardson_table"
def richardson_table(f, x, eps, levels):
    """The triangular table of repeated Richardson extrapolation at a point x.

    f: a function of one variable; x: a float; eps: the first step;
    levels: the number of halvings, an int >= 0.
    Returns an ndarray T of shape (levels + 1, levels + 1):
      T[k, 0] is the central difference with step h_k = eps / 2**k;
      T[k, j] (1 <= j <= k) is the combination of T[k, j-1] and T[k-1, j-1]
      (weights summing to 1) that cancels their leading error term, leaving
      an error O(h_k**(2j+2));
      entries above the diagonal (j > k) are np.nan.
    """
    ### BEGIN SOLUTION
    T = np.full((levels + 1, levels + 1), np.nan)
    for k in range(levels + 1):
        h = eps / 2**k
        T[k, 0] = (f(x + h) - f(x - h)) / (2 * h)
        for j in range(1, k + 1):
            # errors c h^(2j) and c (2h)^(2j) = 4^j c h^(2j): weight 4^j on the finer one
            factor = 4**j
            T[k, j] = (factor * T[k, j - 1] - T[k - 1, j - 1]) / (factor - 1)
    return T
    ### END SOLUTION


# %% test="test_richardson_table" points=2
with grading.exercise(5, "richardson_table"):
    T = richardson_table(np.sin, 1.0, 0.4, 3)
    grading.assert_close(np.isnan(T), np.triu(np.ones((4, 4)), 1) > 0,
                         name="np.isnan(richardson_table(np.sin, 1.0, 0.4, 3)) (nan exactly "
                              "above the diagonal, shape (4, 4))")
    # T[2, 1] and T[3, 1] are one Richardson step with eps = 0.2 and 0.1 (worked number)
    grading.assert_close(T[3, 1], 0.5403021933386563, rtol=1e-12,
                         name="richardson_table(np.sin, 1.0, 0.4, 3)[3, 1]")
    if not abs(T[3, 3] - np.cos(1.0)) < 1e-12:
        raise grading.GradingError(
            f"richardson_table(np.sin, 1.0, 0.4, 3)[3, 3] is off from cos(1) by "
            f"{abs(T[3, 3] - np.cos(1.0)):.1e}; three extrapolations get within 1e-12. Check "
            "the weights of column j: they cancel an error term c h^(2j), so they depend on j.")
grading.passed("richardson_table")
### BEGIN HIDDEN TESTS
_rng = np.random.default_rng()
_levels = int(_rng.integers(3, 5))
_eps = float(_rng.uniform(0.3, 1.0))
_x = float(_rng.uniform(-1.5, 1.5))
_T = np.asarray(richardson_table(np.exp, _x, _eps, _levels), dtype=float)
if _T.shape != (_levels + 1, _levels + 1):
    raise grading.GradingError(f"richardson_table(np.exp, x, eps, {_levels}) should have "
                               f"shape {(_levels + 1, _levels + 1)}, got {_T.shape}.")
_h = _eps / 2.0 ** np.arange(_levels + 1)
grading.assert_close(_T[:, 0], np.exp(_x) * np.sinh(_h) / _h, rtol=1e-12, atol=0,
                     name=f"column 0 of richardson_table(np.exp, {_x:.3f}, {_eps:.3f}, "
                          f"{_levels}) (central differences with steps eps / 2**k)")
for _j in range(1, _levels + 1):
    # column j is exact for polynomials of degree 2j + 2 ...
    _p = _rng.uniform(-1, 1, 2 * _j + 3)
    _Tp = np.asarray(richardson_table(lambda t: np.polyval(_p, t), _x, _eps, _levels), float)
    grading.assert_close(_Tp[_j:, _j], np.full(_levels + 1 - _j, np.polyval(np.polyder(_p), _x)),
                         rtol=1e-9, atol=1e-9,
                         name=f"column {_j} of richardson_table for a random polynomial of "
                              f"degree {2 * _j + 2} (must be exact)")
    # ... and its error on exp shrinks like h^(2j+2) down the column
    if _j < _levels - 1:
        _err = np.abs(_T[_j:, _j] - np.exp(_x))
        grading.assert_close(_err[1] / _err[0], 0.5 ** (2 * _j + 2), rtol=0.1, atol=0,
                             name=f"the ratio of the errors of T[{_j + 1}, {_j}] and "
                                  f"T[{_j}, {_j}] for exp (halving h: 2^-(2j+2))")
### END HIDDEN TESTS

# %%
try:
    T = richardson_table(np.sin, 1.0, 0.4, 3)
    print("errors T[k, j] - cos(1) of richardson_table(np.sin, 1.0, 0.4, 3):")
    print(f"{'step':>6} " + " ".join(f"{'j = ' + str(j):>10}" for j in range(4)))
    for k, row in enumerate(T - np.cos(1.0)):
        print(f"{0.4 / 2**k:6.3f} " + " ".join(f"{e:10.1e}" for e in row[:k + 1]))
except NotImplementedError:
    print("Finish Exercise 5 (richardson_table) to see the table of errors.")

# %% [markdown]
# Eight evaluations of $\sin$, none with a step smaller than $0.05$, give
# $\cos 1$ to about $2\times10^{-13}$: better than any single central
# difference can do in float64, as the next section shows. Large steps keep
# round-off harmless; extrapolation removes the truncation error instead.

# %% [markdown]
# ## 4. Truncation error vs round-off error
#
# The Taylor argument says: smaller $\varepsilon$, smaller error. In exact
# arithmetic that is true forever. On a computer it is not, because a float64
# carries only about 16 significant digits. The gap between $1$ and the next
# representable number is the **machine epsilon**,
# $\varepsilon_{\text{mach}} = 2^{-52} \approx 2.2\times10^{-16}$, and every
# computed value $f(x)$ is off by a relative amount of that order.
#
# Now look at what a finite difference does: it subtracts two nearly equal
# numbers $f(x+\varepsilon)$ and $f(x)$. Their leading digits cancel and the
# rounding errors, about $\varepsilon_{\text{mach}}|f(x)|$ each, do not.
# Dividing by $\varepsilon$ then blows them up. So the total error has two
# parts:
#
# $$
# \text{forward:}\quad
# \underbrace{\tfrac12 |f''|\,\varepsilon}_{\text{truncation}}
# + \underbrace{\frac{\varepsilon_{\text{mach}}|f|}{\varepsilon}}_{\text{round-off}},
# \qquad\qquad
# \text{central:}\quad
# \tfrac16 |f'''|\,\varepsilon^2 + \frac{\varepsilon_{\text{mach}}|f|}{\varepsilon}.
# $$
#
# Truncation error falls as $\varepsilon$ shrinks; round-off error grows. On a
# log-log plot each part is a straight line (slopes $+1$ or $+2$ for
# truncation, $-1$ for round-off), and their sum is a **V**.
#
# ### Written answer 1 (1 point): predict the bottom of the V
#
# **Before you run the next cell**, predict from the two error models alone,
# for $f = \sin$ at $x = 1$ (where $|f|$, $|f''|$ and $|f'''|$ all lie between
# $0.5$ and $1$): roughly at which $\varepsilon$ is the error of the
# **forward** difference smallest, and how small is it there? The same for
# the **central** difference. Explain in two or three sentences why the
# minima sit where you say, and why one of them is at a larger $\varepsilon$
# than the other. Orders of magnitude are enough.

# %% [markdown] answer="predict_v_minimum" points=1
# ### BEGIN SOLUTION
# **Model answer.** The minimum is where the falling truncation error meets
# the rising round-off error (the two terms are then of the same size).
# Forward: $\tfrac12\varepsilon \approx \varepsilon_{\text{mach}}/\varepsilon$
# gives $\varepsilon \approx \sqrt{\varepsilon_{\text{mach}}} \approx
# 10^{-8}$, with an error of about $10^{-8}$ (about half the digits are lost).
# Central: $\tfrac16\varepsilon^2 \approx \varepsilon_{\text{mach}}/\varepsilon$
# gives $\varepsilon \approx \varepsilon_{\text{mach}}^{1/3} \approx 10^{-5}$,
# with an error of about $\varepsilon_{\text{mach}}^{2/3} \approx 10^{-11}$.
# The central minimum is at a larger $\varepsilon$ because its truncation
# error falls like $\varepsilon^2$: it is already negligible at steps where
# round-off is still small, so the balance is reached sooner, and at a
# lower error.
#
# **Rubric (1 point).** Full point: both locations within about a factor of
# 10 ($10^{-8}$ forward, $10^{-6}$ to $10^{-5}$ central) *and* the balance of
# truncation against round-off as the reason. Half a point: right reason with
# wrong numbers, or right numbers with no reason. The error sizes at the
# minima are a bonus, not required.
# ### END SOLUTION

# %%
x0 = 1.0
eps_grid = np.logspace(-17, 0, 171)
exact = np.cos(x0)
err_forward = np.abs((np.sin(x0 + eps_grid) - np.sin(x0)) / eps_grid - exact)
err_central = np.abs((np.sin(x0 + eps_grid) - np.sin(x0 - eps_grid)) / (2 * eps_grid) - exact)
machine_eps = np.finfo(np.float64).eps

fig, ax = plt.subplots(figsize=(9.5, 4.5))
ax.loglog(eps_grid, np.maximum(err_forward, 1e-17), color="C1", label="forward difference")
ax.loglog(eps_grid, np.maximum(err_central, 1e-17), color="C2", label="central difference")
ax.loglog(eps_grid, 0.5 * np.sin(x0) * eps_grid, "k:", lw=1, label=r"$\frac{1}{2}|f''|\,\varepsilon$")
ax.loglog(eps_grid, np.cos(x0) / 6 * eps_grid**2, "k--", lw=1,
          label=r"$\frac{1}{6}|f'''|\,\varepsilon^2$")
ax.loglog(eps_grid, machine_eps * np.sin(x0) / eps_grid, "k-.", lw=1,
          label=r"$\varepsilon_{mach}|f|/\varepsilon$")
ax.axvline(machine_eps, color="r", lw=1, label=r"machine epsilon $2.2\cdot10^{-16}$")
ax.set_ylim(1e-14, 10)
ax.set_xlabel(r"step $\varepsilon$")
ax.set_ylabel(r"|estimate $-$ $\cos 1$|")
ax.set_title(r"Error of finite differences for $\sin'(1)$ in float64")
ax.legend(loc="upper left", bbox_to_anchor=(1.02, 1), fontsize=9)  # outside: no data hidden
fig.tight_layout()
plt.show()
for name, err in [("forward", err_forward), ("central", err_central)]:
    k = np.argmin(err)
    print(f"{name:8s}: smallest error {err[k]:.1e} at eps = {eps_grid[k]:.1e}")

# %% [markdown]
# Was your prediction right? Each minimum lies near the crossing of its
# method's truncation line (dotted or dashed) with the round-off line
# (dash-dotted). Two details of the plot:
#
# * To the right of the minima the measured errors follow the Taylor terms
#   exactly; to the left they follow the round-off line only on average,
#   jumping up and down with the luck of the rounding (a lucky
#   $\varepsilon$ can beat the model).
# * At the far left the forward estimate is exactly $0$, an error of
#   $\cos 1 \approx 0.54$. There $1 + \varepsilon$ is not a float64 and
#   rounds to $1$: for every $\varepsilon < \varepsilon_{\text{mach}}/2$,
#   because $1$ is then the nearer neighbour, and also at exactly
#   $\varepsilon = \varepsilon_{\text{mach}}/2$, a tie that round-half-to-even
#   settles in favour of $1$. Then $f(x+\varepsilon)$ and $f(x)$ are the same
#   number. For $\varepsilon_{\text{mach}}/2 < \varepsilon < \varepsilon_{\text{mach}}$,
#   $1 + \varepsilon$ rounds *up* to $1 + \varepsilon_{\text{mach}}$: the step
#   actually taken is not the $\varepsilon$ we divide by.
#
# ### Exercise 6 (2 points): the best step, derived
#
# Make the prediction exact. Both error models have the form
#
# $$
# E(\varepsilon) = C\,\varepsilon^{p} + \frac{R}{\varepsilon},
# \qquad C > 0,\ R > 0,\ p \ge 1,
# $$
#
# with $p = 1$, $C = \tfrac12|f''|$ for the forward difference, $p = 2$,
# $C = \tfrac16|f'''|$ for the central one, $p = 4$ for one Richardson step,
# and $R = \varepsilon_{\text{mach}}|f|$. Find the minimiser: $E$ is convex
# for $\varepsilon > 0$, so set $E'(\varepsilon) = 0$ and solve for
# $\varepsilon^*$. Then simplify $E(\varepsilon^*)$: at the optimum the
# truncation term is a fixed fraction of the round-off term, so $E^*$ is a
# simple multiple of $R/\varepsilon^*$. How does the best error scale with
# $\varepsilon_{\text{mach}}$ for $p = 1$, $p = 2$ and $p = 4$?

# %% solution="optimal_step"
def optimal_step(C, p, R):
    """The step that minimises the error model E(eps) = C eps**p + R / eps.

    C: the truncation coefficient (> 0); p: the order of the method (>= 1);
    R: the round-off scale, machine epsilon times |f| (> 0).
    Returns a tuple (eps_star, error_star) of floats: the minimiser of E over
    eps > 0 and the value E(eps_star).
    """
    ### BEGIN SOLUTION
    # E'(eps) = p C eps^(p-1) - R / eps^2 = 0  <=>  eps^(p+1) = R / (p C)
    eps_star = (R / (p * C)) ** (1 / (p + 1))
    # at eps_star, C eps^p = R / (p eps): the truncation part is 1/p of the round-off part
    error_star = (1 + 1 / p) * R / eps_star
    return float(eps_star), float(error_star)
    ### END SOLUTION


# %% test="test_optimal_step" points=2
def _model(C, p, R, e):
    return C * e**p + R / e


with grading.exercise(6, "optimal_step"):
    # the forward difference for sin at x = 1
    C, R = 0.5 * np.sin(1.0), np.finfo(np.float64).eps * np.sin(1.0)
    e_star, err_star = optimal_step(C, 1, R)
    grading.assert_close(e_star, 2.1073424255447017e-08, rtol=1e-9,
                         name="eps_star of optimal_step(sin(1)/2, 1, eps_mach sin(1))")
    grading.assert_close(err_star, _model(C, 1, R, e_star), rtol=1e-9,
                         name="error_star of optimal_step(sin(1)/2, 1, eps_mach sin(1)) "
                              "(must be E(eps_star))")
    # the central difference: eps_star must be the minimiser of E
    C = np.cos(1.0) / 6
    e_star, err_star = optimal_step(C, 2, R)
    grading.assert_less(err_star, min(_model(C, 2, R, e_star * 1.01), _model(C, 2, R, e_star / 1.01)),
                        name="E(eps_star) for optimal_step(cos(1)/6, 2, eps_mach sin(1))",
                        hint="(E must be larger on both sides of eps_star: E'(eps_star) = 0)")
grading.passed("optimal_step")
### BEGIN HIDDEN TESTS
_rng = np.random.default_rng()
for _p in (1, 2, 3, 4, 6):
    _C, _R = 10 ** _rng.uniform(-3, 1), 10 ** _rng.uniform(-17, -12)
    _res = optimal_step(_C, _p, _R)
    if not isinstance(_res, tuple) or len(_res) != 2:
        raise grading.GradingError("optimal_step should return a tuple (eps_star, error_star).")
    _es = (_R / (_p * _C)) ** (1 / (_p + 1))
    grading.assert_close(_res[0], _es, rtol=1e-10, atol=0,
                         name=f"eps_star of optimal_step(C={_C:.3g}, p={_p}, R={_R:.3g})")
    grading.assert_close(_res[1], _model(_C, _p, _R, _es), rtol=1e-10, atol=0,
                         name=f"error_star of optimal_step(C={_C:.3g}, p={_p}, R={_R:.3g})")
    # a brute-force minimum over a fine grid agrees
    _grid = _es * np.logspace(-1, 1, 2001)
    grading.assert_close(_res[1], np.min(_model(_C, _p, _R, _grid)), rtol=1e-5, atol=0,
                         name=f"error_star vs a grid search, p={_p}")
### END HIDDEN TESTS

# %% [markdown]
# The prediction next to the measurement. A single measured error jumps up
# and down with the luck of rounding, so the cell also averages the
# logarithm of the error over half a decade of $\varepsilon$ on either side,
# and locates the bottom of that smoothed curve. The model ignores constants
# of order one in the round-off term (rounding errors partly cancel), so
# agreement within a factor of a few is all we can ask.

# %%
try:
    for name, C, p, err in [("forward", 0.5 * np.sin(1.0), 1, err_forward),
                            ("central", np.cos(1.0) / 6, 2, err_central)]:
        e_star, err_star = optimal_step(C, p, machine_eps * np.sin(1.0))
        log_err = np.log10(np.maximum(err, 1e-17))
        smooth = np.array([np.mean(log_err[max(0, i - 5):i + 6]) for i in range(len(err))])
        k = np.argmin(smooth)
        print(f"{name}: predicted best eps {e_star:.1e}, error {err_star:.1e};  measured "
              f"(smoothed) best eps {eps_grid[k]:.1e}, error {10 ** smooth[k]:.1e}")
except NotImplementedError:
    print("Finish Exercise 6 (optimal_step) to compare prediction and measurement.")

# %% [markdown]
# ### Explore it
#
# Move the slider to choose $\varepsilon$ (and pick a function). The left
# panel shows the function near $x = 1$, its tangent, and the two secants
# whose slopes are the forward and central estimates; the right panel marks
# the chosen $\varepsilon$ on the V. Things to try:
#
# * large $\varepsilon$ (near 1): the forward secant is visibly tilted, the
#   central one is nearly parallel to the tangent;
# * $\varepsilon$ around $10^{-5}$: the lines coincide and both errors are tiny;
# * $\varepsilon$ below $10^{-12}$: the picture still looks perfect, yet the
#   errors grow again. Round-off error is invisible in a plot of the function,
#   which is exactly why it is easy to miss.

# %%
FUNCTIONS = {  # name: (f, f')
    "sin(x)": (np.sin, np.cos),
    "exp(x)": (np.exp, np.exp),
    "x**3 - 2x": (lambda x: x**3 - 2 * x, lambda x: 3 * x**2 - 2),
}


def show_secants(eps=1e-2, function="sin(x)"):
    f, df = FUNCTIONS[function]
    x0 = 1.0
    slope_fwd = (f(x0 + eps) - f(x0)) / eps
    slope_cen = (f(x0 + eps) - f(x0 - eps)) / (2 * eps)
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))

    xs = np.linspace(x0 - 1, x0 + 1, 200)
    left.plot(xs, f(xs), "k", lw=2, label=function)
    left.plot(xs, f(x0) + df(x0) * (xs - x0), color="0.6", label="tangent")
    left.plot(xs, f(x0) + slope_fwd * (xs - x0), "--", color="C1", label="forward secant")
    left.plot(xs, f(x0 + eps) + slope_cen * (xs - x0 - eps), ":", lw=2, color="C2",
              label="central secant")
    if eps > 0.02:
        left.plot([x0 - eps, x0, x0 + eps], [f(x0 - eps), f(x0), f(x0 + eps)], "ko", ms=4)
    left.set_ylim(f(xs).min() - 0.5, f(xs).max() + 0.5)
    left.set_xlabel("x")
    left.set_ylabel("y")
    left.legend(loc="upper left", fontsize=8)
    left.set_title(f"eps = {eps:.1e}")

    grid = np.logspace(-16, 0, 161)
    fwd = np.abs((f(x0 + grid) - f(x0)) / grid - df(x0))
    cen = np.abs((f(x0 + grid) - f(x0 - grid)) / (2 * grid) - df(x0))
    right.loglog(grid, np.maximum(fwd, 1e-17), label="forward", color="C1")
    right.loglog(grid, np.maximum(cen, 1e-17), label="central", color="C2")
    e_fwd, e_cen = abs(slope_fwd - df(x0)), abs(slope_cen - df(x0))
    right.loglog([eps], [max(e_fwd, 1e-17)], "o", color="C1")
    right.loglog([eps], [max(e_cen, 1e-17)], "o", color="C2")
    right.axvline(eps, color="0.5", lw=1)
    right.axvline(np.finfo(np.float64).eps, color="r", lw=1, label="machine epsilon")
    right.set_ylim(1e-14, 10)
    right.set_xlabel(r"$\varepsilon$")
    right.set_ylabel(r"|estimate $-$ $f'(1)$|")
    right.legend(loc="lower left", fontsize=8)
    right.set_title(f"error: forward {e_fwd:.1e}, central {e_cen:.1e}")
    plt.show()


explorer = widgets.interactive(
    show_secants,
    eps=widgets.FloatLogSlider(value=1e-2, base=10, min=-16, max=0, step=0.25,
                               description="step ε", readout_format=".1e",
                               continuous_update=False,
                               style={"description_width": "initial"}),
    function=widgets.Dropdown(options=list(FUNCTIONS), description="function f",
                              style={"description_width": "initial"}),
)
display(explorer)

# %% [markdown]
# **What to take away.** Use the central difference, with $\varepsilon$ near
# the bottom of its V. For functions whose values and derivatives are of
# order one, $\varepsilon = 10^{-6}$ in float64 is a safe choice: the error is
# then around $10^{-10}$ relative to the derivative. That is the default of
# PyTorch's `gradcheck` and of `autodiff_ref.gradcheck`. Never expect a finite
# difference to match an exact derivative to more than about 10 digits.

# %% [markdown]
# ## 5. The numerical gradient and what it costs
#
# For $f:\mathbb{R}^n \to \mathbb{R}$, each partial derivative is a
# one-variable derivative along a coordinate axis. With $e_i$ the vector that
# is $1$ in position $i$ and $0$ elsewhere,
#
# $$
# \frac{\partial f}{\partial \theta_i}(\theta) \approx
# \frac{f(\theta + \varepsilon e_i) - f(\theta - \varepsilon e_i)}{2\varepsilon},
# \qquad i = 1, \dots, n.
# $$
#
# That is **two evaluations of $f$ per parameter, $2n$ in total**. The same
# holds when $\theta$ is a matrix or any other array: each entry gets its own
# nudge, and the result has the shape of $\theta$.
#
# ### Exercise 7 (2 points): the numerical gradient
#
# Write `numerical_gradient(f, theta, eps=1e-6)`. `theta` may have any shape,
# for example a weight matrix; `f` takes an array of that shape and returns a
# float. Loop over all entries (`np.ndindex(theta.shape)` yields every index
# tuple). Do not modify the caller's `theta`: nudge a copy, or put each entry
# back after nudging it.

# %% solution="numerical_gradient"
def numerical_gradient(f, theta, eps=1e-6):
    """Central-difference gradient of a scalar function of an array.

    f: maps an ndarray of theta's shape to a float; theta: ndarray of floats,
    any shape; eps: the step.
    Returns an ndarray of theta's shape whose entry at index i is the
    central-difference estimate, with step eps, of the partial derivative of
    f with respect to theta[i]. theta is left unchanged.
    """
    ### BEGIN SOLUTION
    theta = np.asarray(theta, dtype=np.float64)
    grad = np.zeros_like(theta)
    for i in np.ndindex(theta.shape):
        step = np.zeros_like(theta)
        step[i] = eps
        grad[i] = (f(theta + step) - f(theta - step)) / (2 * eps)
    return grad
    ### END SOLUTION


# %% test="test_numerical_gradient" points=2
with grading.exercise(7, "numerical_gradient"):
    # the loss of section 2, L = theta1^2 + 3 theta2^2 at (2, 1): the gradient is (4, 6)
    theta = np.array([2.0, 1.0])
    L = lambda t: t[0] ** 2 + 3 * t[1] ** 2
    grading.assert_close(numerical_gradient(L, theta, eps=1e-3), np.array([4.0, 6.0]),
                         name="numerical_gradient(L, [2.0, 1.0], eps=1e-3), L = t1^2 + 3 t2^2",
                         rtol=1e-9)
    if not np.array_equal(theta, [2.0, 1.0]):
        raise grading.GradingError(f"numerical_gradient changed its argument theta to {theta}: "
                                   "nudge a copy, or restore each entry after nudging it.")
    # a matrix argument: the gradient of sum(sin(theta)) is cos(theta), of shape (2, 3)
    theta = np.arange(6.0).reshape(2, 3) / 4
    grading.assert_close(numerical_gradient(lambda t: np.sum(np.sin(t)), theta), np.cos(theta),
                         name="numerical_gradient(sum(sin(theta)), theta of shape (2, 3))",
                         rtol=1e-7, atol=1e-9)
grading.passed("numerical_gradient")
### BEGIN HIDDEN TESTS
_rng = np.random.default_rng()
for _shape in [(int(_rng.integers(2, 8)),), tuple(int(s) for s in _rng.integers(2, 4, 2)),
               (2, 3, 2)]:
    # a random quadratic 1/2 v^T A v + b^T v of v = theta.ravel(): gradient A v + b
    _n = int(np.prod(_shape))
    _B = _rng.standard_normal((_n, _n))
    _A, _bv = _B + _B.T, _rng.standard_normal(_n)
    _f = lambda t: 0.5 * t.ravel() @ _A @ t.ravel() + _bv @ t.ravel()  # noqa: E731
    _theta = _rng.uniform(-1, 1, _shape)
    _before = _theta.copy()
    _expected = (_A @ _theta.ravel() + _bv).reshape(_shape)
    grading.assert_close(numerical_gradient(_f, _theta, eps=1e-3), _expected,
                         name=f"numerical_gradient of a random quadratic, theta of shape "
                              f"{_shape}, eps=1e-3", rtol=1e-7, atol=1e-8)
    grading.assert_close(numerical_gradient(_f, _theta), _expected,
                         name=f"numerical_gradient of a random quadratic, theta of shape "
                              f"{_shape}, default eps", rtol=1e-6, atol=1e-6)
    if not np.allclose(_theta, _before, rtol=1e-12, atol=1e-12):
        raise grading.GradingError("numerical_gradient changed its argument theta in place: "
                                   "nudge a copy, or restore each entry after nudging it.")
# against the reference engine: f(theta) = sum(tanh(theta @ M)) + 0.5 sum(theta^2)
_m, _k, _p = (int(s) for s in _rng.integers(2, 5, 3))
_M = _rng.standard_normal((_k, _p))
_theta = _rng.standard_normal((_m, _k))
_t = ad.tensor(_theta.copy(), requires_grad=True)
(ad.tanh(_t @ _M).sum() + (_t * _t).sum() * 0.5).backward()
grading.assert_close(
    numerical_gradient(lambda t: np.sum(np.tanh(t @ _M)) + 0.5 * np.sum(t**2), _theta),
    _t.grad.numpy(),
    name=f"numerical_gradient(sum(tanh(theta @ M)) + sum(theta^2)/2), theta of shape "
         f"{(_m, _k)}, vs autodiff_ref", rtol=1e-5, atol=1e-7)
### END HIDDEN TESTS

# %% [markdown]
# How expensive is that? The next cell counts the evaluations of $f$ made by
# the reference's finite-difference routine (`ad.numerical_jacobian`, which
# does what you just wrote) and times it against one backward pass of
# `autodiff_ref`, for $f(\theta) = \sum_i \tanh(\theta_i)\,c_i$ with a
# growing number of parameters $n$.

# %%
calls = 0


def f_counted(theta):
    global calls
    calls += 1
    return np.sum(np.tanh(theta) * c)


print(f"{'n':>6} {'evaluations':>12} {'finite diff.':>13} {'backward':>10}")
for n in [10, 100, 1000, 3000]:
    rng = np.random.default_rng(0)
    theta, c = rng.standard_normal(n), rng.standard_normal(n)
    calls = 0
    start = time.perf_counter()
    g_numeric = ad.numerical_jacobian(f_counted, theta)
    t_numeric = time.perf_counter() - start

    start = time.perf_counter()
    t = ad.tensor(theta, requires_grad=True)
    (ad.tanh(t) * c).sum().backward()
    t_backward = time.perf_counter() - start
    assert np.allclose(g_numeric, t.grad.numpy(), atol=1e-7)
    print(f"{n:6d} {calls:12d} {t_numeric * 1e3:10.1f} ms {t_backward * 1e3:7.2f} ms")

# %% [markdown]
# The number of evaluations is $2n$, so the time of a numerical gradient
# grows in proportion to $n$ (times the cost of one evaluation, which itself
# grows with $n$). Scale this to a network with a million parameters whose
# forward pass takes 10 ms: one numerical gradient is $2\times10^6$ forward
# passes, about **5.5 hours**, for a single step of gradient descent. The
# backward pass of automatic differentiation gives the same gradient,
# exactly, for the price of a few forward passes, whatever $n$ is. Finite
# differences are hopeless for training.
#
# They are, however, indispensable for **testing**: they need nothing but
# the ability to evaluate $f$, so they are an independent check of any
# gradient computed another way (by hand, by a backward rule you wrote, or by
# an autodiff engine).
#
# > **Common mistake: "autograd nudges the inputs".** Automatic
# > differentiation is *not* numerical differentiation. It never evaluates
# > $f$ at $\theta + \varepsilon e_i$ and has no step $\varepsilon$: it applies
# > the exact derivative rule of every elementary operation ($\sin' = \cos$,
# > the product rule, ...) to the numbers of one evaluation and combines them
# > with the chain rule. Its result is exact up to the rounding of ordinary
# > float arithmetic, with no truncation error and no V. Nor is it symbolic
# > differentiation: it never builds a formula for $f'$ (section 7 shows why
# > that matters).

# %% [markdown]
# ## 6. Gradient checking
#
# To check a claimed gradient $g(\theta) \approx \nabla f(\theta)$ we do not
# need all $2n$ evaluations. Pick a **random direction** $v$ (a unit
# vector of $\theta$'s shape) and compare the derivative of $f$ along
# $v$, computed two ways:
#
# $$
# \underbrace{v^\top g(\theta)}_{\text{analytic}}
# \quad\text{vs}\quad
# \underbrace{\frac{f(\theta+\varepsilon v) - f(\theta-\varepsilon v)}{2\varepsilon}}_{\text{numeric}}
# \;=\; v^\top \nabla f(\theta) + O(\varepsilon^2).
# $$
#
# This is the central difference of the one-variable function
# $s \mapsto f(\theta + s\,v)$ at $s = 0$, whose derivative is
# $v^\top \nabla f(\theta)$ by the chain rule. It costs two evaluations
# of $f$ whatever $n$ is. If $g$ is wrong, say $g = \nabla f + e$ with an
# error vector $e \ne 0$, the two sides differ by $v^\top e$, which is
# zero only if $v$ happens to be exactly orthogonal to $e$: for a random
# $v$ that has probability zero. Repeat with a few directions to be safe.
#
# **Relative error.** "The two numbers differ by $10^{-6}$" means nothing
# until we know their size: it is a tiny difference between two numbers near
# $10^{4}$ and a huge one between two numbers near $10^{-6}$. So we compare
# with the relative error
#
# $$
# \operatorname{rel}(a, b) = \frac{\|a - b\|}{\max(\|a\|, \|b\|, 10^{-12})},
# $$
#
# which does not change when both $a$ and $b$ are multiplied by the same
# number. The norms are Euclidean (for matrices: Frobenius, the square root
# of the sum of all squared entries), so the same formula works for numbers,
# vectors and arrays; the $10^{-12}$ keeps $\operatorname{rel}(0, 0) = 0$
# instead of $0/0$. Rules of thumb in float64 with $\varepsilon = 10^{-6}$ on
# smooth functions: below $10^{-7}$ the gradient is right; above $10^{-4}$
# something is almost surely wrong; above $10^{-2}$ it certainly is. (Kinks
# such as ReLU at $0$ can legitimately cause larger values, if a nudge crosses
# the kink.)
#
# ### Exercise 8 (1 point): relative error

# %% solution="relative_error"
def relative_error(a, b):
    """Relative error between two numbers or two arrays of the same shape.

    Returns rel(a, b) as defined above, a float: norms are Euclidean over
    all entries (Frobenius for matrices), with the floor 1e-12 in the
    denominator so that rel(0, 0) = 0.
    """
    ### BEGIN SOLUTION
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    # without ord or axis, np.linalg.norm is the Euclidean norm of all entries
    return float(np.linalg.norm(a - b) / max(np.linalg.norm(a), np.linalg.norm(b), 1e-12))
    ### END SOLUTION


# %% test="test_relative_error" points=1
with grading.exercise(8, "relative_error"):
    r = relative_error(np.array([3.0, 4.0]), np.array([3.0, 4.5]))
    if np.ndim(r) != 0:
        raise grading.GradingError(f"relative_error of two vectors should be one number, got "
                                   f"an array of shape {np.shape(r)}: take norms over all entries.")
    grading.assert_close(r, 0.5 / np.sqrt(3.0**2 + 4.5**2), rtol=1e-9,
                         name="relative_error([3.0, 4.0], [3.0, 4.5])")
    grading.assert_close(relative_error(2.0, 1.0), 0.5, rtol=1e-9,
                         name="relative_error(2.0, 1.0) (divide by the larger of the two norms)")
    grading.assert_close(relative_error(np.zeros(3), np.zeros(3)), 0.0, atol=1e-15,
                         name="relative_error(np.zeros(3), np.zeros(3)) (must not divide 0 by 0)")
    # matrices: Frobenius norms, ||a - b|| = 1 and max(||a||, ||b||) = sqrt(2)
    grading.assert_close(relative_error(np.eye(2), np.array([[1.0, 0.0], [0.0, 0.0]])),
                         1 / np.sqrt(2), rtol=1e-9,
                         name="relative_error(np.eye(2), [[1, 0], [0, 0]]) (Frobenius norms)")
grading.passed("relative_error")
### BEGIN HIDDEN TESTS
grading.assert_close(relative_error(1.0, 1.1), 0.1 / 1.1, name="relative_error(1.0, 1.1)",
                     rtol=1e-9)
grading.assert_close(relative_error(np.array([3.0, 4.0]), np.array([3.0, 4.0])), 0.0,
                     name="relative_error of two equal vectors", atol=1e-15)
_rng = np.random.default_rng()


def _rel(a, b):
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    return np.sqrt(np.sum((a - b) ** 2)) / max(np.sqrt(np.sum(a**2)), np.sqrt(np.sum(b**2)),
                                                1e-12)


for _shape in [(), (5,), (3, 4), (2, 3, 2)]:
    _a = _rng.standard_normal(_shape)
    _b = _a + _rng.uniform(0.01, 1.0) * _rng.standard_normal(_shape)
    _scale = 10 ** _rng.uniform(-5, 5)
    grading.assert_close(relative_error(_a, _b), _rel(_a, _b), rtol=1e-9, atol=0,
                         name=f"relative_error(a, b) for random a, b of shape {_shape}")
    grading.assert_close(relative_error(_b, _a), _rel(_a, _b), rtol=1e-9, atol=0,
                         name=f"relative_error(b, a) for random a, b of shape {_shape}")
    grading.assert_close(relative_error(_scale * _a, _scale * _b), _rel(_a, _b), rtol=1e-9,
                         atol=0, name=f"relative_error(s*a, s*b) with s = {_scale:.2e} "
                                      f"(must not depend on the scale), shape {_shape}")
    _x = float(_rng.uniform(-10, 10))
    grading.assert_close(relative_error(_x, _x), 0.0, atol=1e-15,
                         name=f"relative_error({_x}, {_x})")
# tiny numbers: the floor 1e-12 in the denominator
grading.assert_close(relative_error(np.full(2, 1e-20), np.zeros(2)), np.sqrt(2) * 1e-8,
                     rtol=1e-9, name="relative_error([1e-20, 1e-20], [0, 0]) (floor 1e-12)")
### END HIDDEN TESTS

# %% [markdown]
# ### Exercise 9 (2 points): a directional gradient check
#
# Write `directional_check(f, grad_f, theta, eps=1e-6, rng=None)`. Draw a
# random direction $v$ of `theta`'s shape from the generator `rng` (for
# instance with `rng.standard_normal(theta.shape)`) and divide it by its norm;
# compute the analytic side $v^\top g(\theta)$ (for arrays: the sum of
# the entry-wise products) and the numeric side; return their relative error
# using your `relative_error`. Passing `rng` lets a caller repeat a check
# exactly.

# %% solution="directional_check"
def directional_check(f, grad_f, theta, eps=1e-6, rng=None):
    """Check grad_f against f along one random unit direction.

    f: ndarray of theta's shape -> float; grad_f: the claimed gradient, an
    ndarray of theta's shape -> ndarray of theta's shape; theta: ndarray
    (any shape); eps: the step; rng: a np.random.Generator (None: a fresh
    np.random.default_rng()).
    Returns the relative error (a float, computed with relative_error)
    between the analytic and the numeric (central difference, step eps)
    derivative of f along a random unit direction v of theta's shape,
    drawn from rng.
    """
    ### BEGIN SOLUTION
    rng = np.random.default_rng() if rng is None else rng
    theta = np.asarray(theta, dtype=np.float64)
    v = rng.standard_normal(theta.shape)
    v /= np.linalg.norm(v)
    analytic = np.sum(v * grad_f(theta))
    numeric = (f(theta + eps * v) - f(theta - eps * v)) / (2 * eps)
    return relative_error(analytic, numeric)
    ### END SOLUTION


# %% test="test_directional_check" points=2
with grading.exercise(9, "directional_check", needs=[(8, "relative_error")]):
    if grading.diagnose(relative_error(2.0, 1.0), 0.5, rtol=1e-9) is not None:  # exercise 8
        raise grading.GradingError("directional_check returns relative_error(...), and your "
                                   "relative_error (exercise 8) gives wrong values: make "
                                   "test_relative_error pass first.")
    # the loss of section 2 at (2, 1) with its true gradient, then with twice the gradient
    L, theta = lambda t: t[0] ** 2 + 3 * t[1] ** 2, np.array([2.0, 1.0])
    grad_L = lambda t: np.array([2 * t[0], 6 * t[1]])
    errors = [directional_check(L, grad_L, theta, rng=np.random.default_rng(s)) for s in range(3)]
    if any(e is None or np.ndim(e) != 0 for e in errors):
        raise grading.GradingError(f"directional_check should return one number (the relative "
                                   f"error), got {errors[0]!r}. Did you forget `return`?")
    grading.assert_less(np.median(errors), 1e-6, name="directional_check(L, grad_L, [2.0, 1.0]) "
                        "for the correct gradient (median of 3 directions)")
    # twice the gradient: the analytic side is 2a, the numeric side a, rel(2a, a) = 1/2
    grading.assert_close(directional_check(L, lambda t: 2 * grad_L(t), theta), 0.5, rtol=1e-4,
                         name="directional_check(L, 2 * grad_L, [2.0, 1.0]) (rel(2a, a) = 1/2)")
grading.passed("directional_check")
### BEGIN HIDDEN TESTS
# minus the gradient: rel(-a, a) = 2
grading.assert_close(
    directional_check(L, lambda t: -grad_L(t), theta, rng=np.random.default_rng(0)), 2.0,
    name="directional_check(L, -grad_L, [2.0, 1.0]) (rel(-a, a) = 2)", rtol=1e-4)
# a gradient with one wrong entry: the result depends on v, which comes from rng
_bad_L = lambda t: np.array([-2 * t[0], 6 * t[1]])  # noqa: E731
_same = [directional_check(L, _bad_L, theta, rng=np.random.default_rng(7)) for _ in range(2)]
_other = directional_check(L, _bad_L, theta, rng=np.random.default_rng(8))
if _same[0] != _same[1] or _other == _same[0]:
    raise grading.GradingError(
        f"directional_check with a wrong gradient gave {_same[0]:.6g} and {_same[1]:.6g} for two "
        f"generators with seed 7 and {_other:.6g} with seed 8: draw the direction v from "
        "the generator `rng` (the same seed must give the same v, another seed another).")
_rng = np.random.default_rng()


def _median_check(f, g, theta, **kw):
    return float(np.median([directional_check(f, g, theta, **kw) for _ in range(3)]))


for _shape in [(int(_rng.integers(2, 10)),), (3, 4), (2, 2, 3)]:
    _n = int(np.prod(_shape))
    _B = _rng.standard_normal((_n, _n))
    _A, _bv = _B + _B.T, _rng.standard_normal(_n)
    _f = lambda t: 0.5 * t.ravel() @ _A @ t.ravel() + _bv @ t.ravel()  # noqa: E731
    _g = lambda t: (_A @ t.ravel() + _bv).reshape(t.shape)  # noqa: E731
    _theta = _rng.uniform(-1, 1, _shape)
    _err = _median_check(_f, _g, _theta)
    if not _err < 1e-6:
        raise grading.GradingError(
            f"directional_check returned {_err:.3g} (median of 3 calls) for the correct "
            f"gradient of a random quadratic, theta of shape {_shape}; expected < 1e-6.")
    grading.assert_close(directional_check(_f, lambda t: 2 * _g(t), _theta), 0.5, rtol=1e-3,
                         name=f"directional_check with twice the gradient, shape {_shape}")
    # one entry of the gradient with the wrong sign: some direction must notice
    _j = int(np.argmax(np.abs(_g(_theta))))

    def _flipped(t, _j=_j, _g=_g):
        out = _g(t).copy()
        out.flat[_j] *= -1
        return out

    _errs = [directional_check(_f, _flipped, _theta) for _ in range(3)]
    if not max(_errs) > 1e-3:
        raise grading.GradingError(
            f"directional_check returned {', '.join(f'{e:.3g}' for e in _errs)} for a "
            "gradient with one entry of the wrong "
            f"sign (theta of shape {_shape}); a wrong gradient should give more than 1e-3.")
    # the same rng seed gives the same direction, hence the same result
    _seed = int(_rng.integers(1 << 30))
    _e1 = directional_check(_f, _flipped, _theta, rng=np.random.default_rng(_seed))
    _e2 = directional_check(_f, _flipped, _theta, rng=np.random.default_rng(_seed))
    if _e1 != _e2:
        raise grading.GradingError("directional_check gave different results for two "
                                   "generators with the same seed: draw v from `rng`.")
# a gradient from the reference engine, for f(theta) = sum(sin(theta) * theta) + log(1 + |theta|^2)
def _f_np(t):
    return np.sum(np.sin(t) * t) + np.log(1 + np.sum(t * t))


def _g_ad(t):
    x = ad.tensor(np.array(t, dtype=np.float64), requires_grad=True)
    ((ad.sin(x) * x).sum() + ad.log((x * x).sum() + 1)).backward()
    return x.grad.numpy()


_theta = _rng.uniform(-2, 2, (4, 3))
_err = _median_check(_f_np, _g_ad, _theta)
if not _err < 1e-6:
    raise grading.GradingError(f"directional_check returned {_err:.3g} for a correct "
                               "autodiff_ref gradient; expected < 1e-6.")
grading.assert_close(directional_check(_f_np, lambda t: -_g_ad(t), _theta), 2.0, rtol=1e-3,
                     name="directional_check with minus the autodiff_ref gradient")
### END HIDDEN TESTS

# %% [markdown]
# ### Why float64?
#
# The round-off part of the error, $\varepsilon_{\text{mach}}|f|/\varepsilon$,
# depends on the precision. In float32 (the usual training precision),
# $\varepsilon_{\text{mach}} = 2^{-23} \approx 1.2\times10^{-7}$, so with
# $\varepsilon = 10^{-6}$ the round-off error is of order $0.1$: a gradient
# check in float32 would reject correct gradients. The best float32 can do is
# at $\varepsilon \approx (1.2\times10^{-7})^{1/3} \approx 5\times10^{-3}$,
# with a relative error around $10^{-5}$, far too coarse to notice a small
# bug. The next cell runs the directional check of a correct gradient of
# $f(\theta) = \sum_i \theta_i \sin\theta_i$ in both precisions.

# %%
rng = np.random.default_rng(1)
theta = rng.uniform(-2, 2, 10)
v = rng.standard_normal(10)
v /= np.linalg.norm(v)
exact = v @ (np.sin(theta) + theta * np.cos(theta))  # the true directional derivative

print(f"{'eps':>8} {'rel. error float32':>19} {'rel. error float64':>19}")
for eps in [1e-1, 1e-2, 1e-3, 1e-4, 1e-5, 1e-6, 1e-7]:
    row = []
    for dtype in (np.float32, np.float64):
        t, d, e = theta.astype(dtype), v.astype(dtype), dtype(eps)
        f_plus = np.sum((t + e * d) * np.sin(t + e * d))
        f_minus = np.sum((t - e * d) * np.sin(t - e * d))
        numeric = float((f_plus - f_minus) / (2 * e))
        row.append(abs(numeric - exact) / abs(exact))
    print(f"{eps:8.0e} {row[0]:19.2e} {row[1]:19.2e}")

# %% [markdown]
# In float64 the check reaches $10^{-10}$ and better; in float32 it never gets
# below about $10^{-5}$, and at the standard $\varepsilon = 10^{-6}$ it is
# useless. So: **do gradient checks in float64** (`autodiff_ref.gradcheck`
# warns if you don't, and PyTorch's `gradcheck` expects double precision),
# with central differences and $\varepsilon \approx 10^{-6}$.

# %% [markdown]
# ### When a gradient check misleads
#
# A check compares two numbers, so it can fail in two ways: a correct
# gradient that looks wrong, and a wrong gradient that looks right. Besides
# kinks and float32, two traps catch people again and again.
#
# **Tiny values.** Suppose the true directional derivative is about
# $10^{-10}$ (a loss that barely depends on some parameters, or a loss summed
# with a tiny weight). The numeric side still carries a round-off error of
# about $\varepsilon_{\text{mach}}|f|/\varepsilon \approx 10^{-10}$ for
# $|f| \approx 1$ and $\varepsilon = 10^{-6}$: as large as the value itself.
# The relative error of a *correct* gradient is then anywhere up to $1$. The
# floor $10^{-12}$ in $\operatorname{rel}$ only protects $0/0$; it does not
# help here.
#
# **A term that swamps the others.** A training loss is often a data term
# plus a regulariser, $L(\theta) = D(\theta) + \lambda\|\theta\|^2$, and the
# gradient is the sum of both gradients.
#
# ### Written answer 2 (1 point): a bug hidden by the regulariser
#
# The next cell checks the gradient of $L(\theta) = D(\theta) +
# \lambda\|\theta\|^2$ for a least-squares data term
# $D(\theta) = \frac1N\sum_n (x_n^\top\theta - y_n)^2$ whose gradient has a
# bug: the factor $2$ of the square is missing, so the data part of the
# gradient is half what it should be. The regulariser's gradient
# $2\lambda\theta$ is right. **Before you run the cell**, predict what the
# relative error does as $\lambda$ grows through $0, 1, 100, 10^4, 10^6$, and
# explain why. From which $\lambda$ on would the bug slip through the rules of
# thumb of section 6? What should one do instead?

# %% [markdown] answer="hidden_by_regulariser" points=1
# ### BEGIN SOLUTION
# **Model answer.** At $\lambda = 0$ the check compares $\tfrac12 a$ with $a$
# and reports $0.5$: the bug is obvious. As $\lambda$ grows, both sides are
# dominated by the correct term $2\lambda\,v^\top\theta$, while the
# difference between them stays the same (half the data term's directional
# derivative). The relative error therefore falls roughly like $1/\lambda$:
# about $10^{-2}$ at $\lambda = 100$, $10^{-4}$ at $10^4$, $10^{-6}$ at
# $10^6$, where it is close to "the gradient is right", although the data
# gradient, the part that trains the model, is only half what it should be.
# A relative error measures the error of the *sum*, so a large correct term
# hides a wrong small one. Remedy: check each term on its own, the data term
# with $\lambda = 0$ first, then the regulariser alone (and in general check
# the pieces of a loss separately, at a point where each matters).
#
# **Rubric (1 point).** Full point: the error decreases as $\lambda$ grows
# (roughly $\propto 1/\lambda$) with the reason (the correct regulariser
# gradient dominates both sides, the bug's absolute size does not change),
# *and* the remedy (check the data term alone, $\lambda = 0$). Half a point:
# two of these three.
# ### END SOLUTION

# %%
rng = np.random.default_rng(3)
X_data, y_data, theta = rng.standard_normal((20, 5)), rng.standard_normal(20), rng.standard_normal(5)
try:
    for lam in [0, 1, 100, 1e4, 1e6]:
        def loss_reg(t, lam=lam):
            return np.mean((X_data @ t - y_data) ** 2) + lam * t @ t

        def buggy_grad(t, lam=lam):  # the data part lacks the factor 2
            return X_data.T @ (X_data @ t - y_data) / len(y_data) + 2 * lam * t

        errors = [directional_check(loss_reg, buggy_grad, theta, rng=np.random.default_rng(s))
                  for s in range(3)]
        print(f"lambda = {lam:7g}: relative error {np.median(errors):.1e}")
except NotImplementedError:
    print("Finish Exercises 8 and 9 (relative_error, directional_check) to run this check.")

# %% [markdown]
# > **Common mistakes in gradient checking.**
# > * *Both values tiny* (around $10^{-10}$): round-off alone makes the
# >   relative error large for a correct gradient. Check at a scale where the
# >   derivatives are of order one (scale the loss up, or check the
# >   gradient of a single example instead of a mean over many).
# > * *A regulariser that swamps the data term*: check the data term alone
# >   ($\lambda = 0$) first, then the regulariser, then the sum.
# > * *Kinks* (ReLU, max, absolute value): a nudge that crosses the kink
# >   compares two different one-sided slopes. Check at points away from
# >   kinks, or treat an isolated failure near one with suspicion, not panic.
# > * *float32*, or a step $\varepsilon$ far from the bottom of the V.
#
# A directional check answers "is the gradient right?" with one number. When
# the answer is no, the next question is **where**: which entries are wrong.
# For that we compare individual coordinates, as in section 5, but only a
# few randomly chosen ones, so the cost stays two evaluations per checked
# entry instead of $2n$.
#
# ### Exercise 10 (2 points): checking a few coordinates
#
# Write `coordinate_check(f, grad_f, theta, k, eps=1e-6, rng=None)`. Draw
# $k$ *different* entries of `theta` at random from `rng` (all entries if
# $k$ is at least their number; `rng.choice(n, size, replace=False)` draws
# distinct flat positions and `np.unravel_index` turns a flat position into
# an index tuple). For each, compare that entry of the claimed gradient with
# the central difference along that coordinate, using the relative error of
# two numbers. Call `grad_f` once, and leave `theta` unchanged.

# %% solution="coordinate_check"
def coordinate_check(f, grad_f, theta, k, eps=1e-6, rng=None):
    """Check k randomly chosen entries of a claimed gradient.

    f: ndarray of theta's shape -> float; grad_f: ndarray -> ndarray of
    theta's shape (the claimed gradient); theta: ndarray, any shape; k: how
    many entries to check; eps: the step; rng: a np.random.Generator (None:
    a fresh np.random.default_rng()).
    Returns a tuple (indices, errors): indices is a list of min(k, theta.size)
    distinct index tuples of theta, drawn with rng; errors is a float ndarray
    of the same length, errors[m] the relative error (as in relative_error,
    for two numbers) between grad_f(theta)[indices[m]] and the central
    difference of f along that coordinate.
    """
    ### BEGIN SOLUTION
    rng = np.random.default_rng() if rng is None else rng
    theta = np.array(theta, dtype=np.float64)  # a copy: the caller's theta is never touched
    claimed = np.asarray(grad_f(theta.copy()), dtype=np.float64)
    flat = rng.choice(theta.size, size=min(k, theta.size), replace=False)
    indices = [tuple(int(i) for i in np.unravel_index(int(p), theta.shape)) for p in flat]
    errors = np.zeros(len(indices))
    for m, idx in enumerate(indices):
        step = np.zeros_like(theta)
        step[idx] = eps
        numeric = (f(theta + step) - f(theta - step)) / (2 * eps)
        errors[m] = abs(claimed[idx] - numeric) / max(abs(claimed[idx]), abs(numeric), 1e-12)
    return indices, errors
    ### END SOLUTION


# %% test="test_coordinate_check" points=2
with grading.exercise(10, "coordinate_check"):
    # L = t1^2 + 3 t2^2 at (2, 1) with the sign of the first entry wrong: (-4, 6) instead of (4, 6)
    L, theta = lambda t: t[0] ** 2 + 3 * t[1] ** 2, np.array([2.0, 1.0])
    indices, errors = coordinate_check(L, lambda t: np.array([-2 * t[0], 6 * t[1]]), theta, 5)
    found = {tuple(int(i) for i in idx): float(e) for idx, e in zip(indices, errors)}
    if sorted(found) != [(0,), (1,)]:
        raise grading.GradingError(f"coordinate_check(..., theta of shape (2,), k=5) returned the "
                                   f"indices {sorted(found)}; expected each of (0,) and (1,) once.")
    grading.assert_close([found[(0,)], found[(1,)]], [2.0, 0.0], rtol=1e-6, atol=1e-8,
                         name="the errors of entries (0,) and (1,) (rel(-4, 4) = 2, rel(6, 6) = 0)")
grading.passed("coordinate_check")
### BEGIN HIDDEN TESTS
_rng = np.random.default_rng()
for _shape in [(int(_rng.integers(3, 9)),), (3, 4), (2, 3, 2)]:
    _n = int(np.prod(_shape))
    _M = _rng.standard_normal((_n, _n))
    _f = lambda t: np.sum(np.sin(_M @ t.ravel())) + 0.5 * np.sum(t**2)  # noqa: E731
    _g = lambda t: ((_M.T @ np.cos(_M @ t.ravel())).reshape(t.shape) + t)  # noqa: E731
    _theta = _rng.uniform(-1, 1, _shape)
    _before = _theta.copy()
    _bad = tuple(int(i) for i in np.unravel_index(int(_rng.integers(_n)), _shape))

    def _g_bad(t, _bad=_bad, _g=_g):
        out = _g(t).copy()
        out[_bad] += 0.5 + abs(out[_bad])  # a clearly wrong entry
        return out

    _k = int(_rng.integers(2, _n))
    _idx, _err = coordinate_check(_f, _g_bad, _theta, _k)
    _idx = [tuple(int(i) for i in ix) for ix in _idx]
    if not np.array_equal(_theta, _before):
        raise grading.GradingError("coordinate_check changed its argument theta in place.")
    if len(_idx) != _k or len(set(_idx)) != _k:
        raise grading.GradingError(f"coordinate_check(..., k={_k}) for theta of shape {_shape} "
                                   f"returned {len(_idx)} indices, {len(set(_idx))} of them "
                                   f"different; expected {_k} different ones.")
    if any(len(ix) != len(_shape) or not all(0 <= i < s for i, s in zip(ix, _shape))
           for ix in _idx):
        raise grading.GradingError(f"coordinate_check returned indices {_idx} that are not "
                                   f"index tuples of an array of shape {_shape}.")
    _true, _wrong = _g(_theta), _g_bad(_theta)
    _err = np.asarray(_err, dtype=float)
    if _err.shape != (_k,):
        raise grading.GradingError(f"coordinate_check(..., k={_k}) should return {_k} errors "
                                   f"(an array of shape ({_k},)), got shape {_err.shape}.")
    for _m, _ix in enumerate(_idx):
        if _ix == _bad:
            grading.assert_close(_err[_m], abs(_wrong[_ix] - _true[_ix]) /
                                 max(abs(_wrong[_ix]), abs(_true[_ix])), rtol=1e-5,
                                 name=f"the error coordinate_check reports for the wrong entry "
                                      f"{_ix} (theta of shape {_shape})")
        elif abs(_true[_ix]) > 1e-3:
            grading.assert_less(_err[_m], 1e-5, name=f"the error coordinate_check reports for "
                                f"the correct entry {_ix} (theta of shape {_shape})")
    # k >= size: every entry once, and the wrong one is found
    _idx, _err = coordinate_check(_f, _g_bad, _theta, _n + 3)
    _idx = [tuple(int(i) for i in ix) for ix in _idx]
    if sorted(_idx) != sorted(np.ndindex(_shape)):
        raise grading.GradingError(f"coordinate_check with k = {_n + 3} >= theta.size = {_n} "
                                   "should check every entry exactly once.")
    if not float(np.asarray(_err)[_idx.index(_bad)]) > 0.1:
        raise grading.GradingError(f"coordinate_check did not flag the wrong entry {_bad}.")
    # the same seed gives the same entries, another seed (almost surely) others
    _seed = int(_rng.integers(1 << 30))
    _a = coordinate_check(_f, _g, _theta, 2, rng=np.random.default_rng(_seed))[0]
    _b = coordinate_check(_f, _g, _theta, 2, rng=np.random.default_rng(_seed))[0]
    if [tuple(int(i) for i in ix) for ix in _a] != [tuple(int(i) for i in ix) for ix in _b]:
        raise grading.GradingError("coordinate_check chose different entries for two generators "
                                   "with the same seed: draw the entries from `rng`.")
# both values zero: the floor keeps rel(0, 0) = 0
_idx, _err = coordinate_check(lambda t: 1.0, lambda t: np.zeros(3), np.zeros(3), 3)
grading.assert_close(np.asarray(_err, dtype=float), np.zeros(3), atol=1e-15,
                     name="coordinate_check of a constant f with a zero gradient (rel(0, 0) = 0)")
# small values: the error is relative (twice the gradient gives rel(2a, a) = 1/2 at any scale)
_idx, _err = coordinate_check(lambda t: 1e-3 * np.sum(t**2), lambda t: 4e-3 * t, np.ones(3), 3)
grading.assert_close(np.asarray(_err, dtype=float), np.full(3, 0.5), rtol=1e-6,
                     name="coordinate_check(1e-3 sum(t^2), 4e-3 t, ones(3), 3) (twice the "
                          "gradient: every relative error is 1/2, whatever the scale)")
# another eps is used
_idx, _err = coordinate_check(lambda t: np.sum(t**3), lambda t: 3 * t**2, np.ones(2), 2, eps=0.1)
grading.assert_close(np.asarray(_err, dtype=float), np.full(2, 0.01 / 3.01), rtol=1e-6,
                     name="coordinate_check(sum(t^3), 3 t^2, ones(2), 2, eps=0.1) (the central "
                          "difference of t^3 is 3 t^2 + eps^2)")
### END HIDDEN TESTS

# %% [markdown]
# ## 7. Symbolic differentiation and expression swell
#
# If finite differences are slow and approximate, why not differentiate the
# formula itself, as in a calculus class? The rules
#
# $$
# (f + g)' = f' + g', \qquad (f g)' = f' g + f g', \qquad
# \big(f(g(\theta))\big)' = f'(g(\theta))\, g'(\theta)
# $$
#
# give exact derivatives, and computer algebra systems apply them
# mechanically. The trouble is that the product rule copies its factors:
# applied blindly to a long expression, the derivative becomes much longer
# than the function (*expression swell*), and the same subexpressions are
# evaluated again and again (*wasted computation*).
#
# **An example.** Let $f(\theta) = \theta_1 \theta_2 \cdots \theta_n$. Each
# partial derivative is the product of all the *other* entries,
#
# $$
# \frac{\partial f}{\partial \theta_k} = \prod_{j \ne k} \theta_j .
# $$
#
# Computed one by one, that is a product of $n - 1$ numbers, $n - 2$
# multiplications, for each of the $n$ partials: **$n(n-2)$ multiplications**,
# even though the partials share almost all of their factors ($\theta_1
# \theta_2$ appears in $n - 2$ of them). For $n = 1000$ that is 998,000
# multiplications.
#
# Sharing the work fixes this. Let the **prefix** $p_k = \theta_1 \cdots
# \theta_{k-1}$ be the product of everything *before* $k$ (with $p_1 = 1$) and
# the **suffix** $s_k = \theta_{k+1} \cdots \theta_n$ the product of
# everything *after* $k$ (with $s_n = 1$). Then
#
# $$
# \frac{\partial f}{\partial \theta_k} = p_k\, s_k, \qquad
# p_{k+1} = p_k\, \theta_k, \qquad s_{k-1} = s_k\, \theta_k .
# $$
#
# One sweep from left to right computes all prefixes, one sweep from right to
# left all suffixes, and $n$ more multiplications combine them: about $3n$
# multiplications in total, **$O(n)$ instead of $O(n^2)$**.
#
# Why not simply $\partial f / \partial \theta_k = f(\theta) / \theta_k$?
# Because it divides by zero as soon as some $\theta_k = 0$, and at exactly
# such a point the derivative is perfectly well defined: for
# $\theta = (2, 3, 0, 5)$ the partials are $(0, 0, 30, 0)$.
#
# This is a first taste of **reverse mode**. Evaluating $f$ left to right
# produces the prefixes as intermediate values; the right-to-left sweep
# carries "how much does the output change if this intermediate value
# changes", which is exactly the suffix product; each partial combines a
# forward value with a backward one. Reverse-mode automatic differentiation
# (notebooks 03 and 04) organises this for any program, and gets every
# partial derivative for a small constant times the cost of evaluating $f$.
# The next cell shows the operation counts, and `autodiff_ref` computing the
# partials at $(2, 3, 0, 5)$ by exactly such a backward sweep.

# %%
print(f"{'n':>9} {'naive n(n-2)':>16} {'prefix/suffix 3(n-2)':>22}")
for n in [4, 10, 100, 1000, 10**6]:
    print(f"{n:9d} {n * (n - 2):16,d} {3 * (n - 2):22,d}")

x = ad.tensor([2.0, 3.0, 0.0, 5.0], requires_grad=True)
y = x[0] * x[1] * x[2] * x[3]
y.backward()
print("\nf(2, 3, 0, 5) =", y.item(), "  partials from autodiff_ref:", x.grad.numpy())

# %% [markdown]
# ### Exercise 11 (2 points): all partials of a product in $O(n)$
#
# Write `product_partials(theta)` with one left-to-right loop for the
# prefixes and one right-to-left loop for the suffixes. Do not divide (zeros
# in `theta` must work), and do not compute each partial from scratch.

# %% solution="product_partials" exact=true
def product_partials(theta):
    """All partial derivatives of f(theta) = theta[0] * theta[1] * ... * theta[n-1].

    theta: 1-D array of n numbers (n >= 1), zeros allowed.
    Returns a 1-D float array of length n whose entry k is the product of all
    entries except theta[k], computed with prefix and suffix products in O(n)
    and without division.
    """
    ### BEGIN SOLUTION
    theta = np.asarray(theta, dtype=np.float64)
    n = len(theta)
    prefix = np.ones(n)  # prefix[k] = theta[0] * ... * theta[k-1]
    suffix = np.ones(n)  # suffix[k] = theta[k+1] * ... * theta[n-1]
    for k in range(1, n):
        prefix[k] = prefix[k - 1] * theta[k - 1]
    for k in range(n - 2, -1, -1):
        suffix[k] = suffix[k + 1] * theta[k + 1]
    return prefix * suffix
    ### END SOLUTION


# %% test="test_product_partials" points=2
with grading.exercise(11, "product_partials"):
    grading.assert_close(product_partials(np.array([2.0, 3.0, 4.0])), np.array([12.0, 8.0, 6.0]),
                         name="product_partials([2.0, 3.0, 4.0])")
    grading.assert_close(product_partials(np.array([2.0, 3.0, 0.0, 5.0])),
                         np.array([0.0, 0.0, 30.0, 0.0]),
                         name="product_partials([2.0, 3.0, 0.0, 5.0]) (one zero)")
grading.passed("product_partials")
### BEGIN HIDDEN TESTS
_rng = np.random.default_rng()


def _direct(theta):  # each partial as its own product: slow but obviously right
    return np.array([np.prod(np.delete(theta, k)) for k in range(len(theta))])


for _ in range(3):
    _n = int(_rng.integers(2, 16))
    _theta = _rng.uniform(0.5, 1.5, _n) * _rng.choice([-1.0, 1.0], _n)
    _before = _theta.copy()
    grading.assert_close(product_partials(_theta), _direct(_theta), rtol=1e-12, atol=1e-12,
                         name=f"product_partials of {_n} random numbers")
    if not np.array_equal(_theta, _before):
        raise grading.GradingError("product_partials changed its argument theta in place.")
    # one zero at a random place: only that partial is nonzero
    _z = _theta.copy()
    _z[_rng.integers(_n)] = 0.0
    grading.assert_close(product_partials(_z), _direct(_z), rtol=1e-12, atol=1e-12,
                         name=f"product_partials of {_n} numbers with one zero at index "
                              f"{int(np.argmin(np.abs(_z)))} (no division allowed)")
    # two zeros: every partial is zero
    _n2 = max(_n, 3)
    _z2 = _rng.uniform(0.5, 1.5, _n2)
    _z2[_rng.choice(_n2, 2, replace=False)] = 0.0
    grading.assert_close(product_partials(_z2), np.zeros(_n2), atol=1e-15,
                         name=f"product_partials of {_n2} numbers with two zeros (all partials "
                              "are 0; no division allowed)")
# a single number: d theta_1 / d theta_1 = 1
grading.assert_close(product_partials(np.array([_rng.uniform(-3, 3)])), np.ones(1),
                     name="product_partials of one number (the derivative of theta_1 is 1)")
# against the reference engine
_theta = _rng.uniform(-1.5, 1.5, int(_rng.integers(5, 12)))
_x = ad.tensor(_theta.copy(), requires_grad=True)
_y = _x[0]
for _k in range(1, len(_theta)):
    _y = _y * _x[_k]
_y.backward()
grading.assert_close(product_partials(_theta), _x.grad.numpy(), rtol=1e-12, atol=1e-12,
                     name=f"product_partials of {len(_theta)} random numbers vs autodiff_ref")
### END HIDDEN TESTS

# %% [markdown]
# ## Summary
#
# * The derivative is the slope of the best local linear approximation,
#   $f(x+h) \approx f(x) + f'(x)h$; the gradient collects the partial
#   derivatives, points in the direction of steepest ascent, and gradient
#   descent steps against it: $\theta \leftarrow \theta - \eta\nabla L$.
# * Finite differences estimate derivatives from function values: the
#   forward difference has error $O(\varepsilon)$, the central difference
#   $O(\varepsilon^2)$ (Taylor: the even terms cancel), and Richardson
#   extrapolation cancels further error terms by combining several steps.
# * In floating point, round-off error $\approx \varepsilon_{\text{mach}}|f|/\varepsilon$
#   grows as $\varepsilon$ shrinks: the error-vs-$\varepsilon$ curve is a V
#   whose bottom, where the two errors balance, is at
#   $\varepsilon^* \propto \varepsilon_{\text{mach}}^{1/(p+1)}$ for a method of order $p$.
#   Central differences with $\varepsilon \approx 10^{-6}$ in float64 reach
#   about $10^{-10}$; float32 is too coarse for checking.
# * A numerical gradient costs $2n$ evaluations of $f$: fine for testing,
#   hopeless for training a model with millions of parameters.
# * A gradient check compares $v^\top g(\theta)$ with a central
#   difference along a random unit direction $v$, using the relative
#   error; two evaluations of $f$ test every component at once. A few random
#   coordinates then locate a bug. Tiny values and a dominant correct term
#   (a regulariser) can fool a check: check the pieces of a loss separately.
# * Differentiating formulas mechanically repeats work ($n(n-2)$
#   multiplications for the partials of a product); reusing intermediate
#   results in a forward and a backward sweep needs only $O(n)$. That is the
#   idea of reverse-mode automatic differentiation, which the next notebooks
#   build: first Jacobians and shapes (02), then the chain rule on
#   computational graphs (03) and the backward algorithm (04).
