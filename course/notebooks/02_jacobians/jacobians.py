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
# # 02 · Jacobians and shapes
#
# Notebook 01 was about functions with one output: a loss $L(\theta)$ and its
# gradient. A network, however, is built from pieces that turn vectors into
# vectors and matrices into matrices: a linear layer maps a batch of inputs to
# a batch of outputs, an activation function acts on every entry, softmax
# turns scores into probabilities. The derivative of such a piece is not a
# number and not a gradient but a whole table of partial derivatives, the
# **Jacobian**. And because every piece has its own shapes, most bugs in
# hand-written derivatives are shape bugs: a missing transpose, a row where a
# column was meant, an axis in the wrong place.
#
# This notebook is about getting those shapes right:
#
# 1. the Jacobian of $f:\mathbb{R}^n\to\mathbb{R}^m$ is an $m\times n$ matrix,
#    and the two conventions (layouts) for writing it;
# 2. a scalar output gives a *row*, $\partial L/\partial y$, while optimisers
#    use the *column* $\nabla_y L$; the chain rule multiplies Jacobians;
# 3. Jacobians of the building blocks: a linear map (with respect to the
#    input *and* the matrix), element-wise functions, softmax;
# 4. the derivative of a matrix with respect to a matrix, $K = R^\top R$,
#    which is a 4-D array;
# 5. why no framework ever builds a Jacobian (for a single linear layer it
#    would fill hundreds of gigabytes), and how to predict the shape of every
#    derivative you meet.
#
# **How this notebook works.** Read from top to bottom and run each cell
# (Shift-Enter). There are ten autograded exercises (20 points) and one
# written answer (1 point, graded by hand). In each exercise, replace
# `raise NotImplementedError()` with your code, then run the test cell right
# below it. The visible tests use the numbers from the text; when the
# notebook is graded, hidden tests run your function on fresh random inputs
# and compare it with the reference engine `autodiff_ref` (imported as `ad`)
# and with finite differences. A failing test tells you in words what is
# wrong (wrong shape, transposed, off by a factor of 2, ...); a passing one
# prints a line starting with ✓. Every other cell runs without your code.
# The exercises that ask for a Jacobian "from a formula" are graded with
# tight tolerances, so a finite-difference answer will not pass there. The
# written answer is a prediction: write it *before* you run the cells below
# it.
#
# **Run All stops at the first unfinished exercise**: its test cell raises an
# error, and Jupyter stops there. Either work through the exercises in order,
# or run cells one at a time (Shift-Enter), or use *Run → Run All Above
# Selected Cell* to catch up to where you are.
#
# Symbols and conventions (numerator layout, the shape of a gradient, JVP
# and VJP) are collected on the [notation card](../notation.md). Below,
# $[P]$ is $1$ if the statement $P$ holds and $0$ otherwise, e.g.
# $[i = j]$ is $1$ on the diagonal and $0$ off it.

# %%
# %matplotlib inline
import time

import numpy as np
import matplotlib.pyplot as plt
import ipywidgets as widgets
import autodiff_ref as ad
from autodiff_ref import grading

# %% [markdown]
# ## 1. The Jacobian matrix
#
# Let $f:\mathbb{R}^n \to \mathbb{R}^m$ take a column vector
# $x = (x_1, \dots, x_n)^\top$ to a column vector
# $f(x) = (f_1(x), \dots, f_m(x))^\top$. Each output $f_i$ is a scalar
# function of $n$ variables, so it has $n$ partial derivatives; all together
# there are $m \cdot n$ of them. The **Jacobian** arranges them in an
# $m \times n$ matrix, one row per output and one column per input:
#
# $$
# J = \frac{\partial f}{\partial x} =
# \begin{bmatrix}
# \dfrac{\partial f_1}{\partial x_1} & \cdots & \dfrac{\partial f_1}{\partial x_n}\\
# \vdots & \ddots & \vdots\\
# \dfrac{\partial f_m}{\partial x_1} & \cdots & \dfrac{\partial f_m}{\partial x_n}
# \end{bmatrix} \in \mathbb{R}^{m\times n},
# \qquad J[i, j] = \frac{\partial f_i}{\partial x_j}.
# $$
#
# Read it two ways. **Row $i$** is the derivative of the single output $f_i$
# with respect to all inputs. **Column $j$** says how every output responds
# when only $x_j$ moves. The Jacobian plays the role $f'(x)$ played in
# notebook 01, the best linear approximation near $x$:
#
# $$
# f(x + h) \;\approx\; f(x) + J\,h, \qquad
# \underbrace{h}_{n\times 1} \mapsto \underbrace{J h}_{m \times 1}.
# $$
#
# The shapes already tell you the layout: $J$ must eat an $n$-vector (a
# change of the input) and produce an $m$-vector (a change of the output), so
# it is $m \times n$.
#
# **Worked example.** $f(x_1, x_2) = \big(x_1 x_2,\; x_1 + x_2^2,\; \sin x_1\big)$
# maps $\mathbb{R}^2 \to \mathbb{R}^3$, so its Jacobian is $3 \times 2$:
#
# $$
# J(x) = \begin{bmatrix} x_2 & x_1 \\ 1 & 2x_2 \\ \cos x_1 & 0 \end{bmatrix},
# \qquad
# f(2, 3) = \begin{bmatrix} 6 \\ 11 \\ 0.909297 \end{bmatrix},
# \qquad
# J(2, 3) = \begin{bmatrix} 3 & 2 \\ 1 & 6 \\ -0.416147 & 0 \end{bmatrix}.
# $$
#
# With the small step $h = (0.01, -0.02)$ the linear approximation predicts
# $f(2,3) + Jh = (5.99,\ 10.89,\ 0.905136)$, and the true value is
# $f(2.01, 2.98) = (5.9898,\ 10.8904,\ 0.905091)$: the error,
# $(-2\times10^{-4},\ 4\times10^{-4},\ -4.5\times10^{-5})$, is of order
# $\|h\|^2$, just as in one variable.
#
# The reference engine computes Jacobians with `ad.functional.jacobian`
# (like `torch.autograd.functional.jacobian`): the next cell checks the
# numbers above and draws $J$ as a heat-map, the picture we will use for
# every Jacobian in this notebook.

# %%
def f_example(x):
    """The worked example R^2 -> R^3, written for NumPy arrays."""
    return np.array([x[0] * x[1], x[0] + x[1] ** 2, np.sin(x[0])])


def f_example_ad(x):
    """The same function for autodiff_ref tensors (output k is placed with a basis vector)."""
    e = np.eye(3)
    return x[0] * x[1] * e[0] + (x[0] + x[1] ** 2) * e[1] + ad.sin(x[0]) * e[2]


x0 = np.array([2.0, 3.0])
J0 = ad.functional.jacobian(f_example_ad, ad.tensor(x0)).numpy()
J0_by_hand = np.array([[3.0, 2.0], [1.0, 6.0], [np.cos(2.0), 0.0]])
assert J0.shape == (3, 2) and np.allclose(J0, J0_by_hand)
print("f(2, 3) =", f_example(x0))
print("J(2, 3) =\n", J0)

h = np.array([0.01, -0.02])
print("f(x + h)     =", f_example(x0 + h))
print("f(x) + J h   =", f_example(x0) + J0 @ h)
print("error        =", f_example(x0 + h) - f_example(x0) - J0 @ h)

fig, ax = plt.subplots(figsize=(3.2, 3.6))
ax.imshow(J0, cmap="RdBu_r", vmin=-6, vmax=6)
for (i, j), v in np.ndenumerate(J0):
    ax.text(j, i, f"{v:.3g}", ha="center", va="center", color="w" if abs(v) > 4 else "k")
ax.set_xticks([0, 1], [r"$x_1$", r"$x_2$"])
ax.set_yticks([0, 1, 2], [r"$f_1$", r"$f_2$", r"$f_3$"])
ax.set_xlabel("input (column j)")
ax.set_ylabel("output (row i)")
ax.set_title("J(2, 3): 3 outputs x 2 inputs")
plt.show()

# %% [markdown]
# ### Exercise 1 (2 points): a Jacobian by hand
#
# Spherical coordinates describe a point of space by its distance $r$ from
# the origin, its angle $\theta$ from the $z$-axis and its angle $\phi$
# around the $z$-axis:
#
# $$
# (x, y, z) = \big(r \sin\theta \cos\phi,\;\; r \sin\theta \sin\phi,\;\; r\cos\theta\big).
# $$
#
# This maps $\mathbb{R}^3 \to \mathbb{R}^3$, so the Jacobian is $3\times 3$.
# Derive its nine entries: for row $i$ take output $i$ ($x$, $y$ or $z$),
# for column $j$ differentiate with respect to input $j$ ($r$, $\theta$ or
# $\phi$) holding the other two fixed. Then write
# `spherical_jacobian(r, theta, phi)`. A check for your algebra: the
# determinant of this Jacobian is $r^2\sin\theta$ (the factor in the volume
# element $dV = r^2 \sin\theta\, dr\, d\theta\, d\phi$ of calculus).

# %% solution="spherical_jacobian" exact=true
def spherical_jacobian(r, theta, phi):
    """Jacobian of (r, theta, phi) -> (x, y, z), spherical to Cartesian coordinates.

    r, theta, phi: floats (theta measured from the z-axis, phi around it).
    Returns an ndarray of shape (3, 3) in numerator layout: row i is output i
    (x, y, z), column j is input j (r, theta, phi).
    """
    ### BEGIN SOLUTION
    st, ct, sp, cp = np.sin(theta), np.cos(theta), np.sin(phi), np.cos(phi)
    return np.array([[st * cp, r * ct * cp, -r * st * sp],
                     [st * sp, r * ct * sp, r * st * cp],
                     [ct, -r * st, 0.0]])
    ### END SOLUTION


# %% test="test_spherical_jacobian" points=2
def _to_cartesian(v):  # (r, theta, phi) -> (x, y, z) for autodiff_ref tensors
    e = np.eye(3)
    return (v[0] * ad.sin(v[1]) * ad.cos(v[2]) * e[0] + v[0] * ad.sin(v[1]) * ad.sin(v[2]) * e[1]
            + v[0] * ad.cos(v[1]) * e[2])


with grading.exercise(1, "spherical_jacobian"):
    J = spherical_jacobian(2.0, np.pi / 3, np.pi / 4)
    grading.assert_close(J, ad.functional.jacobian(_to_cartesian, ad.tensor([2.0, np.pi / 3, np.pi / 4])),
                         rtol=1e-12, atol=1e-14,
                         name="spherical_jacobian(2.0, pi/3, pi/4) vs autodiff_ref")
grading.passed("spherical_jacobian")
### BEGIN HIDDEN TESTS
_rng = np.random.default_rng()
for _ in range(4):
    _r, _t, _p = _rng.uniform(0.2, 3), _rng.uniform(0, np.pi), _rng.uniform(-np.pi, np.pi)
    _J = np.asarray(spherical_jacobian(_r, _t, _p), dtype=float)
    grading.assert_close(_J, ad.functional.jacobian(_to_cartesian, ad.tensor([_r, _t, _p])),
                         rtol=1e-12, atol=1e-14,
                         name=f"spherical_jacobian({_r:.3f}, {_t:.3f}, {_p:.3f}) vs autodiff_ref")
    grading.assert_close(np.linalg.det(_J), _r**2 * np.sin(_t), rtol=1e-9, atol=1e-12,
                         name=f"det(spherical_jacobian({_r:.3f}, {_t:.3f}, {_p:.3f})) (r^2 sin theta)")
### END HIDDEN TESTS


# %% [markdown]
# ### Exercise 2 (2 points): the Jacobian of the inverse map
#
# Going back, a point $(x, y, z)$ off the $z$-axis has
#
# $$
# r = \sqrt{x^2 + y^2 + z^2}, \qquad
# \theta = \arccos\frac{z}{r}, \qquad
# \phi = \operatorname{atan2}(y, x),
# $$
#
# where $\operatorname{atan2}(y, x)$ is the angle of the point $(x, y)$ in
# the plane; its partial derivatives are those of $\arctan(y/x)$. Derive the
# nine partial derivatives of $(r, \theta, \phi)$ with respect to
# $(x, y, z)$ with the chain rule for one variable. Useful facts:
# $\frac{d}{du}\arccos u = -1/\sqrt{1-u^2}$,
# $\frac{d}{du}\arctan u = 1/(1+u^2)$, and with $\rho = \sqrt{x^2+y^2}$ you
# have $\sqrt{1 - z^2/r^2} = \rho/r$; simplify each entry until it is a short
# ratio of $x, y, z, r, \rho$. Do not invert a matrix (the answer may not
# use `np.linalg`): the test checks your matrix against the inverse of the
# Jacobian of Exercise 1, which it must equal (the inverse function
# theorem: going there and back is the identity, so by the chain rule the
# two Jacobians multiply to $I$). At $(1, 2, 2)$, $r = 3$,
# $\rho = \sqrt 5$ and the first row is $(1/3, 2/3, 2/3)$.

# %% solution="cartesian_jacobian" exact=true deny="linalg"
def cartesian_jacobian(x, y, z):
    """Jacobian of (x, y, z) -> (r, theta, phi), Cartesian to spherical coordinates.

    x, y, z: floats, a point off the z-axis (x**2 + y**2 > 0).
    Returns an ndarray of shape (3, 3) in numerator layout: row i is output i
    (r, theta, phi), column j is input j (x, y, z).
    """
    ### BEGIN SOLUTION
    rho2 = x * x + y * y
    rho = np.sqrt(rho2)
    r2 = rho2 + z * z
    r = np.sqrt(r2)
    return np.array([[x / r, y / r, z / r],
                     [x * z / (r2 * rho), y * z / (r2 * rho), -rho / r2],
                     [-y / rho2, x / rho2, 0.0]])
    ### END SOLUTION


# %% test="test_cartesian_jacobian" points=2
def _spherical_reference(x, y, z):  # the Jacobian of Exercise 1 at the same point, from autodiff_ref
    r = np.sqrt(x * x + y * y + z * z)
    point = [r, np.arccos(z / r), np.arctan2(y, x)]
    return ad.functional.jacobian(_to_cartesian, ad.tensor(point)).numpy()


with grading.exercise(2, "cartesian_jacobian"):
    J = cartesian_jacobian(1.0, 2.0, 2.0)
    grading.assert_close(np.asarray(J)[0], [1 / 3, 2 / 3, 2 / 3], rtol=1e-12,
                         name="row 0 (the derivatives of r) of cartesian_jacobian(1.0, 2.0, 2.0)")
    grading.assert_close(np.asarray(J) @ _spherical_reference(1.0, 2.0, 2.0), np.eye(3),
                         rtol=1e-10, atol=1e-12,
                         name="cartesian_jacobian(1, 2, 2) times the Jacobian of Exercise 1 at "
                              "the same point (must be the identity)")
grading.passed("cartesian_jacobian")
### BEGIN HIDDEN TESTS
_rng = np.random.default_rng()
for _ in range(4):
    _x, _y, _z = _rng.uniform(0.3, 2, 3) * _rng.choice([-1, 1], 3)
    _J = np.asarray(cartesian_jacobian(_x, _y, _z), dtype=float)
    grading.assert_close(_J, np.linalg.inv(_spherical_reference(_x, _y, _z)), rtol=1e-10,
                         atol=1e-12, name=f"cartesian_jacobian({_x:.3f}, {_y:.3f}, {_z:.3f}) "
                                          "vs the inverse of the forward Jacobian")

    def _to_spherical(v):
        r = np.sqrt(np.sum(v**2))
        return np.array([r, np.arccos(v[2] / r), np.arctan2(v[1], v[0])])

    _v = np.array([_x, _y, _z])
    _fd = np.stack([(_to_spherical(_v + 1e-6 * e) - _to_spherical(_v - 1e-6 * e)) / 2e-6
                    for e in np.eye(3)], axis=1)
    grading.assert_close(_J, _fd, rtol=1e-5, atol=1e-7,
                         name=f"cartesian_jacobian({_x:.3f}, {_y:.3f}, {_z:.3f}) vs finite "
                              "differences")
### END HIDDEN TESTS

# %% [markdown]
# ### Two layouts
#
# The convention above, where the index of the *output* (the numerator
# $\partial f_i$) runs down the rows, is called the **numerator layout**.
# Some books use the **denominator layout** instead: the same numbers
# transposed, an $n \times m$ matrix whose rows follow the input (the
# denominator $\partial x_j$). Neither is wrong, but mixing them is the
# classic source of a missing or extra transpose, so always check which one a
# formula uses. In this course:
#
# * a Jacobian is always in **numerator layout**, $J[i, j] = \partial f_i /
#   \partial x_j$. For arrays of any shape, `autodiff_ref` (like PyTorch)
#   generalises it as *output shape followed by input shape*: the Jacobian of
#   an output of shape $(2, 3)$ with respect to an input of shape $(4, 5)$ has
#   shape $(2, 3, 4, 5)$;
# * a gradient of a scalar loss is stored in the **shape of the variable**
#   (`x.grad` has the shape of `x`), as the next section explains.
#
# > **Common mistake: one convention for both.** The numerator layout says
# > how a Jacobian is *arranged* ($\partial y/\partial x$ is $m\times n$ for
# > $y\in\mathbb{R}^m$, $x \in \mathbb{R}^n$); it is what you multiply in the
# > chain rule. Backward rules and optimisers use a different convention:
# > **a gradient has the parameter's shape**. For $L$ computed from
# > $z = Wx$ with $W$ of shape $m \times n$, the Jacobian $\partial z/\partial W$
# > has $m \cdot m \cdot n$ entries (shape $(m, m, n)$, section 4), and the
# > numerator-layout derivative of the scalar $L$ by the $mn$ entries of $W$
# > would be a $1 \times mn$ row; but `W.grad`, and what a backward rule
# > returns, is $\bar W = \partial L/\partial W$ of shape $m\times n$, like
# > $W$, so that $W - \eta\bar W$ makes sense. Do not transpose or reshape a
# > gradient "into numerator layout", and do not expect a Jacobian to have
# > the shape of the parameter: they answer different questions.

# %% [markdown]
# ## 2. One output: a row, and the gradient as a column
#
# For a scalar function $L:\mathbb{R}^m \to \mathbb{R}$ we have $m$ inputs and
# one output, so the Jacobian is $1 \times m$: a **row vector**,
#
# $$
# \frac{\partial L}{\partial y} = \begin{bmatrix}
# \dfrac{\partial L}{\partial y_1} & \cdots & \dfrac{\partial L}{\partial y_m}
# \end{bmatrix} \in \mathbb{R}^{1 \times m}.
# $$
#
# The **gradient** of notebook 01 holds the same numbers as a column, the
# shape of $y$ itself:
#
# $$
# \nabla_y L = \left(\frac{\partial L}{\partial y}\right)^{\!\top} \in \mathbb{R}^{m \times 1}.
# $$
#
# | symbol | what it is | shape | who uses it |
# |---|---|---|---|
# | $\partial L / \partial y$ | the Jacobian of a scalar (numerator layout) | row, $1\times m$ | the chain rule: it multiplies Jacobians from the left |
# | $\nabla_y L$ | the gradient | column, $m \times 1$ (the shape of $y$) | optimisers: $y \leftarrow y - \eta\,\nabla_y L$ needs the shape of $y$ |
#
# **The chain rule multiplies Jacobians.** If $y = f(x)$ with
# $x \in \mathbb{R}^n$, $y \in \mathbb{R}^m$, and $L = L(y)$, then
#
# $$
# \underbrace{\frac{\partial L}{\partial x}}_{1\times n}
# = \underbrace{\frac{\partial L}{\partial y}}_{1 \times m}\;
#   \underbrace{\frac{\partial y}{\partial x}}_{m \times n},
# \qquad\text{or, with columns,}\qquad
# \underbrace{\nabla_x L}_{n\times 1}
# = \underbrace{\left(\frac{\partial y}{\partial x}\right)^{\!\top}}_{n\times m}
#   \underbrace{\nabla_y L}_{m\times 1}.
# $$
#
# Both say the same thing; the shapes fit only in this order. A row vector
# times a Jacobian is a **vector–Jacobian product** (VJP), and it is exactly
# what a backward pass computes, one layer at a time (notebooks 03 and 04).
#
# **Worked example.** Take the $f$ of section 1 and $L(y) = \tfrac12\|y\|^2$,
# so $\partial L / \partial y = y^\top = (6,\ 11,\ 0.909297)$ at $x = (2, 3)$.
# Then
#
# $$
# \frac{\partial L}{\partial x} = \begin{bmatrix} 6 & 11 & 0.909297 \end{bmatrix}
# \begin{bmatrix} 3 & 2 \\ 1 & 6 \\ -0.416147 & 0 \end{bmatrix}
# = \begin{bmatrix} 28.621599 & 78 \end{bmatrix}.
# $$
#
# The reference engine stores it as `x.grad`, in the shape of `x` (a 1-D NumPy
# array has no "row" or "column": it is simply the shape $(2,)$ of $x$).

# %%
x = ad.tensor(x0, requires_grad=True)
y = f_example_ad(x)
L = 0.5 * (y * y).sum()
L.backward()
row = f_example(x0) @ J0  # dL/dy (a row) times the Jacobian
print("dL/dy . J     =", row)
print("x.grad        =", x.grad.numpy(), " shape", x.grad.shape)
assert np.allclose(row, [28.621599, 78.0]) and np.allclose(x.grad.numpy(), row)

# %% [markdown]
# ## 3. A Jacobian from finite differences
#
# Column $j$ of the Jacobian is the derivative of the whole output vector
# along the coordinate $x_j$. The central difference of notebook 01 gives it
# in one go, with $e_j$ the $j$-th unit vector:
#
# $$
# J[:, j] \;\approx\; \frac{f(x + \varepsilon e_j) - f(x - \varepsilon e_j)}{2\varepsilon},
# \qquad j = 1, \dots, n .
# $$
#
# That is two evaluations of $f$ per **input**, whatever the number of
# outputs: a numerical Jacobian is built column by column. (Building it row
# by row is what reverse mode does, one backward pass per output; notebook 03
# compares the two.)
#
# Arrays with more axes work the same way, with the layout rule of
# section 1: the Jacobian of an output of shape `out` with respect to an
# input of shape `inp` has shape `out + inp`, and for each index `idx` of the
# input (a tuple such as `(1, 2)`), the slice `J[(...,) + idx]` (all output
# axes, then that input index) holds the derivative of the whole output
# along that one input entry. A scalar output has shape `()`, so its
# Jacobian has the input's shape: the gradient.
#
# ### Exercise 3 (2 points): the numerical Jacobian
#
# Write `numerical_jacobian(f, x, eps=1e-6)` for a function `f` from arrays
# of `x`'s shape to arrays of any fixed shape (or to a number), using central
# differences. Evaluate `f` once at `x` to learn the output's shape, and loop
# over the input's entries with `np.ndindex(x.shape)`. Do not change the
# caller's `x`. Write the loop yourself: the answer may not call
# `ad.numerical_jacobian`.

# %% solution="numerical_jacobian"
def numerical_jacobian(f, x, eps=1e-6):
    """Central-difference Jacobian of f at x, in (generalised) numerator layout.

    f: maps a float array of x's shape to an array of some shape `out` (or to
    a single number, out = ()); x: an array of any shape; eps: the step.
    Returns an ndarray of shape out + x.shape, J[(...,) + idx] being the
    derivative of the output with respect to the input entry x[idx]. x is
    left unchanged.
    """
    ### BEGIN SOLUTION
    x = np.array(x, dtype=np.float64)  # a copy
    out_shape = np.shape(f(x.copy()))
    J = np.zeros(out_shape + x.shape)
    for idx in np.ndindex(x.shape):
        step = np.zeros_like(x)
        step[idx] = eps
        J[(...,) + idx] = (np.asarray(f(x + step)) - np.asarray(f(x - step))) / (2 * eps)
    return J
    ### END SOLUTION


# %% test="test_numerical_jacobian" points=2
with grading.exercise(3, "numerical_jacobian"):
    # the worked example: f(x1, x2) = (x1 x2, x1 + x2^2, sin x1) at (2, 3), a 3 x 2 Jacobian
    x = np.array([2.0, 3.0])
    grading.assert_close(numerical_jacobian(f_example, x),
                         np.array([[3.0, 2.0], [1.0, 6.0], [np.cos(2.0), 0.0]]),
                         name="numerical_jacobian(f_example, [2.0, 3.0]) (shape (3, 2): one "
                              "row per output, one column per input)", rtol=1e-6, atol=1e-7)
    if not np.array_equal(x, [2.0, 3.0]):
        raise grading.GradingError(f"numerical_jacobian changed its argument x to {x}.")
    # a scalar function, L = 0.5 |f(x)|^2: output shape (), so the shape of x (section 2)
    grading.assert_close(numerical_jacobian(lambda t: 0.5 * np.sum(f_example(t) ** 2), x),
                         np.array([28.62159875, 78.0]), rtol=1e-6, atol=1e-7,
                         name="numerical_jacobian(0.5 * |f_example|^2, [2.0, 3.0]) (shape (2,))")
    # a matrix input: column sums of X (2 x 3) -> shape (3,) + (2, 3)
    grading.assert_close(numerical_jacobian(lambda X: X.sum(axis=0), np.ones((2, 3))),
                         ad.functional.jacobian(lambda X: X.sum(axis=0), ad.tensor(np.ones((2, 3)))),
                         rtol=1e-6, atol=1e-7,
                         name="numerical_jacobian(X.sum(axis=0), ones((2, 3))) (shape (3, 2, 3))")
grading.passed("numerical_jacobian")
### BEGIN HIDDEN TESTS
_rng = np.random.default_rng()
for _ in range(2):
    _m, _n = (int(s) for s in _rng.choice(np.arange(1, 7), 2, replace=False))
    # an affine map A x + b: the Jacobian is A (and central differences are exact up to round-off)
    _A, _b = _rng.standard_normal((_m, _n)), _rng.standard_normal(_m)
    _x = _rng.uniform(-2, 2, _n)
    _before = _x.copy()
    grading.assert_close(numerical_jacobian(lambda t: _A @ t + _b, _x), _A,
                         name=f"numerical_jacobian(A x + b) with A of shape {(_m, _n)}",
                         rtol=1e-6, atol=1e-7)
    if not np.array_equal(_x, _before):
        raise grading.GradingError("numerical_jacobian changed its argument x in place.")
    # a nonlinear map against the reference engine: sin(A x) * (B x)
    _B = _rng.standard_normal((_m, _n))
    _ref = ad.functional.jacobian(lambda t: ad.sin(_A @ t) * (_B @ t), ad.tensor(_x)).numpy()
    grading.assert_close(numerical_jacobian(lambda t: np.sin(_A @ t) * (_B @ t), _x), _ref,
                         name=f"numerical_jacobian(sin(A x) * (B x)), A and B of shape "
                              f"{(_m, _n)}, vs autodiff_ref", rtol=1e-5, atol=1e-6)
    # a random eps: still central differences of a cubic, exactly 3 x^2 + eps^2 on the diagonal
    _eps = float(10 ** _rng.uniform(-2, -0.5))
    grading.assert_close(numerical_jacobian(lambda t: t**3, _x, eps=_eps),
                         np.diag(3 * _x**2 + _eps**2),
                         name=f"numerical_jacobian(x**3, x of length {_n}, eps={_eps:.3g})",
                         rtol=1e-8, atol=1e-8)
# a scalar output: the shape of x
_n = int(_rng.integers(2, 7))
_x = _rng.uniform(-2, 2, _n)
grading.assert_close(numerical_jacobian(lambda t: np.sum(np.exp(t) * t), _x),
                     np.exp(_x) * (1 + _x),
                     name=f"numerical_jacobian(sum(exp(x) x)) for x of length {_n} (one "
                          f"output: shape ({_n},))", rtol=1e-6, atol=1e-7)
# matrix in, matrix out: Y = tanh(X @ W) has a Jacobian of shape (N, M, N, D)
_N, _D, _M = (int(s) for s in _rng.integers(1, 4, 3))
_W = _rng.standard_normal((_D, _M))
_X = _rng.uniform(-1, 1, (_N, _D))
_before = _X.copy()
grading.assert_close(numerical_jacobian(lambda t: np.tanh(t @ _W), _X),
                     ad.functional.jacobian(lambda t: ad.tanh(t @ _W), ad.tensor(_X)).numpy(),
                     name=f"numerical_jacobian(tanh(X @ W)), X of shape {(_N, _D)}, W of shape "
                          f"{(_D, _M)}, vs autodiff_ref (shape {(_N, _M, _N, _D)})",
                     rtol=1e-5, atol=1e-7)
if not np.array_equal(_X, _before):
    raise grading.GradingError("numerical_jacobian changed its argument x in place.")
# a matrix to a number: sum(sin(X)) has the gradient cos(X), of X's shape
grading.assert_close(numerical_jacobian(lambda t: np.sum(np.sin(t)), _X), np.cos(_X),
                     rtol=1e-6, atol=1e-8,
                     name=f"numerical_jacobian(sum(sin(X))), X of shape {(_N, _D)}")
### END HIDDEN TESTS

# %% [markdown]
# With your function you can now estimate the Jacobian of anything you can
# evaluate. The next cell compares it with the reference engine on a
# function of 4 inputs and 2 outputs.

# %%
def g_np(t):
    return np.array([np.sum(t**2), t[0] * t[3] - np.exp(t[1])])


def g_ad(t):
    first, second = np.array([1.0, 0.0]), np.array([0.0, 1.0])
    return (t * t).sum() * first + (t[0] * t[3] - ad.exp(t[1])) * second


t0 = np.array([0.5, -1.0, 2.0, 1.5])
try:
    J_fd = numerical_jacobian(g_np, t0)
    J_ad = ad.functional.jacobian(g_ad, ad.tensor(t0)).numpy()
    print("finite differences:\n", np.round(J_fd, 6))
    print("autodiff_ref:\n", J_ad)
    print("largest difference:", np.max(np.abs(J_fd - J_ad)))
except NotImplementedError:
    print("Finish Exercise 3 (numerical_jacobian) to see this comparison.")

# %% [markdown]
# ## 4. Jacobians of the building blocks
#
# ### 4.1 A linear map, with respect to its input and to its matrix
#
# Let $f(x) = Ax$ with $A \in \mathbb{R}^{M\times N}$ and $x \in
# \mathbb{R}^N$, so $f(x) \in \mathbb{R}^M$. Write one output at a time:
#
# $$
# f_i = \sum_{j=1}^{N} A_{ij}\,x_j
# \quad\Longrightarrow\quad
# \frac{\partial f_i}{\partial x_j} = A_{ij}
# \quad\Longrightarrow\quad
# \frac{\partial f}{\partial x} = A \in \mathbb{R}^{M \times N}.
# $$
#
# The Jacobian of a linear map is the matrix itself, which is why $J$ is
# called the best *linear* approximation.
#
# In a network $A$ is a weight matrix, and what we need for training is the
# derivative with respect to $A$. Now the input has $M \cdot N$ entries and
# the output $M$, so $\partial f / \partial A$ holds $M \times (M \times N)$
# numbers: for each output $i$, one derivative per entry $A_{kq}$. From the
# same sum,
#
# $$
# \frac{\partial f_i}{\partial A_{kq}} =
# \begin{cases} x_q & \text{if } k = i,\\ 0 & \text{if } k \neq i,\end{cases}
# \qquad\text{in short}\qquad
# \frac{\partial f_i}{\partial A_{iq}} = x_q .
# $$
#
# Output $f_i$ depends only on row $i$ of $A$, through $x$: the derivative of
# $f_i$ with respect to the matrix $A$ is a matrix of the shape of $A$ that is
# zero except for row $i$, which holds $x^\top$. Stacking these for
# $i = 1, \dots, M$ gives a 3-D array of shape $(M, M, N)$, index
# $[i, k, q]$: output first, then the input's two indices.
#
# **Worked example.** $A = \begin{bmatrix}1 & 2 & 3\\ 4 & 5 & 6\end{bmatrix}$,
# $x = (1, 0, -1)$, so $f = Ax = (-2, -2)$. Flatten $A$ row by row into
# $(A_{11}, A_{12}, A_{13}, A_{21}, A_{22}, A_{23})$; then
# $\partial f/\partial A$ is the $2 \times 6$ matrix
#
# $$
# \frac{\partial f}{\partial A} = \begin{bmatrix}
# 1 & 0 & -1 & 0 & 0 & 0\\
# 0 & 0 & 0 & 1 & 0 & -1
# \end{bmatrix}:
# $$
#
# $x^\top$ in the block of row 1 of $A$ for $f_1$, in the block of row 2 for
# $f_2$. Only $M\cdot N$ of the $M \cdot M \cdot N$ entries can be nonzero:
# a fraction $1/M$. Keep that in mind for section 7.
#
# ### Exercise 4 (2 points): Jacobians of $f(x) = Ax$
#
# Write `linear_map_jacobians(A, x)` returning both Jacobians from the
# formulas above (no finite differences: the test compares to 12 digits).

# %% solution="linear_map_jacobians" exact=true
def linear_map_jacobians(A, x):
    """The Jacobians of f(x) = A x with respect to x and to A.

    A: ndarray of shape (M, N); x: ndarray of shape (N,).
    Returns a tuple (J_x, J_A):
      J_x of shape (M, N), J_x[i, j] = d f_i / d x_j;
      J_A of shape (M, M, N), J_A[i, k, q] = d f_i / d A[k, q].
    """
    ### BEGIN SOLUTION
    A = np.asarray(A, dtype=np.float64)
    x = np.asarray(x, dtype=np.float64)
    M, N = A.shape
    J_A = np.zeros((M, M, N))
    for i in range(M):
        J_A[i, i, :] = x  # f_i depends only on row i of A, with slope x
    return A.copy(), J_A
    ### END SOLUTION


# %% test="test_linear_map_jacobians" points=2
with grading.exercise(4, "linear_map_jacobians"):
    A = np.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
    result = linear_map_jacobians(A.copy(), np.array([1.0, 0.0, -1.0]))
    if not isinstance(result, tuple) or len(result) != 2:
        raise grading.GradingError("linear_map_jacobians should return a tuple (J_x, J_A) of "
                                   f"two arrays, got {type(result).__name__}.")
    grading.assert_close(result[0], A, rtol=1e-12, atol=0,
                         name="J_x of linear_map_jacobians(A, x), the worked example (shape (2, 3))")
    grading.assert_close(result[1], np.array([[[1.0, 0.0, -1.0], [0.0, 0.0, 0.0]],
                                              [[0.0, 0.0, 0.0], [1.0, 0.0, -1.0]]]),
                         name="J_A of linear_map_jacobians(A, x), the worked example (shape "
                              "(2, 2, 3): J_A[i, k, q] = d f_i / d A[k, q])", rtol=1e-12, atol=0)
grading.passed("linear_map_jacobians")
### BEGIN HIDDEN TESTS
_rng = np.random.default_rng()
for _ in range(3):
    _M, _N = (int(s) for s in _rng.choice(np.arange(1, 7), 2, replace=False))
    _A, _x = _rng.standard_normal((_M, _N)), _rng.standard_normal(_N)
    _res = linear_map_jacobians(_A.copy(), _x.copy())
    if not isinstance(_res, tuple) or len(_res) != 2:
        raise grading.GradingError("linear_map_jacobians should return a tuple (J_x, J_A).")
    _Jx, _JA = _res
    _ref_A, _ref_x = ad.functional.jacobian(lambda a, v: a @ v, (ad.tensor(_A), ad.tensor(_x)))
    grading.assert_close(_Jx, _ref_x.numpy(), rtol=1e-12, atol=1e-14,
                         name=f"J_x for random A of shape {(_M, _N)} vs autodiff_ref")
    grading.assert_close(_JA, _ref_A.numpy(), rtol=1e-12, atol=1e-14,
                         name=f"J_A for random A of shape {(_M, _N)} vs autodiff_ref (shape "
                              f"{(_M, _M, _N)}, index [i, k, q])")
    # J_A contracted with a change H of A gives the change of f: H x
    _H = _rng.standard_normal((_M, _N))
    grading.assert_close(np.tensordot(np.asarray(_JA, dtype=float), _H, axes=2), _H @ _x,
                         rtol=1e-10, atol=1e-12,
                         name=f"sum_kq J_A[:, k, q] H[k, q] for A of shape {(_M, _N)} "
                              "(should equal H x, the change of A x when A changes by H)")
### END HIDDEN TESTS

# %% [markdown]
# ### 4.2 Element-wise functions
#
# An activation such as $\tanh$ or the sigmoid acts on each entry on its own:
# $f(x)_i = g(x_i)$ for a scalar function $g$. Output $i$ depends only on
# input $i$, so every off-diagonal partial derivative is zero:
#
# $$
# \frac{\partial f_i}{\partial x_j} =
# \begin{cases} g'(x_i) & i = j\\ 0 & i \neq j \end{cases}
# \qquad\Longrightarrow\qquad
# \frac{\partial f}{\partial x} = \operatorname{diag}\big(g'(x)\big).
# $$
#
# A full $n \times n$ matrix for $n$ useful numbers. Multiplying by a diagonal
# matrix is the same as multiplying entry by entry, so in the chain rule
# $\frac{\partial L}{\partial y}\operatorname{diag}(g'(x))$ is simply
# $\frac{\partial L}{\partial y} \odot g'(x)$: that is how every framework
# implements it.
#
# **Worked example.** The sigmoid $\sigma(t) = 1/(1 + e^{-t})$ has
# $\sigma'(t) = \sigma(t)\,(1 - \sigma(t))$. At $x = (0, 1, -2)$:
# $\sigma(x) = (0.5,\ 0.731059,\ 0.119203)$ and the Jacobian is
# $\operatorname{diag}(0.25,\ 0.196612,\ 0.104994)$.
#
# The same holds for an input with several axes: for $X$ of shape $(a, b)$,
# $f(X)$ has shape $(a, b)$ too, and the Jacobian has shape $(a, b, a, b)$
# with entry $[i, j, k, l] = g'(X_{ij})\,[\,(i, j) = (k, l)\,]$: nonzero only
# where the output index equals the input index.
#
# ### Exercise 5 (1 point): the Jacobian of an element-wise function
#
# Write `elementwise_jacobian(dg, x)`, given the derivative `dg` of the scalar
# function (a NumPy function that works entry by entry, like `np.cos`), for
# an `x` of any shape.

# %% solution="elementwise_jacobian" exact=true
def elementwise_jacobian(dg, x):
    """Jacobian of f(x) = g(x) applied entry by entry, given g's derivative dg.

    dg: a function that maps an array to g' of each entry (same shape);
    x: an array of any shape.
    Returns an ndarray of shape x.shape + x.shape (numerator layout: the
    output's indices, then the input's).
    """
    ### BEGIN SOLUTION
    x = np.asarray(x, dtype=np.float64)
    flat = np.diag(np.ravel(dg(x)))  # one row and one column per entry, in row-major order
    return flat.reshape(x.shape + x.shape)
    ### END SOLUTION


# %% test="test_elementwise_jacobian" points=1
def sigmoid_derivative(t):
    s = 1 / (1 + np.exp(-t))
    return s * (1 - s)


with grading.exercise(5, "elementwise_jacobian"):
    grading.assert_close(elementwise_jacobian(sigmoid_derivative, np.array([0.0, 1.0, -2.0])),
                         np.diag([0.25, 0.19661193324148185, 0.10499358540350652]),
                         name="elementwise_jacobian(sigmoid', [0.0, 1.0, -2.0]) (the worked "
                              "example)", rtol=1e-12, atol=0)
    X = np.array([[0.0, 1.0], [2.0, 3.0]])
    grading.assert_close(elementwise_jacobian(np.cos, X),
                         ad.functional.jacobian(ad.sin, ad.tensor(X)), rtol=1e-12, atol=1e-15,
                         name="elementwise_jacobian(np.cos, X) for X of shape (2, 2) vs "
                              "autodiff_ref's Jacobian of sin (shape (2, 2, 2, 2))")
grading.passed("elementwise_jacobian")
### BEGIN HIDDEN TESTS
_rng = np.random.default_rng()
for (_ad_fn, _dg, _label), _shape in zip(
        [(ad.tanh, lambda t: 1 - np.tanh(t) ** 2, "tanh"), (ad.exp, np.exp, "exp"),
         (ad.sin, np.cos, "sin")],
        [(int(_rng.integers(1, 9)),), tuple(int(s) for s in _rng.integers(1, 4, 2)), (2, 1, 3)]):
    _x = _rng.uniform(-2, 2, _shape)
    _before = _x.copy()
    _ref = ad.functional.jacobian(_ad_fn, ad.tensor(_x)).numpy()
    grading.assert_close(elementwise_jacobian(_dg, _x), _ref, rtol=1e-10, atol=1e-13,
                         name=f"elementwise_jacobian({_label}', x) for x of shape {_shape} vs "
                              "autodiff_ref")
    if not np.array_equal(_x, _before):
        raise grading.GradingError("elementwise_jacobian changed its argument x in place.")
### END HIDDEN TESTS

# %% [markdown]
# ### 4.3 Softmax: a Jacobian that is not diagonal
#
# Softmax turns a vector of scores $x \in \mathbb{R}^n$ into probabilities,
#
# $$
# s_i = \frac{e^{x_i}}{\sum_{k} e^{x_k}} .
# $$
#
# It looks element-wise but is not: every $s_i$ depends on *all* $x_j$
# through the denominator, so the Jacobian is a full $n\times n$ matrix.
# **Derive it** (that is Exercise 6). The recipe:
#
# 1. write $Z = \sum_k e^{x_k}$, so $s_i = e^{x_i}/Z$ and
#    $\partial Z/\partial x_j = e^{x_j}$;
# 2. differentiate $s_i$ with respect to $x_j$ by the quotient rule, once for
#    $j = i$ (the numerator depends on $x_j$ too) and once for $j \ne i$
#    (only $Z$ does);
# 3. replace every $e^{x_i}/Z$ by $s_i$: both cases become short expressions
#    in $s_i$ and $s_j$;
# 4. join the two cases into one formula with $[i = j]$, and read it as a
#    matrix: a diagonal matrix plus (or minus) an outer product.
#
# Two checks that catch most mistakes: the matrix must be **symmetric**, and
# every row must sum to zero (adding the same number to every score does not
# change the probabilities, so $J\mathbf 1 = 0$).
#
# **Worked example.** $x = (1, 2, 3)$ gives $s = (0.090031,\ 0.244728,\
# 0.665241)$ and
#
# $$
# \frac{\partial s}{\partial x} = \begin{bmatrix}
#  0.081925 & -0.022033 & -0.059892\\
# -0.022033 &  0.184836 & -0.162803\\
# -0.059892 & -0.162803 &  0.222695
# \end{bmatrix}.
# $$
#
# **Computing softmax safely.** $e^{1000}$ overflows a float64 (to `inf`, and
# then $\infty/\infty$ = `nan`). Because softmax does not change when the same
# number is subtracted from every score, compute it as
# $e^{x_i - \max x} / \sum_k e^{x_k - \max x}$: the largest exponent is then
# $e^0 = 1$. So softmax of $(1000, 1001, 1002)$ is the same as softmax of
# $(1, 2, 3)$, Jacobian included.
#
# ### Exercise 6 (2 points): the softmax Jacobian

# %% solution="softmax_jacobian" exact=true
def softmax_jacobian(x):
    """Jacobian of s = softmax(x) with respect to x.

    x: 1-D array of n scores (possibly large, e.g. 1000: compute softmax
    stably by subtracting the maximum first).
    Returns an ndarray of shape (n, n), entry [i, j] = d s_i / d x_j.
    """
    ### BEGIN SOLUTION
    x = np.asarray(x, dtype=np.float64)
    e = np.exp(x - np.max(x))
    s = e / np.sum(e)
    return np.diag(s) - np.outer(s, s)
    ### END SOLUTION


# %% test="test_softmax_jacobian" points=2
with grading.exercise(6, "softmax_jacobian"):
    J_expected = np.array([[0.08192507, -0.02203304, -0.05989202],
                           [-0.02203304, 0.18483645, -0.16280340],
                           [-0.05989202, -0.16280340, 0.22269543]])
    grading.assert_close(softmax_jacobian(np.array([1.0, 2.0, 3.0])), J_expected,
                         name="softmax_jacobian([1.0, 2.0, 3.0])", rtol=1e-6, atol=1e-8)
    grading.assert_close(softmax_jacobian(np.array([1000.0, 1001.0, 1002.0])), J_expected,
                         name="softmax_jacobian([1000.0, 1001.0, 1002.0]) (subtract the maximum "
                              "before exp)", rtol=1e-6, atol=1e-8)
grading.passed("softmax_jacobian")
### BEGIN HIDDEN TESTS
grading.assert_close(softmax_jacobian(np.array([-1000.0, -999.0, -998.0])), J_expected,
                     name="softmax_jacobian([-1000.0, -999.0, -998.0]) (subtract the maximum "
                          "before exp: exp(-1000) underflows to 0)", rtol=1e-6, atol=1e-8)
_rng = np.random.default_rng()


def _softmax_jac(v):
    _e = np.exp(v - v.max())
    _s = _e / _e.sum()
    return np.diag(_s) - np.outer(_s, _s)


for _ in range(3):
    _n = int(_rng.integers(2, 9))
    _x = _rng.uniform(-3, 3, _n)
    _before = _x.copy()
    _got = softmax_jacobian(_x)
    grading.assert_close(_got, _softmax_jac(_x), rtol=1e-10, atol=1e-13,
                         name=f"softmax_jacobian(x) for random x of length {_n}")
    if not np.array_equal(_x, _before):
        raise grading.GradingError("softmax_jacobian changed its argument x in place.")
    grading.assert_close(_got, ad.functional.jacobian(ad.softmax, ad.tensor(_x)).numpy(),
                         rtol=1e-9, atol=1e-12,
                         name=f"softmax_jacobian(x) for x of length {_n} vs autodiff_ref")
    # shifting every score by the same large number changes nothing
    _shift = float(_rng.uniform(500, 1000) * _rng.choice([-1, 1]))
    grading.assert_close(softmax_jacobian(_x + _shift), _softmax_jac(_x), rtol=1e-8,
                         atol=1e-12, name=f"softmax_jacobian(x + {_shift:.1f}) for x of "
                                          f"length {_n} (must equal softmax_jacobian(x))")
### END HIDDEN TESTS

# %% [markdown]
# The two checks from the text, on your function: symmetry, and rows that
# sum to zero (a change $h = c\,\mathbf 1$ of all scores by the same amount
# changes nothing, $Jh = 0$).

# %%
try:
    Js = softmax_jacobian(np.array([1.0, 2.0, 3.0]))
    print("symmetric:", np.allclose(Js, Js.T))
    print("row sums :", Js.sum(axis=1))
    print("J @ (0.5, 0.5, 0.5) =", Js @ np.full(3, 0.5))
except NotImplementedError:
    print("Finish Exercise 6 (softmax_jacobian) to run these checks.")

# %% [markdown]
# ### 4.4 Log-softmax: the chain rule, then simplify
#
# Classifiers use $\log s$ rather than $s$ (the cross-entropy loss is
# $-\log s_y$). The function $\ell(x) = \log \operatorname{softmax}(x)$ is a
# composition, element-wise $\log$ after softmax, so by the chain rule its
# Jacobian is a product of two Jacobians you know: the element-wise one of
# section 4.2 (for $\log$) times the softmax Jacobian, in that order
# (numerator layout: the later step on the left). Multiply them out and
# simplify: the $s_i$ of the first factor cancels against the second, and
# what remains is very simple. (Check it a second way: $\ell_i = x_i - \log Z$
# can be differentiated directly.)
#
# The simplification is not cosmetic. For scores $(0, -1000)$, softmax is
# $(1, e^{-1000})$ and $e^{-1000}$ underflows to $0$ in float64: the
# unsimplified product would divide by $0$ and return `nan`, while the
# Jacobian itself is perfectly finite. At $x = (1, 2, 3)$ its first row is
# $(0.909969,\ -0.244728,\ -0.665241)$.
#
# ### Exercise 7 (2 points): the log-softmax Jacobian

# %% solution="log_softmax_jacobian" exact=true
def log_softmax_jacobian(x):
    """Jacobian of l = log(softmax(x)) with respect to x.

    x: 1-D array of n scores (any size: e.g. (0, -1000) must work, where a
    softmax entry underflows to 0).
    Returns an ndarray of shape (n, n), entry [i, j] = d l_i / d x_j, with
    no nan or inf for finite x.
    """
    ### BEGIN SOLUTION
    x = np.asarray(x, dtype=np.float64)
    e = np.exp(x - np.max(x))
    s = e / np.sum(e)
    # diag(1/s) (diag(s) - s s^T) = I - 1 s^T: row i is [i = j] - s_j
    return np.eye(x.size) - s[None, :]
    ### END SOLUTION


# %% test="test_log_softmax_jacobian" points=2
with grading.exercise(7, "log_softmax_jacobian"):
    grading.assert_close(log_softmax_jacobian(np.array([1.0, 2.0, 3.0])),
                         ad.functional.jacobian(ad.log_softmax, ad.tensor([1.0, 2.0, 3.0])),
                         rtol=1e-10, atol=1e-13, name="log_softmax_jacobian([1.0, 2.0, 3.0]) vs "
                                                      "autodiff_ref")
    grading.assert_close(log_softmax_jacobian(np.array([0.0, -1000.0])),
                         ad.functional.jacobian(ad.log_softmax, ad.tensor([0.0, -1000.0])),
                         rtol=1e-10, atol=1e-13,
                         name="log_softmax_jacobian([0.0, -1000.0]) (simplify before you "
                              "compute: no division by a softmax entry)")
grading.passed("log_softmax_jacobian")
### BEGIN HIDDEN TESTS
_rng = np.random.default_rng()
for _ in range(3):
    _n = int(_rng.integers(1, 9))
    _x = _rng.uniform(-3, 3, _n) + float(_rng.uniform(-800, 800))
    _before = _x.copy()
    _got = log_softmax_jacobian(_x)
    if not np.array_equal(_x, _before):
        raise grading.GradingError("log_softmax_jacobian changed its argument x in place.")
    grading.assert_close(_got, ad.functional.jacobian(ad.log_softmax, ad.tensor(_x)).numpy(),
                         rtol=1e-9, atol=1e-12,
                         name=f"log_softmax_jacobian(x) for random x of length {_n} vs "
                              "autodiff_ref")
    # the chain rule: diag(s) times this Jacobian is the softmax Jacobian
    _e = np.exp(_x - _x.max())
    _s = _e / _e.sum()
    grading.assert_close(np.diag(_s) @ np.asarray(_got, dtype=float),
                         np.diag(_s) - np.outer(_s, _s), rtol=1e-9, atol=1e-12,
                         name=f"diag(s) @ log_softmax_jacobian(x), length {_n} (must be the "
                              "softmax Jacobian)")
# large scores: exp(1000) overflows unless the maximum is subtracted first
_x = np.array([1000.0, 1001.0, 1002.0]) + _rng.uniform(-1, 1, 3)
grading.assert_close(log_softmax_jacobian(_x),
                     ad.functional.jacobian(ad.log_softmax, ad.tensor(_x - 1000)).numpy(),
                     rtol=1e-9, atol=1e-12,
                     name="log_softmax_jacobian of scores near 1000 (subtract the maximum "
                          "before exp)")
# one score far below the others: its softmax entry is 0 in float64
_x = np.array([0.0, float(_rng.uniform(-2, 2)), -float(_rng.uniform(800, 1000))])
grading.assert_close(log_softmax_jacobian(_x),
                     ad.functional.jacobian(ad.log_softmax, ad.tensor(_x)).numpy(),
                     rtol=1e-9, atol=1e-12,
                     name=f"log_softmax_jacobian({_x.round(2).tolist()}) (an entry of softmax "
                          "underflows to 0)")
### END HIDDEN TESTS

# %% [markdown]
# ## 5. A matrix function of a matrix: $K = R^\top R$
#
# Now both the input and the output are matrices. Let $R \in
# \mathbb{R}^{M\times N}$ (think of its $N$ columns $r_1, \dots, r_N$ as
# vectors of length $M$) and $K = R^\top R \in \mathbb{R}^{N \times N}$, the
# matrix of all dot products between columns (a *Gram matrix*):
#
# $$
# K_{pq} = r_p^\top r_q = \sum_{m=1}^{M} R_{mp} R_{mq}.
# $$
#
# The output has $N \times N$ entries and the input $M \times N$, so the
# derivative has $N \cdot N \cdot M \cdot N$ numbers: a **4-D array** of shape
# $(N, N, M, N)$, index $[p, q, i, j]$ (output indices first, as always). To
# find $\partial K_{pq}/\partial R_{ij}$, differentiate each product in the sum
# with the product rule. $R_{mp}$ depends on $R_{ij}$ only if $m = i$ and
# $p = j$; likewise $R_{mq}$. So only the term $m = i$ survives, and
#
# $$
# \frac{\partial K_{pq}}{\partial R_{ij}}
# = [j = p]\, R_{iq} + [j = q]\, R_{ip}
# = \begin{cases}
# R_{iq} & \text{if } j = p \neq q,\\
# R_{ip} & \text{if } j = q \neq p,\\
# 2R_{ip} & \text{if } j = p = q,\\
# 0 & \text{otherwise.}
# \end{cases}
# $$
#
# The diagonal case is where both factors are the same entry:
# $K_{pp} = \sum_m R_{mp}^2$, whose derivative is $2R_{ip}$.
#
# **Worked example.** $R = \begin{bmatrix}1 & 2\\ 3 & 4\\ 5 & 6\end{bmatrix}$
# ($M = 3$, $N = 2$) gives $K = \begin{bmatrix}35 & 44\\ 44 & 56\end{bmatrix}$.
# Each slice $\partial K_{pq}/\partial R$ has the shape of $R$:
#
# $$
# \frac{\partial K_{11}}{\partial R} = \begin{bmatrix}2 & 0\\ 6 & 0\\ 10 & 0\end{bmatrix},
# \quad
# \frac{\partial K_{12}}{\partial R} = \frac{\partial K_{21}}{\partial R}
# = \begin{bmatrix}2 & 1\\ 4 & 3\\ 6 & 5\end{bmatrix},
# \quad
# \frac{\partial K_{22}}{\partial R} = \begin{bmatrix}0 & 4\\ 0 & 8\\ 0 & 12\end{bmatrix}.
# $$
#
# For $K_{12} = r_1^\top r_2$, column 1 of the slice holds $r_2 = (2, 4, 6)$
# and column 2 holds $r_1 = (1, 3, 5)$. A good sanity check is the linear
# approximation: changing $R$ by a small $H$ changes $K$ by
# $\sum_{ij} \frac{\partial K}{\partial R_{ij}} H_{ij} = R^\top H + H^\top R$
# (expand $(R + H)^\top (R + H)$ and drop $H^\top H$).
#
# ### Exercise 8 (3 points): the 4-D derivative of $K = R^\top R$
#
# Write `gram_jacobian(R)` from the formula. Two loops over $p$ and $q$ that
# fill columns of the slice `D[p, q]` work well; note what must happen when
# $p = q$.

# %% solution="gram_jacobian" exact=true
def gram_jacobian(R):
    """Derivative of K = R^T R with respect to R.

    R: ndarray of shape (M, N).
    Returns an ndarray D of shape (N, N, M, N) with
    D[p, q, i, j] = d K[p, q] / d R[i, j].
    """
    ### BEGIN SOLUTION
    R = np.asarray(R, dtype=np.float64)
    M, N = R.shape
    D = np.zeros((N, N, M, N))
    for p in range(N):
        for q in range(N):
            D[p, q, :, p] += R[:, q]  # K_pq = r_p . r_q: the factor r_p, slope r_q
            D[p, q, :, q] += R[:, p]  # the factor r_q, slope r_p (adds up to 2 r_p if p = q)
    return D
    ### END SOLUTION


# %% test="test_gram_jacobian" points=3
def _check_gram(got, R, label):
    M, N = R.shape
    if np.shape(got) == (M, N, N, N) and M != N:
        raise grading.GradingError(
            f"gram_jacobian({label}) has shape {np.shape(got)}, the input's indices first; the "
            f"order is [p, q, i, j] (output first, numerator layout): shape {(N, N, M, N)}.")
    expected = ad.functional.jacobian(lambda r: r.T @ r, ad.tensor(R)).numpy()
    if np.shape(got) == expected.shape:  # name the first wrong slice d K[p, q] / d R
        for p, q in sorted(np.ndindex(N, N), key=lambda pq: pq[0] != pq[1]):
            grading.assert_close(np.asarray(got, dtype=float)[p, q], expected[p, q],
                                 rtol=1e-12, atol=1e-14,
                                 name=f"gram_jacobian({label})[{p}, {q}] = d K[{p},{q}] / dR "
                                      f"(K[{p},{q}] = sum_m R[m,{p}] R[m,{q}])")
    grading.assert_close(got, expected, rtol=1e-12, atol=1e-14,
                         name=f"gram_jacobian({label}) (shape {(N, N, M, N)})")


with grading.exercise(8, "gram_jacobian"):
    R = np.array([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]])
    _check_gram(gram_jacobian(R.copy()), R, "R = [[1, 2], [3, 4], [5, 6]]")
grading.passed("gram_jacobian")
### BEGIN HIDDEN TESTS
_rng = np.random.default_rng()
for _ in range(3):
    _M, _N = (int(s) for s in _rng.choice(np.arange(1, 6), 2, replace=False))
    _R = _rng.standard_normal((_M, _N))
    _before = _R.copy()
    _got = gram_jacobian(_R)
    if not np.array_equal(_R, _before):
        raise grading.GradingError("gram_jacobian changed its argument R in place.")
    _check_gram(_got, _R, f"R of shape {(_M, _N)}")
    _ref = ad.functional.jacobian(lambda r: r.T @ r, ad.tensor(_R)).numpy()
    grading.assert_close(_got, _ref, rtol=1e-12, atol=1e-14,
                         name=f"gram_jacobian(R) for random R of shape {(_M, _N)} vs "
                              "autodiff_ref")
    # first-order change: sum_ij D[:, :, i, j] H[i, j] = R^T H + H^T R
    _H = _rng.standard_normal((_M, _N))
    grading.assert_close(np.tensordot(np.asarray(_got, dtype=float), _H, axes=2),
                         _R.T @ _H + _H.T @ _R, rtol=1e-10, atol=1e-12,
                         name=f"the change of K predicted by gram_jacobian(R) for a change H "
                              f"of R (shape {(_M, _N)}): should be R^T H + H^T R")
### END HIDDEN TESTS

# %% [markdown]
# ## 6. A gallery of Jacobians
#
# Pick a function below and look at its Jacobian as a heat-map (red
# positive, blue negative, white zero), computed by `ad.functional.jacobian`
# at a random point (the slider picks another one). Arrays with more than one
# axis are flattened, row by row, so that a Jacobian of shape
# $(2, 2, 3, 2)$ is drawn as a $4 \times 6$ matrix. The toggle switches
# between the two layouts of section 1: numerator ($m \times n$, one row per
# output; for a scalar function the row $\partial L/\partial x$) and
# denominator (the transpose, $n \times m$; for a scalar function the column
# $\nabla_x L$). Things to look for:
#
# * the linear map: $J$ *is* $A$, whatever the point; the derivative with
#   respect to the matrix is block-shaped and mostly zero;
# * $\tanh$: diagonal; $\sin(Ax)$: the rows of $A$, each scaled by
#   $\cos$ of its output (the chain rule $\operatorname{diag}(\cos(Ax))\,A$);
# * softmax: full, symmetric, rows summing to zero;
# * $K = R^\top R$: the slices of section 5, mostly zeros;
# * the scalar loss: a single row, or a single column after the toggle;
# * the layer $Y = XW$: $N \cdot M$ rows and $N \cdot D$ columns, of which
#   only one block per row of $X$ is nonzero (section 7).

# %%
A_gallery = np.random.default_rng(42).standard_normal((4, 6))
W_gallery = np.random.default_rng(7).standard_normal((3, 4))

GALLERY = {  # name: (formula, Jacobian formula, shape of the input, function of a tensor)
    "linear map  f(x) = A x": (
        r"$f(x) = A\,x,\quad A \in \mathbb{R}^{4\times 6}$", r"$\partial f/\partial x = A$",
        (6,), lambda x: A_gallery @ x),
    "linear map, w.r.t. A: f(A) = A x": (
        r"$f(A) = A\,x,\quad A\in\mathbb{R}^{4\times6}$",
        r"$\partial f_i/\partial A_{iq} = x_q$, else 0", (4, 6),
        lambda a: a @ np.linspace(-1, 1, 6)),
    "element-wise  f(x) = tanh(x)": (
        r"$f(x) = \tanh(x)$ (entry by entry)", r"$\mathrm{diag}(1 - \tanh^2 x)$",
        (6,), ad.tanh),
    "f(x) = sin(A x)": (
        r"$f(x) = \sin(A\,x)$", r"$\mathrm{diag}(\cos(Ax))\,A$", (6,),
        lambda x: ad.sin(A_gallery @ x)),
    "softmax(x)": (
        r"$s = \mathrm{softmax}(x)$", r"$\mathrm{diag}(s) - s\,s^\top$", (6,), ad.softmax),
    "K = R^T R, R of shape (3, 2)": (
        r"$K = R^\top R,\quad R\in\mathbb{R}^{3\times 2}$",
        r"$\partial K_{pq}/\partial R_{ij} = [j{=}p]R_{iq} + [j{=}q]R_{ip}$", (3, 2),
        lambda r: r.T @ r),
    "scalar loss  L(x) = sum(x^2)/2 + sum(sin x)": (
        r"$L(x) = \frac{1}{2}\sum_i x_i^2 + \sum_i \sin x_i$",
        r"$\partial L/\partial x = (x + \cos x)^\top$", (6,),
        lambda x: 0.5 * (x * x).sum() + ad.sin(x).sum()),
    "layer  Y = X W, X: (2, 3), W: (3, 4)": (
        r"$Y = X\,W,\quad X\in\mathbb{R}^{2\times3},\ W\in\mathbb{R}^{3\times4}$",
        r"$\partial Y_{nm}/\partial X_{n'd} = [n{=}n']\,W_{dm}$", (2, 3),
        lambda x: x @ W_gallery),
}


def show_jacobian(function="linear map  f(x) = A x", layout="numerator", point=0):
    formula, jac_formula, in_shape, fn = GALLERY[function]
    x = ad.tensor(np.random.default_rng(point).uniform(-1.5, 1.5, in_shape))
    out = fn(x)
    J = ad.functional.jacobian(fn, x).numpy()
    m, n = out.size, x.size
    J2 = J.reshape(m, n)
    shown = J2 if layout == "numerator" else J2.T

    fig, (text, heat) = plt.subplots(1, 2, figsize=(11, 4.2),
                                     gridspec_kw={"width_ratios": [1, 1.2]})
    text.axis("off")
    lines = [formula, "Jacobian: " + jac_formula,
             f"input x: shape {in_shape}, n = {n} numbers",
             f"output: shape {out.shape}, m = {m} numbers",
             f"Jacobian: shape {J.shape}, drawn as {shown.shape[0]} x {shown.shape[1]}",
             f"nonzero entries: {np.count_nonzero(np.abs(J2) > 1e-12)} of {J2.size}"]
    if m == 1:
        lines.append(r"numerator: the row $\partial L/\partial x$" if layout == "numerator"
                     else r"denominator: the column $\nabla_x L$")
    for k, line in enumerate(lines):
        text.text(0, 0.92 - 0.14 * k, line, fontsize=12 if k < 2 else 10,
                  transform=text.transAxes)
    v = max(np.max(np.abs(shown)), 1e-12)
    rows, cols = shown.shape
    elongated = max(rows, cols) > 4 * min(rows, cols) and min(rows, cols) > 1
    aspect = "auto" if elongated else "equal"
    im = heat.imshow(shown, cmap="RdBu_r", vmin=-v, vmax=v, aspect=aspect)
    if shown.size <= 48:
        for (i, j), value in np.ndenumerate(shown):
            heat.text(j, i, f"{value:.2f}", ha="center", va="center", fontsize=8,
                      color="w" if abs(value) > 0.6 * v else "k")
    heat.set_xticks(range(0, cols, 1 if cols <= 12 else 4))
    heat.set_yticks(range(0, rows, 1 if rows <= 12 else 4))
    along_rows, along_cols = ("output", "input") if layout == "numerator" else ("input", "output")
    heat.set_ylabel(f"{along_rows} index (flattened)")
    heat.set_xlabel(f"{along_cols} index (flattened)")
    heat.set_title(f"{layout} layout: {rows} x {cols}")
    fig.colorbar(im, ax=heat, shrink=0.8)
    plt.show()


gallery = widgets.interactive(
    show_jacobian,
    function=widgets.Dropdown(options=list(GALLERY), description="function",
                              layout=widgets.Layout(width="460px"),
                              style={"description_width": "initial"}),
    layout=widgets.ToggleButtons(
        options=[("numerator (m x n, row gradient)", "numerator"),
                 ("denominator (n x m, column gradient)", "denominator")],
        description="layout", style={"description_width": "initial", "button_width": "auto"}),
    point=widgets.IntSlider(value=0, min=0, max=9, description="random point",
                            style={"description_width": "initial"}),
)
display(gallery)

# %% [markdown]
# ## 7. Why frameworks never build a Jacobian
#
# Take one linear layer on a batch, $Y = XW + b$, with $X \in \mathbb{R}^{N\times
# D}$ ($N$ examples with $D$ features each), $W \in \mathbb{R}^{D \times M}$,
# a bias $b \in \mathbb{R}^M$ added to every row, and $Y \in \mathbb{R}^{N
# \times M}$. Its Jacobian with respect to $X$ has one entry per (entry of
# $Y$, entry of $X$) pair: shape $(N, M, N, D)$. From
# $Y_{nm} = \sum_d X_{nd} W_{dm} + b_m$,
#
# $$
# \frac{\partial Y_{nm}}{\partial X_{n'd}} = [n = n']\; W_{dm}:
# $$
#
# row $n$ of $Y$ depends only on row $n$ of $X$.
#
# ### Written answer (1 point): predict the size
#
# A realistic layer has a batch of $N = 64$ and $D = M = 4096$ features.
# **Before you run the cells below**, predict: (1) the memory of the explicit
# Jacobian $\partial Y/\partial X$ in float32 (4 bytes per number), in GiB
# ($1$ GiB $= 2^{30}$ bytes); (2) the fraction of its entries that can be
# nonzero; (3) the memory of what a backward pass actually needs,
# $\partial L/\partial X$ (one number per entry of $X$). Show the arithmetic
# (powers of 2 make it easy: $64 = 2^6$, $4096 = 2^{12}$).

# %% [markdown] answer="predict_jacobian_memory" points=1
# ### BEGIN SOLUTION
# **Model answer.** (1) The Jacobian has $N M \cdot N D = 2^6 \cdot 2^{12}
# \cdot 2^6 \cdot 2^{12} = 2^{36} \approx 6.9\times10^{10}$ entries; at
# $4 = 2^2$ bytes each that is $2^{38}$ bytes $= 2^8$ GiB $= 256$ GiB, for one
# layer. (2) An entry can be nonzero only when $n = n'$: a fraction $1/N =
# 1/64 \approx 1.6\%$; the nonzero blocks are $N$ copies of $W^\top$.
# (3) $\partial L/\partial X$ has the shape of $X$: $N D = 2^{18}$ numbers,
# $2^{20}$ bytes $= 1$ MiB, about $2.6\times10^{5}$ times less.
#
# **Rubric (1 point).** Full point: 256 GiB (or $2^{38}$ bytes, or about
# 275 GB with the arithmetic shown), the fraction $1/N$, and 1 MiB for the
# gradient. Half a point: the right count of entries ($N^2 M D$) with an
# arithmetic slip, or two of the three parts right.
# ### END SOLUTION

# %% [markdown]
# ### Exercise 9 (2 points): the explicit Jacobians of a layer
#
# Build the three Jacobians of $Y = XW + b$ explicitly, for small layers.
# The one for $X$ is above; derive the other two the same way, entry by
# entry: on which entries of $W$ does $Y_{nm}$ depend, and with what slope?
# On which entries of $b$? Then write `layer_jacobians(X, W)`. (The
# Jacobians do not depend on $b$'s value, so $b$ is not an argument.) Each
# is mostly zeros; fill in the nonzero blocks with loops.

# %% solution="layer_jacobians" exact=true
def layer_jacobians(X, W):
    """The explicit Jacobians of Y = X W + b (b of shape (M,) added to every row).

    X: ndarray of shape (N, D); W: ndarray of shape (D, M).
    Returns a tuple (J_X, J_W, J_b) in numerator layout (the output's indices,
    then the input's):
      J_X of shape (N, M, N, D), J_X[n, m, k, d] = d Y[n, m] / d X[k, d];
      J_W of shape (N, M, D, M), J_W[n, m, d, j] = d Y[n, m] / d W[d, j];
      J_b of shape (N, M, M),    J_b[n, m, j]    = d Y[n, m] / d b[j].
    """
    ### BEGIN SOLUTION
    X = np.asarray(X, dtype=np.float64)
    W = np.asarray(W, dtype=np.float64)
    N, D = X.shape
    M = W.shape[1]
    J_X, J_W, J_b = np.zeros((N, M, N, D)), np.zeros((N, M, D, M)), np.zeros((N, M, M))
    for n in range(N):
        J_X[n, :, n, :] = W.T  # row n of Y sees only row n of X, with slopes W[d, m]
        for m in range(M):
            J_W[n, m, :, m] = X[n]  # Y[n, m] sees only column m of W, with slopes X[n, d]
            J_b[n, m, m] = 1.0  # and only b[m], with slope 1
    return J_X, J_W, J_b
    ### END SOLUTION


# %% test="test_layer_jacobians" points=2
def _check_layer(X, W, label):
    got = layer_jacobians(X.copy(), W.copy())
    if not isinstance(got, tuple) or len(got) != 3:
        raise grading.GradingError(f"layer_jacobians({label}) should return a tuple (J_X, J_W, "
                                   f"J_b), got {type(got).__name__}.")
    ref = ad.functional.jacobian(lambda x, w, b: x @ w + b,
                                 (ad.tensor(X), ad.tensor(W), ad.tensor(np.zeros(W.shape[1]))))
    for name, g, r in zip(("J_X", "J_W", "J_b"), got, ref):
        grading.assert_close(g, r, rtol=1e-12, atol=0,
                             name=f"{name} of layer_jacobians({label}) vs autodiff_ref")


with grading.exercise(9, "layer_jacobians"):
    _check_layer(np.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]), np.arange(12.0).reshape(3, 4) / 4,
                 "X of shape (2, 3), W of shape (3, 4)")
grading.passed("layer_jacobians")
### BEGIN HIDDEN TESTS
_rng = np.random.default_rng()
for _ in range(3):
    _N, _D, _M = (int(s) for s in _rng.choice(np.arange(1, 6), 3, replace=False))
    _X, _W = _rng.standard_normal((_N, _D)), _rng.standard_normal((_D, _M))
    _check_layer(_X, _W, f"X of shape {(_N, _D)}, W of shape {(_D, _M)}")
    # the contraction with an upstream gradient G gives the VJPs G W^T, X^T G, sum of G's rows
    _G = _rng.standard_normal((_N, _M))
    _JX, _JW, _Jb = (np.asarray(j, dtype=float) for j in layer_jacobians(_X, _W))
    for _name, _j, _v in (("J_X", _JX, _G @ _W.T), ("J_W", _JW, _X.T @ _G), ("J_b", _Jb, _G.sum(0))):
        grading.assert_close(np.tensordot(_G, _j, axes=2), _v, rtol=1e-10, atol=1e-12,
                             name=f"sum_nm G[n, m] {_name}[n, m] for shapes {(_N, _D, _M)}")
### END HIDDEN TESTS

# %% [markdown]
# Was your prediction right? The next cell measures the Jacobian your
# function builds for small layers, checks that its size grows like
# $N^2 M D$, and scales the count up to $N = 64$, $D = M = 4096$ in
# float32. Then it builds the explicit Jacobian of a layer with $N = 16$,
# $D = M = 64$ and compares contracting it with the upstream gradient $G$
# against the product $G W^\top$ that a backward pass computes instead.

# %%
try:
    rng = np.random.default_rng(0)
    print(f"{'N':>3} {'D':>3} {'M':>3} {'entries of J_X':>15} {'N^2 M D':>8} {'nonzero':>8}")
    for N_, D_, M_ in [(2, 3, 4), (4, 3, 2), (8, 5, 6)]:
        J_X = layer_jacobians(rng.standard_normal((N_, D_)), rng.standard_normal((D_, M_)))[0]
        print(f"{N_:3d} {D_:3d} {M_:3d} {J_X.size:15d} {N_ * N_ * M_ * D_:8d} "
              f"{np.mean(J_X != 0):8.1%}")
    N_, D_, M_ = 64, 4096, 4096
    n_bytes = N_ * M_ * N_ * D_ * 4
    print(f"\nN = 64, D = M = 4096, float32: {n_bytes:,d} bytes = {n_bytes / 2**30:g} GiB, "
          f"nonzero fraction 1/N = {1 / N_:.1%}; dL/dX needs {N_ * D_ * 4 / 2**20:g} MiB")

    N_, D_, M_ = 16, 64, 64
    X, W, G = (rng.standard_normal(s) for s in [(N_, D_), (D_, M_), (N_, M_)])
    start = time.perf_counter()
    J_layer = layer_jacobians(X, W)[0]
    vjp_explicit = np.tensordot(G, J_layer, axes=2)  # sum over n, m of G[n, m] J[n, m, :, :]
    t_explicit = time.perf_counter() - start
    start = time.perf_counter()
    vjp_direct = G @ W.T
    t_direct = time.perf_counter() - start
    assert np.allclose(vjp_explicit, vjp_direct)
    print(f"\nN={N_}, D=M={D_}: Jacobian {J_layer.shape}, {J_layer.nbytes / 2**20:.0f} MiB, "
          f"{np.mean(J_layer != 0):.1%} nonzero")
    print(f"explicit Jacobian + contraction: {t_explicit * 1e3:.1f} ms;  G @ W.T: "
          f"{t_direct * 1e3:.3f} ms; same result")
except NotImplementedError:
    print("Finish Exercise 9 (layer_jacobians) to see the measurements.")

# %% [markdown]
# Almost all of the Jacobian is zero, and the nonzero part is just copies of
# $W^\top$. Nobody needs the Jacobian itself: the backward pass needs the
# vector–Jacobian product of section 2. With the upstream gradient
# $G = \partial L/\partial Y$ (shape $N\times M$, stored like $Y$),
#
# $$
# \frac{\partial L}{\partial X_{n'd}} = \sum_{n, m} G_{nm}
# \frac{\partial Y_{nm}}{\partial X_{n'd}} = \sum_m G_{n'm} W_{dm}
# \qquad\Longrightarrow\qquad
# \frac{\partial L}{\partial X} = G\,W^\top ,
# $$
#
# an $N \times D$ matrix, 1 MiB for the large layer, computed by one matrix
# product. Every backward rule in a framework is such a formula: the VJP
# written directly, the Jacobian never formed (notebook 05 derives them for
# all the common operations).

# %% [markdown]
# ## 8. Predicting shapes
#
# Two rules give the shape of every derivative in this course:
#
# 1. **A Jacobian has the output's shape followed by the input's shape**
#    (numerator layout, generalised): $\partial Y/\partial X$ for $Y$ of shape
#    $(N, M)$ and $X$ of shape $(N, D)$ has shape $(N, M, N, D)$.
# 2. **The gradient of a scalar loss has the shape of the variable** (the
#    convention of `x.grad` and of every optimiser): $\partial L/\partial W$
#    has the shape of $W$, whatever happened in between. Rule 1 gives the
#    same: the output shape is $()$, so only the input's shape is left.
#
# A bias $b$ of shape $(M,)$ added to every row of $XW$ (broadcasting) still
# gets a gradient of shape $(M,)$: each $b_m$ was used $N$ times, and its
# gradient is the sum over those $N$ uses (notebook 05).
#
# Shapes alone often pin down a formula. With $D = WX$, $W$ of shape
# $5 \times 10$, $X$ of shape $10 \times 3$, the upstream gradient
# $\partial L/\partial D$ is $5\times 3$, and $\partial L/\partial W$ must be
# $5 \times 10$: the only product of $\partial L/\partial D$ and $X$ with that
# shape is $\frac{\partial L}{\partial D}\,X^\top$ ($5\times3$ times
# $3\times10$). Likewise $\partial L/\partial X = W^\top \frac{\partial
# L}{\partial D}$ ($10 \times 5$ times $5\times 3$). Before you derive a
# gradient, write down its shape.
#
# ### Exercise 10 (2 points): shape predictions
#
# Now a two-layer network on a batch: $X$ of shape $(N, D)$,
# $P = XW_1 + b_1$ with $W_1$ of shape $(D, K)$ and $b_1$ of shape $(K,)$
# (broadcast over the rows), $H = \tanh(P)$, $Y = HW_2$ with $W_2$ of shape
# $(K, M)$, and a scalar loss $L$ computed from $Y$. Write
# `predict_shapes(N, D, K, M)`: a dictionary from the names below to shapes
# (tuples of ints). Names `dL/...` mean gradients as stored in `.grad`
# (rule 2); names `dA/dB` with `A` not $L$ mean full Jacobians (rule 1).
# Work them out from the two rules, not by running code: the test only runs
# on your dictionary.

# %% solution="predict_shapes"
def predict_shapes(N, D, K, M):
    """Shapes around X -> P = X W1 + b1 -> H = tanh(P) -> Y = H W2 -> L (a scalar).

    X: (N, D); W1: (D, K); b1: (K,); W2: (K, M).
    Returns a dict with these keys, each mapped to a tuple of ints:
      "Y", "dL/dY", "dL/dH", "dL/dW2", "dL/dW1", "dL/db1", "dL/dX"  (gradients: rule 2),
      "dY/dH", "dY/dW2", "dH/dP", "dP/db1", "dY/dX"               (Jacobians: rule 1).
    """
    ### BEGIN SOLUTION
    return {
        "Y": (N, M),
        "dL/dY": (N, M),
        "dL/dH": (N, K),
        "dL/dW2": (K, M),
        "dL/dW1": (D, K),
        "dL/db1": (K,),
        "dL/dX": (N, D),
        "dY/dH": (N, M, N, K),
        "dY/dW2": (N, M, K, M),
        "dH/dP": (N, K, N, K),
        "dP/db1": (N, K, K),
        "dY/dX": (N, M, N, D),
    }
    ### END SOLUTION


# %% test="test_predict_shapes" points=2
_KEYS = ["Y", "dL/dY", "dL/dH", "dL/dW2", "dL/dW1", "dL/db1", "dL/dX",
         "dY/dH", "dY/dW2", "dH/dP", "dP/db1", "dY/dX"]


def _check_shapes(dims, expected):
    label = "predict_shapes(N={}, D={}, K={}, M={})".format(*dims)
    got = predict_shapes(*dims)
    if not isinstance(got, dict) or [k for k in _KEYS if k not in got]:
        raise grading.GradingError(f"{label} should return a dict with the keys {_KEYS}.")
    for key, shape in expected.items():
        try:
            g = tuple(int(s) for s in got[key])
        except TypeError:
            raise grading.GradingError(f"{label}[{key!r}] should be a tuple of ints such as "
                                       f"(2, 3) (use (3,) for one axis), got {got[key]!r}.")
        if g != tuple(shape):
            rule = ("the gradient of a scalar has the shape of the variable (rule 2)"
                    if key.startswith("dL/") else "a Jacobian has the output's shape followed "
                    "by the input's shape (rule 1)")
            flat = " Keep every axis: do not flatten." if len(g) < len(shape) and \
                int(np.prod(g)) == int(np.prod(shape)) else ""
            raise grading.GradingError(f"{label}[{key!r}] is wrong: {rule}.{flat}")


with grading.exercise(10, "predict_shapes"):
    _check_shapes((2, 3, 5, 4), {"dY/dX": (2, 4, 2, 3)})  # section 7: (N, M, N, D)
grading.passed("predict_shapes")
### BEGIN HIDDEN TESTS
_rng = np.random.default_rng()


def _reference_shapes(N, D, K, M):
    X, W1, b1, W2 = (ad.tensor(_rng.standard_normal(s), requires_grad=True)
                     for s in [(N, D), (D, K), (K,), (K, M)])
    P = X @ W1 + b1
    H = ad.tanh(P)
    Y = H @ W2
    H.retain_grad()
    Y.retain_grad()
    (Y * _rng.standard_normal(Y.shape)).sum().backward()
    jac = ad.functional.jacobian
    return {"Y": Y.shape, "dL/dY": Y.grad.shape, "dL/dH": H.grad.shape, "dL/dW2": W2.grad.shape,
            "dL/dW1": W1.grad.shape, "dL/db1": b1.grad.shape, "dL/dX": X.grad.shape,
            "dY/dH": jac(lambda h: h @ W2.detach(), H.detach()).shape,
            "dY/dW2": jac(lambda w: H.detach() @ w, W2.detach()).shape,
            "dH/dP": jac(ad.tanh, P.detach()).shape,
            "dP/db1": jac(lambda b: X.detach() @ W1.detach() + b, b1.detach()).shape,
            "dY/dX": jac(lambda x: ad.tanh(x @ W1.detach() + b1.detach()) @ W2.detach(),
                         X.detach()).shape}


_check_shapes((2, 3, 5, 4), _reference_shapes(2, 3, 5, 4))
for _ in range(2):
    _dims = tuple(int(s) for s in _rng.choice(np.arange(1, 7), 4, replace=False))
    _check_shapes(_dims, _reference_shapes(*_dims))
### END HIDDEN TESTS

# %% [markdown]
# ## Summary
#
# * The Jacobian of $f:\mathbb{R}^n \to \mathbb{R}^m$ is the $m \times n$
#   matrix $J[i, j] = \partial f_i/\partial x_j$ (numerator layout; the
#   denominator layout is its transpose). It is the best linear
#   approximation: $f(x + h) \approx f(x) + Jh$. For arrays, its shape is
#   the output's shape followed by the input's.
# * A scalar $L$ has a $1 \times m$ Jacobian, the row $\partial L/\partial y$
#   used by the chain rule; the gradient $\nabla_y L$ is the same numbers as a
#   column, in the shape of $y$, as optimisers need. The chain rule multiplies
#   Jacobians: $\partial L/\partial x = (\partial L/\partial y)(\partial
#   y/\partial x)$, a vector–Jacobian product.
# * A Jacobian by hand: one partial derivative per (output, input) pair; the
#   Jacobian of an inverse map is the inverse matrix (spherical coordinates).
# * A numerical Jacobian costs two evaluations per input (one slice each).
# * Building blocks: $Ax$ has Jacobian $A$, and
#   $\partial f_i/\partial A_{iq} = x_q$ (an $M\times(M\times N)$ object,
#   mostly zeros); element-wise $g$ gives $\operatorname{diag}(g'(x))$;
#   softmax gives $\operatorname{diag}(s) - ss^\top$, and log-softmax, by the
#   chain rule and a simplification that avoids dividing by $s$,
#   $I - \mathbf 1 s^\top$; $K = R^\top R$ gives a
#   4-D array with
#   $\partial K_{pq}/\partial R_{ij} = [j = p]R_{iq} + [j = q]R_{ip}$.
# * Explicit Jacobians are huge and sparse (256 GiB for one linear layer with
#   $N = 64$, $D = M = 4096$), so frameworks compute vector–Jacobian products
#   such as $G W^\top$ directly. The next notebook puts those products
#   together along a computational graph: the chain rule, forward mode and
#   reverse mode.
