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
# (Shift-Enter). There are six exercises (9 points). In each one, replace
# `raise NotImplementedError()` with your code, then run the test cell right
# below it. The visible tests use the numbers from the text; when the
# notebook is graded, further hidden tests run your function on fresh random
# inputs. A failing test tells you in words what is wrong (wrong sign, off by
# a factor of 2, wrong shape, ...). Every other cell runs without your code.

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

# %%
def loss(t):
    return t[0] ** 2 + 3 * t[1] ** 2


def loss_grad(t):
    return np.array([2 * t[0], 6 * t[1]])


def descend(eta, steps=15):
    path = [np.array([2.0, 1.0])]
    for _ in range(steps):
        path.append(path[-1] - eta * loss_grad(path[-1]))
    return np.array(path)


for k, t in enumerate(descend(0.1, steps=2)):
    print(f"step {k}: theta = {t}, L = {loss(t):.4f}, grad = {loss_grad(t)}")

g1, g2 = np.meshgrid(np.linspace(-2.5, 2.5, 101), np.linspace(-1.8, 1.8, 101))
fig, axes = plt.subplots(1, 2, figsize=(11, 3.8))
for ax, eta in zip(axes, [0.1, 0.35]):
    path = descend(eta, steps=15 if eta < 1 / 3 else 6)
    ax.contour(g1, g2, g1**2 + 3 * g2**2, levels=[0.25, 1, 2, 4, 7, 10], colors="0.7")
    ax.plot(path[:, 0], path[:, 1], "o-", ms=3)
    ax.set_title(f"eta = {eta}: L goes from 7 to {loss(path[-1]):.3g}")
    ax.set_xlabel(r"$\theta_1$")
    ax.set_ylabel(r"$\theta_2$")
    ax.set_aspect("equal")
plt.show()

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
# Subtracting cancels every even power, the $f''$ term included:
#
# $$
# \frac{f(x+\varepsilon) - f(x-\varepsilon)}{2\varepsilon}
# = f'(x) + \underbrace{\tfrac16 f'''(x)\,\varepsilon^2}_{\text{error}} + O(\varepsilon^4).
# $$
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
# ### Exercise 1 (1 point): the forward difference
#
# Write `forward_difference(f, x, eps)`. It should work for a float `x` and,
# without any extra effort, for a NumPy array `x` of points (then `f` is
# applied element by element, like `np.sin`).

# %% solution="forward_difference"
def forward_difference(f, x, eps):
    """Forward-difference estimate of f'(x).

    f: a function of one variable; x: a float (or an array of points);
    eps: the step, a small positive float.
    Returns (f(x + eps) - f(x)) / eps: a float (an array of x's shape if x
    is an array).
    """
    ### BEGIN SOLUTION
    return (f(x + eps) - f(x)) / eps
    ### END SOLUTION


# %% test="test_forward_difference" points=1
# sin at x = 1 with eps = 1e-4: close to cos(1) ...
grading.assert_close(forward_difference(np.sin, 1.0, 1e-4), np.cos(1.0),
                     name="forward_difference(np.sin, 1.0, 1e-4)", rtol=0, atol=1e-4)
# ... with an error that is the Taylor term f''(1) eps / 2 = -sin(1) eps / 2:
# about -4.207e-4 for eps = 1e-3 and -4.207e-5 for eps = 1e-4
steps = np.array([1e-3, 1e-4])
errors = np.array([forward_difference(np.sin, 1.0, eps) for eps in steps]) - np.cos(1.0)
grading.assert_close(errors, -np.sin(1.0) * steps / 2, rtol=1e-3, atol=0,
                     name="the errors forward_difference(np.sin, 1.0, eps) - cos(1.0) for "
                          "eps = 1e-3, 1e-4 (Taylor: -sin(1) eps / 2)")
# a straight line has no curvature: the forward difference is exact
grading.assert_close(forward_difference(lambda x: 3 * x + 2, -1.5, 1e-3), 3.0,
                     name="forward_difference(lambda x: 3*x + 2, -1.5, 1e-3)", rtol=1e-9)
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
# ### Exercise 2 (1 point): the central difference
#
# Write `central_difference(f, x, eps)`, the symmetric estimate with error
# $O(\varepsilon^2)$.

# %% solution="central_difference"
def central_difference(f, x, eps):
    """Central-difference estimate of f'(x).

    f: a function of one variable; x: a float (or an array of points);
    eps: the step, a small positive float.
    Returns (f(x + eps) - f(x - eps)) / (2 * eps): a float (an array of x's
    shape if x is an array).
    """
    ### BEGIN SOLUTION
    return (f(x + eps) - f(x - eps)) / (2 * eps)
    ### END SOLUTION


# %% test="test_central_difference" points=1
# sin at x = 1: with eps = 1e-5 the estimate agrees with cos(1) to about 1e-11
grading.assert_close(central_difference(np.sin, 1.0, 1e-5), np.cos(1.0),
                     name="central_difference(np.sin, 1.0, 1e-5)", rtol=1e-8)
# with a larger eps the error is the Taylor term f'''(1) eps^2 / 6 = -cos(1) eps^2 / 6:
# about -9.005e-6 for eps = 1e-2 and -9.005e-8 for eps = 1e-3
steps = np.array([1e-2, 1e-3])
errors = np.array([central_difference(np.sin, 1.0, eps) for eps in steps]) - np.cos(1.0)
grading.assert_close(errors, -np.cos(1.0) * steps**2 / 6, rtol=1e-3, atol=0,
                     name="the errors central_difference(np.sin, 1.0, eps) - cos(1.0) for "
                          "eps = 1e-2, 1e-3 (Taylor: -cos(1) eps^2 / 6)")
# a parabola has f''' = 0: the central difference is exact even with a big step
grading.assert_close(central_difference(lambda x: x**2 - 4 * x, 3.0, 0.5), 2.0,
                     name="central_difference(lambda x: x**2 - 4*x, 3.0, 0.5)", rtol=1e-12)
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
# log-log plot both parts are straight lines (slopes $+1$ or $+2$ on the right,
# $-1$ on the left), and their sum is a **V**. The bottom of the V is where the
# two parts balance: for the forward difference near
# $\varepsilon \approx \sqrt{\varepsilon_{\text{mach}}} \approx 10^{-8}$, with
# a best error of $10^{-9}$ to $10^{-8}$; for the central difference near
# $\varepsilon \approx \varepsilon_{\text{mach}}^{1/3} \approx 6\times10^{-6}$,
# with a best error around $10^{-11}$ (a lucky $\varepsilon$ can do better). To the left of
# $\varepsilon_{\text{mach}}$ itself, $1 + \varepsilon$ rounds to $1$, both
# function values are the same number, and the estimate is $0$.
#
# The next cell measures the real errors for $\sin$ at $x = 1$.

# %%
x0 = 1.0
eps_grid = np.logspace(-17, 0, 171)
exact = np.cos(x0)
err_forward = np.abs((np.sin(x0 + eps_grid) - np.sin(x0)) / eps_grid - exact)
err_central = np.abs((np.sin(x0 + eps_grid) - np.sin(x0 - eps_grid)) / (2 * eps_grid) - exact)
machine_eps = np.finfo(np.float64).eps

fig, ax = plt.subplots(figsize=(7, 4.5))
ax.loglog(eps_grid, np.maximum(err_forward, 1e-17), color="C1", label="forward difference")
ax.loglog(eps_grid, np.maximum(err_central, 1e-17), color="C2", label="central difference")
ax.loglog(eps_grid, 0.5 * np.sin(x0) * eps_grid, "k:", lw=1, label=r"$\frac{1}{2}|f''|\,\varepsilon$")
ax.loglog(eps_grid, np.cos(x0) / 6 * eps_grid**2, "k--", lw=1,
          label=r"$\frac{1}{6}|f'''|\,\varepsilon^2$")
ax.loglog(eps_grid, machine_eps * np.sin(x0) / eps_grid, "k-.", lw=1,
          label=r"$\varepsilon_{mach}|f|/\varepsilon$")
ax.axvline(machine_eps, color="r", lw=1)
ax.text(machine_eps * 1.5, 1e-13, r"machine epsilon $2.2\cdot10^{-16}$", color="r")
ax.set_ylim(1e-14, 10)
ax.set_xlabel(r"step $\varepsilon$")
ax.set_ylabel(r"|estimate $-$ $\cos 1$|")
ax.set_title(r"Error of finite differences for $\sin'(1)$ in float64")
ax.legend(loc="upper center", fontsize=8)
plt.show()
for name, err in [("forward", err_forward), ("central", err_central)]:
    k = np.argmin(err)
    print(f"{name:8s}: smallest error {err[k]:.1e} at eps = {eps_grid[k]:.1e}")

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
    right.legend(loc="lower left", fontsize=8)
    right.set_title(f"error: forward {e_fwd:.1e}, central {e_cen:.1e}")
    plt.show()


explorer = widgets.interactive(
    show_secants,
    eps=widgets.FloatLogSlider(value=1e-2, base=10, min=-16, max=0, step=0.25,
                               description="ε", readout_format=".1e"),
    function=widgets.Dropdown(options=list(FUNCTIONS), description="f"),
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
# ### Exercise 3 (2 points): the numerical gradient
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
    Returns an ndarray of theta's shape whose entry at index i is
    (f(theta + eps e_i) - f(theta - eps e_i)) / (2 eps). theta is left
    unchanged.
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
# The loss of section 2, L = theta1^2 + 3 theta2^2 at (2, 1): the gradient is (4, 6).
theta = np.array([2.0, 1.0])
L = lambda t: t[0] ** 2 + 3 * t[1] ** 2
grading.assert_close(numerical_gradient(L, theta, eps=1e-3), np.array([4.0, 6.0]),
                     name="numerical_gradient(L, [2.0, 1.0], eps=1e-3) for L = t1^2 + 3 t2^2",
                     rtol=1e-9)
if not np.allclose(theta, [2.0, 1.0], rtol=1e-12, atol=1e-12):
    raise grading.GradingError(f"numerical_gradient changed its argument theta to {theta}: "
                               "nudge a copy, or restore each entry after nudging it.")
# A matrix argument: the gradient of sum(sin(theta)) is cos(theta), of shape (2, 3).
theta = np.arange(6.0).reshape(2, 3) / 4
grading.assert_close(numerical_gradient(lambda t: np.sum(np.sin(t)), theta), np.cos(theta),
                     name="numerical_gradient(sum(sin(theta)), theta of shape (2, 3))",
                     rtol=1e-7, atol=1e-9)
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

# %% [markdown]
# ## 6. Gradient checking
#
# To check a claimed gradient $g(\theta) \approx \nabla f(\theta)$ we do not
# need all $2n$ evaluations. Pick a **random direction** $\delta$ (a unit
# vector of $\theta$'s shape) and compare the derivative of $f$ along
# $\delta$, computed two ways:
#
# $$
# \underbrace{\delta^\top g(\theta)}_{\text{analytic}}
# \quad\text{vs}\quad
# \underbrace{\frac{f(\theta+\varepsilon\delta) - f(\theta-\varepsilon\delta)}{2\varepsilon}}_{\text{numeric}}
# \;=\; \delta^\top \nabla f(\theta) + O(\varepsilon^2).
# $$
#
# This is the central difference of the one-variable function
# $s \mapsto f(\theta + s\,\delta)$ at $s = 0$, whose derivative is
# $\delta^\top \nabla f(\theta)$ by the chain rule. It costs two evaluations
# of $f$ whatever $n$ is. If $g$ is wrong, say $g = \nabla f + e$ with an
# error vector $e \ne 0$, the two sides differ by $\delta^\top e$, which is
# zero only if $\delta$ happens to be exactly orthogonal to $e$: for a random
# $\delta$ that has probability zero. Repeat with a few directions to be safe.
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
# ### Exercise 4 (1 point): relative error

# %% solution="relative_error"
def relative_error(a, b):
    """Relative error between two numbers or two arrays of the same shape.

    Returns ||a - b|| / max(||a||, ||b||, 1e-12) as a float, where ||.|| is
    the Euclidean norm over all entries (the Frobenius norm for matrices).
    """
    ### BEGIN SOLUTION
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    # without ord or axis, np.linalg.norm is the Euclidean norm of all entries
    return float(np.linalg.norm(a - b) / max(np.linalg.norm(a), np.linalg.norm(b), 1e-12))
    ### END SOLUTION


# %% test="test_relative_error" points=1
r = relative_error(np.array([3.0, 4.0]), np.array([3.0, 4.5]))
if np.ndim(r) != 0:
    raise grading.GradingError(f"relative_error of two vectors should be one number, got an "
                               f"array of shape {np.shape(r)}: take norms over all entries.")
grading.assert_close(r, 0.5 / np.sqrt(3.0**2 + 4.5**2), rtol=1e-9,
                     name="relative_error([3.0, 4.0], [3.0, 4.5])")
grading.assert_close(relative_error(1.0, 1.1), 0.1 / 1.1, name="relative_error(1.0, 1.1)",
                     rtol=1e-9)
grading.assert_close(relative_error(2.0, 1.0), 0.5, rtol=1e-9,
                     name="relative_error(2.0, 1.0) (divide by the larger of the two norms)")
grading.assert_close(relative_error(np.array([3.0, 4.0]), np.array([3.0, 4.0])), 0.0,
                     name="relative_error of two equal vectors", atol=1e-15)
grading.assert_close(relative_error(np.zeros(3), np.zeros(3)), 0.0, atol=1e-15,
                     name="relative_error(np.zeros(3), np.zeros(3)) (must not divide 0 by 0)")
# matrices: Frobenius norms, ||a - b|| = 1 and max(||a||, ||b||) = sqrt(2)
grading.assert_close(relative_error(np.eye(2), np.array([[1.0, 0.0], [0.0, 0.0]])),
                     1 / np.sqrt(2), rtol=1e-9,
                     name="relative_error(np.eye(2), [[1, 0], [0, 0]]) (Frobenius norms)")
### BEGIN HIDDEN TESTS
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
# ### Exercise 5 (2 points): a directional gradient check
#
# Write `directional_check(f, grad_f, theta, eps=1e-6, rng=None)`. Draw a
# random direction $\delta$ of `theta`'s shape from the generator `rng` (for
# instance with `rng.standard_normal(theta.shape)`) and divide it by its norm;
# compute the analytic side $\delta^\top g(\theta)$ (for arrays: the sum of
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
    Returns the relative error (a float) between delta . grad_f(theta) and
    (f(theta + eps delta) - f(theta - eps delta)) / (2 eps).
    """
    ### BEGIN SOLUTION
    rng = np.random.default_rng() if rng is None else rng
    theta = np.asarray(theta, dtype=np.float64)
    delta = rng.standard_normal(theta.shape)
    delta /= np.linalg.norm(delta)
    analytic = np.sum(delta * grad_f(theta))
    numeric = (f(theta + eps * delta) - f(theta - eps * delta)) / (2 * eps)
    return relative_error(analytic, numeric)
    ### END SOLUTION


# %% test="test_directional_check" points=2
# The loss of section 2 at (2, 1) with its true gradient, then two wrong ones.
L = lambda t: t[0] ** 2 + 3 * t[1] ** 2
grad_L = lambda t: np.array([2 * t[0], 6 * t[1]])
theta = np.array([2.0, 1.0])
errors = [directional_check(L, grad_L, theta, rng=np.random.default_rng(seed))
          for seed in range(3)]
if not all(e is not None and np.ndim(e) == 0 for e in errors):
    raise grading.GradingError(f"directional_check should return one number (the relative "
                               f"error), got {errors[0]!r}. Did you forget `return`?")
if not np.median(errors) < 1e-6:
    raise grading.GradingError(
        f"directional_check(L, grad_L, [2.0, 1.0]) returned "
        f"{', '.join(f'{e:.3g}' for e in errors)} for the correct gradient "
        "of L = t1^2 + 3 t2^2; expected values below 1e-6. Check both sides: "
        "delta . grad_f(theta) and (f(theta + eps delta) - f(theta - eps delta)) / (2 eps), "
        "with delta of norm 1.")
# twice the gradient: the analytic side is 2a, the numeric side a, rel(2a, a) = 1/2
grading.assert_close(
    directional_check(L, lambda t: 2 * grad_L(t), theta, rng=np.random.default_rng(0)), 0.5,
    name="directional_check(L, 2 * grad_L, [2.0, 1.0]) (rel(2a, a) = 1/2)", rtol=1e-4)
# minus the gradient: rel(-a, a) = 2
grading.assert_close(
    directional_check(L, lambda t: -grad_L(t), theta, rng=np.random.default_rng(0)), 2.0,
    name="directional_check(L, -grad_L, [2.0, 1.0]) (rel(-a, a) = 2)", rtol=1e-4)
# a gradient with one wrong entry: the result depends on delta, which comes from rng
bad_L = lambda t: np.array([-2 * t[0], 6 * t[1]])
same = [directional_check(L, bad_L, theta, rng=np.random.default_rng(7)) for _ in range(2)]
other = directional_check(L, bad_L, theta, rng=np.random.default_rng(8))
if same[0] != same[1] or other == same[0]:
    raise grading.GradingError(
        f"directional_check with a wrong gradient gave {same[0]:.6g} and {same[1]:.6g} for two "
        f"generators with seed 7 and {other:.6g} with seed 8: draw the direction delta from the generator `rng` (the "
        "same seed must give the same delta, another seed another delta).")
### BEGIN HIDDEN TESTS
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
                                   "generators with the same seed: draw delta from `rng`.")
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
delta = rng.standard_normal(10)
delta /= np.linalg.norm(delta)
exact = delta @ (np.sin(theta) + theta * np.cos(theta))  # the true directional derivative

print(f"{'eps':>8} {'rel. error float32':>19} {'rel. error float64':>19}")
for eps in [1e-1, 1e-2, 1e-3, 1e-4, 1e-5, 1e-6, 1e-7]:
    row = []
    for dtype in (np.float32, np.float64):
        t, d, e = theta.astype(dtype), delta.astype(dtype), dtype(eps)
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
# ### Exercise 6 (2 points): all partials of a product in $O(n)$
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
grading.assert_close(product_partials(np.array([2.0, 3.0, 4.0])), np.array([12.0, 8.0, 6.0]),
                     name="product_partials([2.0, 3.0, 4.0])")
grading.assert_close(product_partials(np.array([2.0, 3.0, 0.0, 5.0])),
                     np.array([0.0, 0.0, 30.0, 0.0]),
                     name="product_partials([2.0, 3.0, 0.0, 5.0]) (one zero)")
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
#   $O(\varepsilon^2)$ (Taylor: the even terms cancel).
# * In floating point, round-off error $\approx \varepsilon_{\text{mach}}|f|/\varepsilon$
#   grows as $\varepsilon$ shrinks: the error-vs-$\varepsilon$ curve is a V.
#   Central differences with $\varepsilon \approx 10^{-6}$ in float64 reach
#   about $10^{-10}$; float32 is too coarse for checking.
# * A numerical gradient costs $2n$ evaluations of $f$: fine for testing,
#   hopeless for training a model with millions of parameters.
# * A gradient check compares $\delta^\top g(\theta)$ with a central
#   difference along a random unit direction $\delta$, using the relative
#   error; two evaluations of $f$ test every component at once.
# * Differentiating formulas mechanically repeats work ($n(n-2)$
#   multiplications for the partials of a product); reusing intermediate
#   results in a forward and a backward sweep needs only $O(n)$. That is the
#   idea of reverse-mode automatic differentiation, which the next notebooks
#   build: first Jacobians and shapes (02), then the chain rule on
#   computational graphs (03) and the backward algorithm (04).
