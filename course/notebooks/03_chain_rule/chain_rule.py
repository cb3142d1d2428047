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
# # 03 · The chain rule, computational graphs, forward and reverse mode
#
# Notebook 01 ended with a promise: the partial derivatives of a product of
# $n$ numbers cost $O(n)$ instead of $O(n^2)$ if we reuse intermediate
# results in a forward and a backward sweep. This notebook shows that the
# trick works for **every** program, because every program is a composition
# of simple steps and the derivative of a composition is given by one rule,
# the **chain rule**.
#
# 1. the chain rule for one variable, for many variables (a sum over paths)
#    and for vector functions (a product of Jacobians);
# 2. programs as **computational graphs** ("circuits"): values flow forward,
#    gradients flow backward, and each gate only needs its local derivative;
# 3. **reverse mode** by hand: the staged backward pass, with `+=` wherever
#    a variable is used more than once;
# 4. **forward mode** with dual numbers, which you will implement;
# 5. what each mode costs: forward mode is a Jacobian-vector product (one
#    pass per input), reverse mode a vector-Jacobian product (one pass per
#    output), and we measure it.
#
# **How this notebook works.** Read from top to bottom and run each cell
# (Shift-Enter). There are six exercises (13 points) and one written answer
# (1 point, graded by hand). In each exercise, replace
# `raise NotImplementedError()` with your code, then run the test cell right
# below it. The visible tests use the numbers from the text; when the
# notebook is graded, hidden tests run your code on fresh random inputs and
# compare with the reference engine `autodiff_ref`. The exercises ask for
# exact derivatives from formulas: do not call `autodiff_ref` in your
# answers. Every other cell runs without your code; cells that need an
# exercise say which one to finish.
#
# **Run All stops at the first unfinished exercise**: its test cell raises an
# error, and Jupyter does not run the cells after it. While you work, run the
# cells one by one (or use *Run All Above* on the cell you are working on),
# and do the exercises in order.
#
# Symbols follow the course's [notation card](../notation.md): $\bar v =
# \partial L/\partial v$ is an **adjoint** (reverse mode), $\dot v$ a
# **tangent** (forward mode), Jacobians are $m\times n$ for
# $f:\mathbb{R}^n\to\mathbb{R}^m$, and the running example
# $y = \ln x_1 + x_1x_2 - \sin x_2$ is numbered $v_{-1}, v_0, v_1, \dots, v_5$.

# %%
# %matplotlib inline
import time

import numpy as np
import matplotlib.pyplot as plt
import ipywidgets as widgets
from IPython.display import display
import autodiff_ref as ad
from autodiff_ref import grading


def sigmoid(z):
    """The logistic function 1 / (1 + exp(-z)), element-wise (NumPy)."""
    return 1.0 / (1.0 + np.exp(-z))

# %% [markdown]
# ## 1. The chain rule for one variable
#
# If $h(x) = f(g(x))$, a small change $\Delta x$ changes $u = g(x)$ by about
# $g'(x)\,\Delta x$, and that change of $u$ changes $f$ by about
# $f'(u)$ times as much. So the rates multiply:
#
# $$
# h'(x) = f'\big(g(x)\big)\, g'(x),
# \qquad\text{or, naming the intermediate } u = g(x):\qquad
# \frac{dh}{dx} = \frac{dh}{du}\,\frac{du}{dx}.
# $$
#
# A longer chain $x \to u_1 \to u_2 \to \dots \to u_k = y$ gives a longer
# product, $\frac{dy}{dx} = \frac{dy}{du_{k-1}} \cdots \frac{du_2}{du_1}
# \frac{du_1}{dx}$. Each factor is a **local** derivative: it only involves
# one step of the computation and the value that step received.
#
# **Worked example: a regression loss on one example.** Take
# $L = (wx + b - y)^2$ at $w = 2$, $x = 3$, $b = 1$, $y = 5$ and compute it
# in small steps (the **forward pass**):
#
# $$
# a = wx = 6, \qquad p = a + b = 7, \qquad d = p - y = 2, \qquad L = d^2 = 4.
# $$
#
# Now walk back from $L$ (the **backward pass**). Write
# $\bar v = \partial L / \partial v$ for the derivative of the loss with
# respect to an intermediate $v$ (its *adjoint*). Start with $\bar L = 1$
# and multiply by one local derivative per step:
#
# | step | local derivative | adjoint |
# |---|---|---|
# | $L = d^2$ | $\partial L/\partial d = 2d = 4$ | $\bar d = 4$ |
# | $d = p - y$ | $\partial d/\partial p = 1$, $\partial d/\partial y = -1$ | $\bar p = 4$, $\bar y = -4$ |
# | $p = a + b$ | $\partial p/\partial a = 1$, $\partial p/\partial b = 1$ | $\bar a = 4$, $\bar b = 4$ |
# | $a = wx$ | $\partial a/\partial w = x = 3$, $\partial a/\partial x = w = 2$ | $\bar w = 12$, $\bar x = 8$ |
#
# So $\partial L/\partial w = 12$: $\bar w = \bar a \cdot x =
# (2d)\cdot 1 \cdot 1 \cdot x$, the chain rule read from the output back to
# the input. Check with the formula: $\partial L / \partial w =
# 2(wx + b - y)\,x = 2 \cdot 2 \cdot 3 = 12$. The next cell does the same
# two passes in code, and asks `autodiff_ref` for the same four numbers.

# %%
w, x, b, y = 2.0, 3.0, 1.0, 5.0
# forward pass: every intermediate is kept, the backward pass needs them
a = w * x
p = a + b
d = p - y
L = d**2
# backward pass: one line per forward step, in reverse order
L_bar = 1.0
d_bar = 2 * d * L_bar
p_bar, y_bar = d_bar, -d_bar
a_bar, b_bar = p_bar, p_bar
w_bar, x_bar = x * a_bar, w * a_bar
print(f"forward : a = {a:g}, p = {p:g}, d = {d:g}, L = {L:g}")
print(f"backward: dL/dd = {d_bar:g}, dL/dw = {w_bar:g}, dL/db = {b_bar:g}, "
      f"dL/dx = {x_bar:g}, dL/dy = {y_bar:g}")
assert (a, p, d, L) == (6, 7, 2, 4)
assert (d_bar, w_bar, b_bar, x_bar, y_bar) == (4, 12, 4, 8, -4)

leaves = {name: ad.tensor(value, requires_grad=True)
          for name, value in dict(w=w, x=x, b=b, y=y).items()}
loss = (leaves["w"] * leaves["x"] + leaves["b"] - leaves["y"]) ** 2
loss.backward()
print("autodiff_ref:", {name: t.grad.item() for name, t in leaves.items()})
assert [leaves[n].grad.item() for n in "wxby"] == [w_bar, x_bar, b_bar, y_bar]

# %% [markdown]
# ## 2. Many variables: a sum over paths
#
# Usually a variable influences the output along several routes. If $x$
# feeds the intermediates $u_1, \dots, u_k$ and those feed $y$, a small
# change of $x$ moves every $u_i$ a little, and the effects add up (to first
# order, small changes superpose):
#
# $$
# \frac{\partial y}{\partial x} = \sum_{i=1}^{k}
# \frac{\partial y}{\partial u_i}\,\frac{\partial u_i}{\partial x}.
# $$
#
# Applied recursively on a whole graph this says: **$\partial y/\partial x$ is
# the sum, over all paths from $x$ to $y$, of the product of the local
# derivatives along the path.**
#
# **Worked example** (the running example of the course). $y = \ln x_1 +
# x_1 x_2 - \sin x_2$ at $(x_1, x_2) = (2, 5)$. Number the inputs
# $v_{-1} = x_1 = 2$, $v_0 = x_2 = 5$ and the computed values in order:
# $v_1 = \ln v_{-1} = 0.6931$, $v_2 = v_{-1} v_0 = 10$,
# $v_3 = \sin v_0 = -0.9589$, $v_4 = v_1 + v_2 = 10.6931$ and
# $y = v_5 = v_4 - v_3 = 0.6931 + 10 - (-0.9589) = 11.652$. Each input
# reaches $y$ along two paths (the final add and subtract have local
# derivatives $1$, $1$ and $-1$):
#
# $$
# \frac{\partial y}{\partial x_1}
# = \underbrace{\frac{1}{x_1}\cdot 1}_{v_{-1}\to v_1\to y}
# + \underbrace{x_2 \cdot 1}_{v_{-1}\to v_2\to y} = 0.5 + 5 = 5.5,
# \qquad
# \frac{\partial y}{\partial x_2}
# = \underbrace{x_1 \cdot 1}_{v_0\to v_2\to y}
# + \underbrace{\cos x_2 \cdot (-1)}_{v_0\to v_3\to y}
# = 2 - \cos 5 \approx 1.7163 .
# $$
#
# Forgetting one path is *the* classic bug of hand-written backward passes.
# Listing paths is also not how to compute: a chain of $k$ "diamonds" (each
# step splits into two branches that join again) has $2^k$ paths. Automatic
# differentiation never enumerates them. It factors the sum, exactly like the
# prefix and suffix products of notebook 01: the backward pass stores one
# adjoint per node and visits each edge once.

# %%
x1, x2 = 2.0, 5.0
y_value = np.log(x1) + x1 * x2 - np.sin(x2)
dy_dx1 = 1 / x1 + x2  # paths through v1 = ln x1 and v2 = x1 x2
dy_dx2 = x1 - np.cos(x2)  # paths through v2 = x1 x2 and v3 = sin x2
print(f"y = {y_value:.4f}, dy/dx1 = {dy_dx1:.4f}, dy/dx2 = {dy_dx2:.4f}")

t1, t2 = ad.tensor(x1, requires_grad=True), ad.tensor(x2, requires_grad=True)
(ad.log(t1) + t1 * t2 - ad.sin(t2)).backward()
print(f"autodiff_ref: dy/dx1 = {t1.grad.item():.4f}, dy/dx2 = {t2.grad.item():.4f}")
assert np.isclose(y_value, 11.652, atol=5e-4) and dy_dx1 == 5.5
assert np.isclose(dy_dx2, 1.7163, atol=5e-5)
assert np.isclose(t1.grad.item(), dy_dx1) and np.isclose(t2.grad.item(), dy_dx2)

# %% [markdown]
# ## 3. Vector functions: a product of Jacobians
#
# For $f:\mathbb{R}^n \to \mathbb{R}^m$ the Jacobian $J_f(x)$ is the $m\times
# n$ matrix of all partials, $(J_f)_{kj} = \partial f_k / \partial x_j$ (notebook
# 02). Compose with $g:\mathbb{R}^m \to \mathbb{R}^p$ and write $u = f(x)$.
# The sum over paths, now through the $m$ intermediates $u_1, \dots, u_m$, is
#
# $$
# \frac{\partial g_i}{\partial x_j} = \sum_{k=1}^{m}
# \frac{\partial g_i}{\partial u_k}\,\frac{\partial u_k}{\partial x_j},
# \qquad\text{that is}\qquad
# \underbrace{J_{g\circ f}(x)}_{p\times n}
# = \underbrace{J_g\big(f(x)\big)}_{p\times m}\;
#   \underbrace{J_f(x)}_{m\times n}.
# $$
#
# The chain rule for vector functions is a matrix product, and the shapes
# have to fit: $(p\times m)\cdot(m\times n)$. For a longer composition
# $F = f_k \circ \dots \circ f_1$ it is a product of $k$ Jacobians,
# $J_F = J_k J_{k-1} \cdots J_1$, each evaluated at the value its step
# received.
#
# The next cell checks this on $f(x) = \tanh(Ax)$ with $A$ of shape
# $2\times 3$ and $g(u) = \sin(Bu)$ with $B$ of shape $2 \times 2$, whose
# Jacobians we also know by hand: $J_f = \operatorname{diag}(1 -
# \tanh^2(Ax))\,A$ and $J_g = \operatorname{diag}(\cos(Bu))\,B$.

# %%
A = np.array([[1.0, 2.0, 0.0], [0.0, -1.0, 3.0]])
B = np.array([[0.5, -1.0], [2.0, 1.0]])
x_vec = np.array([0.5, -0.3, 0.2])


def f_vec(x):
    return ad.tanh(ad.tensor(A) @ x)


def g_vec(u):
    return ad.sin(ad.tensor(B) @ u)


u_vec = f_vec(ad.tensor(x_vec))
J_f = ad.functional.jacobian(f_vec, ad.tensor(x_vec)).numpy()
J_g = ad.functional.jacobian(g_vec, u_vec).numpy()
J_gf = ad.functional.jacobian(lambda x: g_vec(f_vec(x)), ad.tensor(x_vec)).numpy()
print("J_g", J_g.shape, "@ J_f", J_f.shape, "=", (J_g @ J_f).shape)
print("J_g @ J_f =\n", J_g @ J_f)
print("Jacobian of the composition =\n", J_gf)
assert np.allclose(J_g @ J_f, J_gf)
assert np.allclose(J_f, np.diag(1 - np.tanh(A @ x_vec) ** 2) @ A)
assert np.allclose(J_g, np.diag(np.cos(B @ u_vec.numpy())) @ B)

# %% [markdown]
# **The order of the product is a choice.** Matrix multiplication is
# associative, so $J_3 J_2 J_1$ can be computed as $(J_3 J_2) J_1$ or as
# $J_3 (J_2 J_1)$, with very different costs. We rarely want the whole
# Jacobian anyway, only its product with a vector:
#
# * **forward mode** multiplies from the right, starting with a direction
#   $v \in \mathbb{R}^n$ of the inputs: $J_F v = J_k(\cdots(J_2(J_1 v)))$. Every
#   step is a matrix times a vector, done in the same order as the program
#   runs. This is a **Jacobian-vector product (JVP)**;
# * **reverse mode** multiplies from the left, starting with a row vector
#   $u^\top$ over the outputs: $u^\top J_F = ((u^\top J_k) J_{k-1})\cdots J_1$.
#   Every step is a vector times a matrix, done in the reverse order of the
#   program. This is a **vector-Jacobian product (VJP)**.
#
# For a loss, $p = 1$: the leftmost factor is a single row, and one
# reverse sweep with $u = 1$ gives the whole gradient. Forward mode would need
# $n$ sweeps, one per column $v = e_j$. Sections 6 and 7 come back to this.
#
# ## 4. Computational graphs and circuits
#
# A **computational graph** draws a computation as boxes (the operations,
# also called *gates*) joined by wires (the values). The forward pass pushes
# values from the inputs to the output. The backward pass pushes gradients
# from the output to the inputs: each gate receives the **upstream gradient**
# $\partial f/\partial(\text{its output})$, multiplies it by its **local
# gradient** $\partial(\text{its output})/\partial(\text{its input})$ for
# each input, and passes the result down the wire. A gate never needs to
# know anything about the rest of the circuit.
#
# **Worked example.** $f = (x + y)\,z$ at $x = -2$, $y = 5$, $z = -4$. Forward:
# $q = x + y = 3$, then $f = qz = -12$. Backward, starting with
# $\partial f/\partial f = 1$:
#
# * the multiply gate $f = qz$: $\partial f/\partial z = q = 3$ and
#   $\partial f/\partial q = z = -4$;
# * the add gate $q = x + y$ has local gradients $1$ and $1$, so
#   $\partial f/\partial x = \partial f/\partial y = (-4)\cdot 1 = -4$.
#
# Reading the signs: $q = 3$ is positive, so nudging $z$ up raises $f$
# (gradient $+3$); $z = -4$ is negative, so nudging $x$ or $y$ up, which
# raises $q$, lowers $f$ (gradient $-4$). `ad.viz.circuit` runs
# both passes in the reference engine and draws every box with its value and
# its gradient (in red):

# %%
def named(t, name):
    """Label an intermediate tensor for the drawing."""
    t.name = name
    return t


def add_mul(x, y, z):
    q = named(x + y, "q")
    return named(q * z, "f")


graph = ad.viz.circuit(add_mul, x=-2.0, y=5.0, z=-4.0)
display(graph)
grads = {n: t.grad.item() for n, t in graph.inputs.items()}
print("f =", graph.output.item(), " gradients:", grads)
assert graph.output.item() == -12.0 and grads == {"x": -4.0, "y": -4.0, "z": 3.0}

# %% [markdown]
# ### Gate patterns
#
# Three gates appear everywhere, and their backward behaviour is worth
# knowing by heart:
#
# * **add distributes**: $q = a + b$ has local gradients $1$ and $1$, so both
#   inputs receive the upstream gradient unchanged;
# * **max routes**: $m = \max(a, b)$ has local gradient $1$ for the larger
#   input and $0$ for the other, so the whole upstream gradient goes to the
#   winner and nothing to the loser;
# * **mul swaps**: $m = ab$ has $\partial m/\partial a = b$ and
#   $\partial m/\partial b = a$, so each input receives the upstream gradient
#   times the **other** input. (A consequence: if one input is huge, the
#   gradient of the other one is huge too. That is one reason to normalise
#   the data that enters a network.)
#
# All three at once: $f = 2\,(xy + \max(z, w))$ at $x = 3$, $y = -4$, $z = 2$,
# $w = -1$. Forward: $xy = -12$, $\max(z, w) = 2$, their sum is $-10$ and
# $f = -20$. Backward: the final multiplication by the constant $2$ sends
# $2$ into the add gate, which passes $2$ to both of its inputs; the max gate
# routes $2$ to $z$ (the winner) and $0$ to $w$; the mul gate swaps:
# $\partial f/\partial x = 2y = -8$ and $\partial f/\partial y = 2x = 6$.
# The drawing shows the constant $2$ as an input box of its own, so that the
# last gate is visibly a multiplication; its "gradient" $-10$ (the other
# factor, $xy + \max(z, w)$) is computed but nobody needs it.

# %%
def gate_patterns(x, y, z, w):
    two = named(ad.tensor(2.0, requires_grad=True), "constant 2")  # drawn as a box
    prod = named(x * y, "xy")
    biggest = named(ad.maximum(z, w), "max")
    total = named(prod + biggest, "sum")
    return named(two * total, "f")


graph = ad.viz.circuit(gate_patterns, x=3.0, y=-4.0, z=2.0, w=-1.0)
display(graph)
grads = {n: t.grad.item() for n, t in graph.inputs.items()}
print("f =", graph.output.item(), " gradients:", grads)
assert graph.output.item() == -20.0
assert grads == {"x": -8.0, "y": 6.0, "z": 2.0, "w": 0.0}

# %% [markdown]
# ### A sigmoid neuron
#
# Gates can be as big as we like, as long as we know their local gradient.
# The logistic **sigmoid** $\sigma(z) = 1/(1 + e^{-z})$ has a particularly
# friendly one. From $\sigma(z)(1 + e^{-z}) = 1$,
#
# $$
# \sigma'(z) = \frac{e^{-z}}{(1 + e^{-z})^2}
# = \frac{1}{1 + e^{-z}}\cdot\frac{e^{-z}}{1 + e^{-z}}
# = \sigma(z)\,\big(1 - \sigma(z)\big),
# $$
#
# so the backward pass can reuse the value the forward pass computed: no new
# exponential is needed.
#
# A neuron with two inputs computes $f = \sigma(w_0 x_0 + w_1 x_1 + w_2)$
# ($w_2$ is the bias). **Worked example:** $w = [2, -3, -3]$ and
# $x = [-1, -2]$. Forward: $z = 2\cdot(-1) + (-3)\cdot(-2) + (-3) = 1$ and
# $f = \sigma(1) \approx 0.7311$. Backward: the sigmoid gate's local gradient
# is $\sigma(1)(1 - \sigma(1)) \approx 0.7311 \times 0.2689 \approx 0.1966$;
# then the add gates distribute it and the mul gates swap:
#
# $$
# \frac{\partial f}{\partial x} = 0.1966\,[w_0, w_1] \approx [0.3932,\ -0.5898],
# \qquad
# \frac{\partial f}{\partial w} = 0.1966\,[x_0, x_1, 1] \approx [-0.1966,\ -0.3932,\ 0.1966].
# $$
#
# The bias's "input" is the constant $1$, which is why its gradient is just
# the sigmoid's local gradient.
#
# ### Exercise 1 (2 points): the sigmoid neuron, forward and backward
#
# Write `neuron(w, x)` for a neuron with $n$ inputs,
# $f = \sigma(w_0 x_0 + \dots + w_{n-1}x_{n-1} + w_n)$. Compute the forward
# value and both gradients with the rules above (the `sigmoid` function of
# the first code cell is yours to use). Do not change `w` or `x`.

# %% solution="neuron" exact=true
def neuron(w, x):
    """A sigmoid neuron and its gradients.

    w: 1-D array of n + 1 weights (the last one, w[n], is the bias);
    x: 1-D array of n inputs.
    Returns (f, dw, dx): f = sigmoid(w[0] x[0] + ... + w[n-1] x[n-1] + w[n]),
    a float; dw = df/dw, an array of shape (n + 1,); dx = df/dx, an array of
    shape (n,).
    """
    ### BEGIN SOLUTION
    z = w[:-1] @ x + w[-1]
    f = sigmoid(z)
    dz = f * (1.0 - f)  # the sigmoid gate's local gradient, times df/df = 1
    dw = np.append(x, 1.0) * dz  # mul gates swap; the bias's input is 1
    dx = w[:-1] * dz
    return f, dw, dx
    ### END SOLUTION


# %% test="test_neuron" points=2
def _check_neuron(w, x, where):
    w_in, x_in = np.array(w, dtype=float), np.array(x, dtype=float)
    result = neuron(w_in.copy(), x_in.copy())
    if not isinstance(result, tuple) or len(result) != 3:
        raise grading.GradingError(f"neuron{where} should return a tuple (f, dw, dx), got "
                                   f"{result!r}.")
    f, dw, dx = result
    n = len(x_in)
    # the reference engine
    wt, xt = ad.tensor(w_in, requires_grad=True), ad.tensor(x_in, requires_grad=True)
    ft = ad.sigmoid((wt[:n] * xt).sum() + wt[n])
    ft.backward()
    s = ft.item()
    grading.assert_close(f, s, name=f"f of neuron{where}", rtol=1e-10, atol=1e-12)
    dx = np.asarray(dx, dtype=float) if dx is not None else None
    dw = np.asarray(dw, dtype=float) if dw is not None else None
    for got, want, what, inputs in [(dx, xt.grad.numpy(), "dx", w_in[:n]),
                                    (dw, wt.grad.numpy(), "dw", np.append(x_in, 1.0))]:
        if got is not None and got.shape == want.shape:
            if np.allclose(got, inputs, rtol=1e-9, atol=1e-12):
                raise grading.GradingError(
                    f"{what} of neuron{where} equals the mul gates' local gradients alone: "
                    "multiply by the local gradient of the sigmoid gate, "
                    "sigma(z) (1 - sigma(z)) (chain rule).")
            if np.allclose(got, s * inputs, rtol=1e-9, atol=1e-12):
                raise grading.GradingError(
                    f"{what} of neuron{where} uses sigma(z) as the sigmoid's local gradient; "
                    "the derivative is sigma'(z) = sigma(z) (1 - sigma(z)).")
        grading.assert_close(got, want, rtol=1e-10, atol=1e-12,
                             name=(f"{what} of neuron{where}"
                                   + (" (its last entry is df/dw[n], the bias, whose input "
                                      "is 1)" if what == "dw" else "")))


with grading.exercise(1, "neuron"):
    # the worked example: f = sigma(1) = 0.7311, dx = [0.3932, -0.5898],
    # dw = [-0.1966, -0.3932, 0.1966]
    _check_neuron([2.0, -3.0, -3.0], [-1.0, -2.0], "([2, -3, -3], [-1, -2])")
    _f, _dw, _dx = neuron(np.array([2.0, -3.0, -3.0]), np.array([-1.0, -2.0]))
    grading.assert_close(_dx, [0.39322387, -0.5898358], rtol=1e-6,
                         name="dx of neuron([2, -3, -3], [-1, -2])")
    grading.assert_close(_dw, [-0.19661193, -0.39322387, 0.19661193], rtol=1e-6,
                         name="dw of neuron([2, -3, -3], [-1, -2])")
    # one input
    _check_neuron([0.5, 1.0], [2.0], "([0.5, 1.0], [2.0])")
grading.passed("neuron")
### BEGIN HIDDEN TESTS
_rng = np.random.default_rng()
for _ in range(4):
    _n = int(_rng.integers(1, 8))
    _w, _x = _rng.uniform(-2, 2, _n + 1), _rng.uniform(-2, 2, _n)
    _check_neuron(_w, _x, f" with {_n} random inputs")
    _w_before, _x_before = _w.copy(), _x.copy()
    neuron(_w, _x)
    if not (np.array_equal(_w, _w_before) and np.array_equal(_x, _x_before)):
        raise grading.GradingError("neuron changed its argument w or x in place.")
### END HIDDEN TESTS

# %% [markdown]
# ### Play with the circuits
#
# Choose a circuit and move the sliders: the drawing shows each box's value
# and, in red, the gradient of the output with respect to it. Each circuit
# starts at its own worked example. Things to try:
#
# * in $(x + y)\,z$: the gradients of $x$ and $y$ are always equal (add
#   distributes), and equal to $z$; the gradient of $z$ is $x + y$;
# * in $2(xy + \max(z, w))$: slide $w$ above $z$ and watch the gradient
#   jump from $z$ to $w$ (max routes); the gradient of $x$ is $2y$ (mul swaps);
# * in the neuron: make $|z|$ large (say $w_2 = 5$) and every gradient
#   nearly vanishes, because $\sigma'(z) = \sigma(1-\sigma)$ is tiny when the
#   sigmoid saturates. This is the "vanishing gradient" of saturated units.

# %%
def neuron_circuit(w0, w1, w2, x0, x1):
    z = named(named(w0 * x0, "w0*x0") + named(w1 * x1, "w1*x1") + w2, "z")
    return named(ad.sigmoid(z), "f")


CIRCUITS = {  # name: (the function, its worked example: every circuit starts at its own)
    "(x + y) * z": (add_mul, dict(x=-2.0, y=5.0, z=-4.0)),
    "2 * (x*y + max(z, w))": (gate_patterns, dict(x=3.0, y=-4.0, z=2.0, w=-1.0)),
    "sigmoid(w0*x0 + w1*x1 + w2)": (neuron_circuit,
                                    dict(w0=2.0, w1=-3.0, w2=-3.0, x0=-1.0, x1=-2.0)),
}


def show_circuit(fn, **values):
    g = ad.viz.circuit(fn, **values)
    print(f"f = {g.output.item():.4f}    "
          + "    ".join(f"df/d{n} = {g.inputs[n].grad.item():.4f}" for n in values))
    display(g)


def circuit_panel(fn, start):
    """Sliders (step 0.25, so every worked value is hit exactly) and the drawing."""
    sliders = {n: widgets.FloatSlider(value=v, min=-5, max=5, step=0.25, description=n,
                                      continuous_update=False,
                                      style={"description_width": "initial"})
               for n, v in start.items()}
    view = widgets.interactive_output(lambda **vals: show_circuit(fn, **vals), sliders)
    return widgets.VBox([widgets.HBox(list(sliders.values())[:3]),
                         widgets.HBox(list(sliders.values())[3:]), view])


panels = {name: circuit_panel(fn, start) for name, (fn, start) in CIRCUITS.items()}
choice = widgets.Dropdown(options=list(CIRCUITS), description="circuit",
                          style={"description_width": "initial"},
                          layout=widgets.Layout(width="400px"))


def switch_circuit(change=None):
    for name, panel in panels.items():  # show only the chosen circuit's panel
        panel.layout.display = None if name == choice.value else "none"


choice.observe(switch_circuit, names="value")
switch_circuit()
display(widgets.VBox([choice, *panels.values()]))

# %% [markdown]
# ## 5. Backpropagation in stages, by hand
#
# Real expressions are longer, and the safe way to differentiate them by
# hand is the way an engine does it. Take
#
# $$
# f(x, y) = \frac{x + \sigma(y)}{\sigma(x) + (x + y)^2}
# \qquad\text{at } x = 3,\ y = -4.
# $$
#
# Writing out $\partial f/\partial x$ as a formula is a mess. Instead, break
# the **forward pass** into stages, one simple operation each, and keep
# every intermediate:
#
# | stage | value at $(3, -4)$ |
# |---|---|
# | `sigy = sigmoid(y)` | $0.017986$ |
# | `num = x + sigy` | $3.017986$ |
# | `sigx = sigmoid(x)` | $0.952574$ |
# | `xpy = x + y` | $-1$ |
# | `xpysqr = xpy ** 2` | $1$ |
# | `den = sigx + xpysqr` | $1.952574$ |
# | `invden = 1 / den` | $0.512144$ |
# | `f = num * invden` | $1.545645$ |
#
# The **backward pass** has one stage per forward stage, in reverse order.
# For each variable `v` we keep `dv`, the derivative of $f$ with respect to
# `v`. It starts at `df = 1`, and each forward line `c = op(a, b)` becomes
# "`da` and `db` receive `dc` times the local gradient". The local rules
# needed here:
#
# | forward | backward |
# |---|---|
# | `c = a + b` | `da += dc`, `db += dc` |
# | `c = a * b` | `da += b * dc`, `db += a * dc` |
# | `c = a ** 2` | `da += 2 * a * dc` |
# | `c = 1 / a` | `da += -1 / a**2 * dc` |
# | `c = sigmoid(a)` | `da += c * (1 - c) * dc` |
#
# **Why `+=`.** A variable that is used in several places has several paths
# to the output (section 2), and its gradient is the sum of their
# contributions. Here `x` is used three times (in `num`, `sigx` and `xpy`) and
# `y` twice (in `sigy` and `xpy`). Each use adds its contribution to `dx`
# (or `dy`) when the backward pass reaches it; writing `dx = ...` a second
# time would throw away what the first use added. For variables used once,
# `=` and `+=` (from zero) are the same.
#
# At $(3, -4)$ the contributions to `dx` are $1.5832$ (through `xpy`),
# $-0.0358$ (through `sigx`) and $0.5121$ (through `num`); the result is
# $\partial f/\partial x \approx 2.0596$ and $\partial f/\partial y \approx
# 1.5922$.
#
# ### Exercise 2 (3 points): the staged backward pass
#
# Complete `staged_backprop`. The forward pass is written for you; write the
# backward pass with one line (or two, for `+=`) per forward stage, in
# reverse order, using only the stored intermediates and plain arithmetic
# (no `autodiff_ref`, no finite differences). The test checks the gradient of
# every intermediate in the order the backward pass computes them, so its
# message points at the first stage that goes wrong.

# %% solution="staged_backprop" exact=true
def staged_backprop(x, y):
    """f(x, y) = (x + sigmoid(y)) / (sigmoid(x) + (x + y)**2) and all its adjoints.

    x, y: floats.
    Returns (f, grads): f a float; grads a dict that maps each of the names
    "x", "y", "sigy", "num", "sigx", "xpy", "xpysqr", "den", "invden" to the
    derivative of f with respect to that variable (a float).
    """
    # forward pass: keep every intermediate, the backward pass needs them
    sigy = sigmoid(y)
    num = x + sigy
    sigx = sigmoid(x)
    xpy = x + y
    xpysqr = xpy**2
    den = sigx + xpysqr
    invden = 1.0 / den
    f = num * invden
    # backward pass: compute dnum, dinvden, dden, dsigx, dxpysqr, dxpy, dsigy, dx, dy
    ### BEGIN SOLUTION
    dnum = invden
    dinvden = num
    dden = -1.0 / den**2 * dinvden
    dsigx = dden
    dxpysqr = dden
    dxpy = 2 * xpy * dxpysqr
    dx = dxpy  # first use of x: xpy = x + y
    dy = dxpy  # first use of y
    dx += sigx * (1 - sigx) * dsigx  # second use of x: sigx = sigmoid(x)
    dx += dnum  # third use of x: num = x + sigy
    dsigy = dnum
    dy += sigy * (1 - sigy) * dsigy  # second use of y: sigy = sigmoid(y)
    ### END SOLUTION
    return f, {"x": dx, "y": dy, "sigy": dsigy, "num": dnum, "sigx": dsigx, "xpy": dxpy,
               "xpysqr": dxpysqr, "den": dden, "invden": dinvden}


# %% test="test_staged_backprop" points=3
_USES = {"x": ["xpy", "sigx", "num"], "y": ["xpy", "sigy"]}  # the stages that read x, y


def _staged_reference(x, y):
    """f, df/dv for every variable v, and df/dv through each use of x and y: autodiff_ref."""
    t = {"x": ad.tensor(x, requires_grad=True), "y": ad.tensor(y, requires_grad=True)}
    with ad.viz.trace():  # every intermediate keeps its gradient
        t["sigy"], t["sigx"] = ad.sigmoid(t["y"]), ad.sigmoid(t["x"])
        t["num"], t["xpy"] = t["x"] + t["sigy"], t["x"] + t["y"]
        t["xpysqr"] = t["xpy"] ** 2
        t["den"] = t["sigx"] + t["xpysqr"]
        t["invden"] = 1.0 / t["den"]
        out = t["num"] * t["invden"]
    out.backward(retain_graph=True)
    paths = {v: {s: ad.grad(t[s], t[v], grad_outputs=t[s].grad, retain_graph=True)[0].item()
                 for s in uses} for v, uses in _USES.items()}
    return out.item(), {k: v.grad.item() for k, v in t.items()}, paths


def _check_staged(x, y):
    call = f"staged_backprop({x:.6g}, {y:.6g})"
    f, grads = staged_backprop(float(x), float(y))
    ref_f, ref, paths = _staged_reference(x, y)
    grading.assert_close(f, ref_f, name=f"f of {call}", rtol=1e-12)
    if not isinstance(grads, dict) or set(grads) != set(ref):
        raise grading.GradingError(f"the grads of {call} should be a dict with the keys "
                                   f"{sorted(ref)}, got {grads!r}.")
    for key in ["num", "invden", "den", "sigx", "xpysqr", "xpy", "sigy"]:  # backward order
        grading.assert_close(grads[key], ref[key], rtol=1e-10, atol=1e-12,
                             name=f"grads['{key}'] = df/d{key} of {call}")
    for var in "xy":  # one contribution per use of x (three) and of y (two)
        grading.assert_sum_of_parts(grads[var], paths[var], name=f"grads['{var}'] of {call}")


with grading.exercise(2, "staged_backprop"):
    # every adjoint vs autodiff_ref, in the order the backward pass computes them,
    # then the worked numbers: f = 1.5456, df/dx = 2.0596, df/dy = 1.5922
    _check_staged(3.0, -4.0)
    _f, _grads = staged_backprop(3.0, -4.0)
    grading.assert_close([_f, _grads["x"], _grads["y"]], [1.5456, 2.0596, 1.5922], rtol=0,
                         atol=5e-5, name="(f, df/dx, df/dy) of staged_backprop(3.0, -4.0)")
grading.passed("staged_backprop")
### BEGIN HIDDEN TESTS
_rng = np.random.default_rng()
for _ in range(5):
    _check_staged(float(_rng.uniform(-3, 3)), float(_rng.uniform(-3, 3)))
### END HIDDEN TESTS

# %% [markdown]
# Notice what the backward pass needed: `sigx`, `sigy`, `xpy`, `den`, `num`
# and `invden`, values of the forward pass. Reverse mode must **store the
# intermediates** of the forward pass until the backward pass has used them.
# For a deep network that memory (every activation of every layer, for a
# whole batch) is the main **memory** cost of training, often larger than the
# parameters themselves.
#
# ## 6. Forward mode and reverse mode
#
# There are two ways to organise the chain rule on a graph.
#
# **Forward mode** picks one input direction and carries, next to each value
# $v$, its **tangent** $\dot v = \partial v / \partial x_j$ (more generally
# the derivative of $v$ along a direction $\dot x$ of the inputs). Tangents
# flow in the same direction as values, so both are computed in one pass.
# For $y = \ln x_1 + x_1 x_2 - \sin x_2$ at $(2, 5)$, with the seed
# $\dot x = (1, 0)$ for $\partial/\partial x_1$ and a second pass with
# $\dot x = (0, 1)$ for $\partial/\partial x_2$:
#
# | node | value | tangent rule | pass 1: $\dot x = (1, 0)$ | pass 2: $\dot x = (0, 1)$ |
# |---|---|---|---|---|
# | $v_{-1} = x_1$ | $2$ | seed | $1$ | $0$ |
# | $v_0 = x_2$ | $5$ | seed | $0$ | $1$ |
# | $v_1 = \ln v_{-1}$ | $0.6931$ | $\dot v_1 = \dot v_{-1} / v_{-1}$ | $0.5$ | $0$ |
# | $v_2 = v_{-1} v_0$ | $10$ | $\dot v_2 = \dot v_{-1} v_0 + v_{-1} \dot v_0$ | $5$ | $2$ |
# | $v_3 = \sin v_0$ | $-0.9589$ | $\dot v_3 = \cos(v_0)\,\dot v_0$ | $0$ | $0.2837$ |
# | $v_4 = v_1 + v_2$ | $10.6931$ | $\dot v_4 = \dot v_1 + \dot v_2$ | $5.5$ | $2$ |
# | $y = v_5 = v_4 - v_3$ | $11.6521$ | $\dot v_5 = \dot v_4 - \dot v_3$ | $\mathbf{5.5}$ | $\mathbf{1.7163}$ |
#
# One pass gives one column of the Jacobian: $n$ inputs need $n$ passes.
# In exchange forward mode keeps **no tape**: nothing is stored for a later
# pass, because each tangent is used in the same sweep that computes it. A
# tangent lives exactly as long as its value: $\dot v_{-1}$ is still needed
# after $v_1$ is computed, because $v_2$ also reads $v_{-1}$ (fan-out). So
# forward mode needs about as much memory as evaluating the function once,
# times two, while reverse mode needs every intermediate at once.
#
# **Common mistake:** "forward mode needs no memory". It needs no *tape*,
# no record of the forward pass for a backward pass. It still holds a
# tangent beside every value that is alive, and a value used by several
# later steps (fan-out) keeps its tangent alive until its last use.
#
# **Reverse mode** runs the forward pass once, storing the values, then
# carries **adjoints** $\bar v = \partial y / \partial v$ from the output
# back, as in sections 4 and 5: $\bar v_5 = \bar y = 1$; $\bar v_4 = 1$ and
# $\bar v_3 = -1$; $\bar v_1 = \bar v_2 = \bar v_4 = 1$; then
# $\bar v_{-1} = \bar v_1 / v_{-1} + \bar v_2\, v_0 = 0.5 + 5 = 5.5$ and
# $\bar v_0 = \bar v_2\, v_{-1} + \bar v_3 \cos v_0 = 2 - 0.2837 = 1.7163$.
# **One** backward pass gives the whole gradient (a row of the Jacobian),
# however many inputs there are.
#
# ### Dual numbers
#
# Forward mode has a neat algebraic form. Extend the real numbers with a
# symbol $\varepsilon$ such that $\varepsilon^2 = 0$ (but $\varepsilon \ne
# 0$), and write a **dual number** $a + \dot a\,\varepsilon$. The arithmetic
# follows from $\varepsilon^2 = 0$:
#
# $$
# \begin{aligned}
# (a + \dot a\varepsilon) \pm (b + \dot b\varepsilon) &= (a \pm b) + (\dot a \pm \dot b)\,\varepsilon,\\
# (a + \dot a\varepsilon)(b + \dot b\varepsilon) &= ab + (\dot a b + a \dot b)\,\varepsilon,\\
# \frac{a + \dot a\varepsilon}{b + \dot b\varepsilon} &= \frac{a}{b} + \frac{\dot a b - a\dot b}{b^2}\,\varepsilon ,
# \end{aligned}
# $$
#
# and Taylor's expansion stops after the first term, so for any smooth $g$,
#
# $$
# g(a + \dot a\varepsilon) = g(a) + g'(a)\,\dot a\,\varepsilon ,
# \qquad\text{e.g.}\quad
# \sin(a + \dot a\varepsilon) = \sin a + \cos(a)\,\dot a\,\varepsilon,\quad
# (a + \dot a\varepsilon)^p = a^p + p\,a^{p-1}\dot a\,\varepsilon .
# $$
#
# The $\varepsilon$ part is the tangent, and these are exactly the product,
# quotient and chain rules. So if we run an **unchanged** program on dual
# numbers, seeded with $x + \dot x\,\varepsilon$, the output's $\varepsilon$
# part is the derivative along $\dot x$. In Python, operator overloading
# (`__add__`, `__mul__`, ...) lets a class of dual numbers flow through
# ordinary code; the derivative is exact (no step size, no round-off
# amplification) because nothing is subtracted and divided by a small number.
#
# ### Exercise 3 (3 points): forward-mode AD with dual numbers
#
# Complete the class `Dual` (a value and a tangent) and the four functions
# `sin`, `cos`, `exp`, `log` below it. Every operation returns a **new**
# `Dual` (never change `self` or `other`). The operations with a plain number
# on either side (`2 * u`, `u - 1`, `1 / u`, ...) treat it as a constant,
# a `Dual` with tangent 0: `as_dual` does that conversion for you. For `**`,
# the exponent is a plain number (`u ** 2`, `u ** -0.5`). Use NumPy (or
# `math`) for the values; no complex numbers and no finite differences.

# %% solution="dual_numbers" exact=true dunder_methods=true
class Dual:
    """A dual number value + tangent * eps with eps**2 = 0 (forward-mode AD).

    Dual(3.0, 1.0) is the input x = 3 seeded with dx = 1; Dual(3.0) is the
    constant 3 (tangent 0).
    """

    def __init__(self, value, tangent=0.0):
        ### BEGIN SOLUTION
        self.value = value
        self.tangent = tangent
        ### END SOLUTION

    def __repr__(self):
        return f"Dual({self.value!r}, {self.tangent!r})"

    def __add__(self, other):  # self + other
        ### BEGIN SOLUTION
        other = as_dual(other)
        return Dual(self.value + other.value, self.tangent + other.tangent)
        ### END SOLUTION

    def __radd__(self, other):  # other + self, when other is a plain number
        ### BEGIN SOLUTION
        return as_dual(other) + self
        ### END SOLUTION

    def __sub__(self, other):  # self - other
        ### BEGIN SOLUTION
        other = as_dual(other)
        return Dual(self.value - other.value, self.tangent - other.tangent)
        ### END SOLUTION

    def __rsub__(self, other):  # other - self
        ### BEGIN SOLUTION
        return as_dual(other) - self
        ### END SOLUTION

    def __neg__(self):  # -self
        ### BEGIN SOLUTION
        return Dual(-self.value, -self.tangent)
        ### END SOLUTION

    def __mul__(self, other):  # self * other
        ### BEGIN SOLUTION
        other = as_dual(other)
        return Dual(self.value * other.value,
                    self.tangent * other.value + self.value * other.tangent)
        ### END SOLUTION

    def __rmul__(self, other):  # other * self
        ### BEGIN SOLUTION
        return as_dual(other) * self
        ### END SOLUTION

    def __truediv__(self, other):  # self / other
        ### BEGIN SOLUTION
        other = as_dual(other)
        return Dual(self.value / other.value,
                    (self.tangent * other.value - self.value * other.tangent)
                    / other.value**2)
        ### END SOLUTION

    def __rtruediv__(self, other):  # other / self
        ### BEGIN SOLUTION
        return as_dual(other) / self
        ### END SOLUTION

    def __pow__(self, p):  # self ** p for a plain number p
        ### BEGIN SOLUTION
        return Dual(self.value**p, p * self.value ** (p - 1) * self.tangent)
        ### END SOLUTION


def as_dual(u):
    """A Dual unchanged; a plain number c as the constant Dual(c, 0.0)."""
    return u if isinstance(u, Dual) else Dual(u, 0.0)


def sin(u):
    """sin of a Dual (or of a plain number, as a constant Dual)."""
    u = as_dual(u)
    ### BEGIN SOLUTION
    return Dual(np.sin(u.value), np.cos(u.value) * u.tangent)
    ### END SOLUTION


def cos(u):
    """cos of a Dual."""
    u = as_dual(u)
    ### BEGIN SOLUTION
    return Dual(np.cos(u.value), -np.sin(u.value) * u.tangent)
    ### END SOLUTION


def exp(u):
    """exp of a Dual."""
    u = as_dual(u)
    ### BEGIN SOLUTION
    e = np.exp(u.value)
    return Dual(e, e * u.tangent)
    ### END SOLUTION


def log(u):
    """Natural logarithm of a Dual (value > 0)."""
    u = as_dual(u)
    ### BEGIN SOLUTION
    return Dual(np.log(u.value), u.tangent / u.value)
    ### END SOLUTION


# %% test="test_dual_numbers" points=3
def _expect_dual(got, value, tangent, what, rule):
    if not isinstance(got, Dual):
        raise grading.GradingError(f"{what} should return a Dual, got {got!r}. Did you "
                                   "forget `return`?")
    grading.assert_close(got.value, value, name=f"the value of {what} ({rule})",
                         rtol=1e-12, atol=1e-14)
    grading.assert_close(got.tangent, tangent, name=f"the tangent of {what} ({rule})",
                         rtol=1e-12, atol=1e-14)


def _expect_op(op, value, tangent, what, rule):
    """op(a, b) on fresh operands a = Dual(2, 1), b = Dual(3, 0.5)."""
    a, b = Dual(2.0, 1.0), Dual(3.0, 0.5)
    got = op(a, b)
    if (a.value, a.tangent, b.value, b.tangent) != (2.0, 1.0, 3.0, 0.5):
        raise grading.GradingError(
            f"{what} changed its operands in place: afterwards Dual(2, 1) is {a!r} and "
            f"Dual(3, 0.5) is {b!r}. Return a new Dual and leave self and other alone.")
    _expect_dual(got, value, tangent, what, rule)


with grading.exercise(3, "Dual"):
    _a = Dual(2.0, 1.0)
    if not (getattr(_a, "value", None) == 2.0 and getattr(_a, "tangent", None) == 1.0):
        raise grading.GradingError("Dual(2.0, 1.0) should store value = 2.0 and tangent = 1.0 "
                                   "(the attributes .value and .tangent).")
    _expect_dual(Dual(7.0), 7.0, 0.0, "Dual(7.0)", "a constant has tangent 0")
    _expect_op(lambda a, b: a + b, 5.0, 1.5, "Dual(2, 1) + Dual(3, 0.5)", "tangents add")
    _expect_op(lambda a, b: a - b, -1.0, 0.5, "Dual(2, 1) - Dual(3, 0.5)", "tangents subtract")
    _expect_op(lambda a, b: a * b, 6.0, 4.0, "Dual(2, 1) * Dual(3, 0.5)",
               "product rule: 1 * 3 + 2 * 0.5 = 4")
    _expect_op(lambda a, b: a / b, 2 / 3, 2 / 9, "Dual(2, 1) / Dual(3, 0.5)",
               "quotient rule: (1 * 3 - 2 * 0.5) / 3**2 = 2/9")
    _expect_op(lambda a, b: -a, -2.0, -1.0, "-Dual(2, 1)", "negate both parts")
    _expect_op(lambda a, b: a**3, 8.0, 12.0, "Dual(2, 1) ** 3", "3 * 2**2 * 1 = 12")
    _expect_op(lambda a, b: b**-0.5, 3**-0.5, -0.5 * 3**-1.5 * 0.5, "Dual(3, 0.5) ** -0.5",
               "p * value**(p - 1) * tangent")
    # a plain number on either side is a constant
    _expect_op(lambda a, b: a + 10.0, 12.0, 1.0, "Dual(2, 1) + 10.0", "a constant has tangent 0")
    _expect_op(lambda a, b: 10.0 + a, 12.0, 1.0, "10.0 + Dual(2, 1)",
               "__radd__: a constant has tangent 0")
    _expect_op(lambda a, b: a - 10.0, -8.0, 1.0, "Dual(2, 1) - 10.0", "a constant has tangent 0")
    _expect_op(lambda a, b: 10.0 - a, 8.0, -1.0, "10.0 - Dual(2, 1)",
               "__rsub__(self, other) computes other - self")
    _expect_op(lambda a, b: a * 3.0, 6.0, 3.0, "Dual(2, 1) * 3.0", "(c u)' = c u'")
    _expect_op(lambda a, b: 3.0 * a, 6.0, 3.0, "3.0 * Dual(2, 1)", "__rmul__: (c u)' = c u'")
    _expect_op(lambda a, b: a / 4.0, 0.5, 0.25, "Dual(2, 1) / 4.0", "(u / c)' = u' / c")
    _expect_op(lambda a, b: 1.0 / a, 0.5, -0.25, "1.0 / Dual(2, 1)",
               "__rtruediv__(self, other) computes other / self; (1/u)' = -u' / u**2")
    # the four functions
    _expect_op(lambda a, b: sin(a), np.sin(2.0), np.cos(2.0), "sin(Dual(2, 1))", "sin' = cos")
    _expect_op(lambda a, b: cos(a), np.cos(2.0), -np.sin(2.0), "cos(Dual(2, 1))", "cos' = -sin")
    _expect_op(lambda a, b: cos(b), np.cos(3.0), -0.5 * np.sin(3.0), "cos(Dual(3, 0.5))",
               "chain rule: -sin(3) times the tangent 0.5")
    _expect_op(lambda a, b: exp(b), np.exp(3.0), 0.5 * np.exp(3.0), "exp(Dual(3, 0.5))",
               "exp' = exp, times the tangent 0.5")
    _expect_op(lambda a, b: log(b), np.log(3.0), 0.5 / 3.0, "log(Dual(3, 0.5))",
               "log' = 1/x, times the tangent 0.5")
    _expect_op(lambda a, b: sin(b), np.sin(3.0), 0.5 * np.cos(3.0), "sin(Dual(3, 0.5))",
               "chain rule: cos(3) times the tangent 0.5")
    # the worked example, one forward pass per input
    _y1 = log(Dual(2.0, 1.0)) + Dual(2.0, 1.0) * Dual(5.0, 0.0) - sin(Dual(5.0, 0.0))
    _y2 = log(Dual(2.0, 0.0)) + Dual(2.0, 0.0) * Dual(5.0, 1.0) - sin(Dual(5.0, 1.0))
    _expect_dual(_y1, np.log(2) + 10 - np.sin(5), 5.5,
                 "ln(x1) + x1 x2 - sin(x2) at (2, 5) seeded with (1, 0)", "dy/dx1 = 1/2 + 5")
    _expect_dual(_y2, np.log(2) + 10 - np.sin(5), 2 - np.cos(5),
                 "ln(x1) + x1 x2 - sin(x2) at (2, 5) seeded with (0, 1)", "dy/dx2 = 2 - cos 5")
grading.passed("Dual")
### BEGIN HIDDEN TESTS
_rng = np.random.default_rng()


def _expression(rng, n, depth):
    """A random expression in n inputs: (its text, fn) with fn(ops, xs) its value."""
    if depth == 0 or rng.random() < 0.15:
        i = int(rng.integers(n))
        return f"x{i + 1}", lambda O, xs: xs[i]
    c = float(np.round(rng.uniform(0.5, 2.5), 2) * rng.choice([-1.0, 1.0]))
    p = float(rng.choice([2.0, 3.0, -1.0, 0.5, 1.5, -0.5]))
    ta, fa = _expression(rng, n, depth - 1)
    kind = int(rng.integers(17))
    if kind < 4:
        tb, fb = _expression(rng, n, depth - 1)
        return [(f"({ta}) + ({tb})", lambda O, xs: fa(O, xs) + fb(O, xs)),
                (f"({ta}) - ({tb})", lambda O, xs: fa(O, xs) - fb(O, xs)),
                (f"({ta}) * ({tb})", lambda O, xs: fa(O, xs) * fb(O, xs)),
                (f"({ta}) / (1.5 + ({tb})**2)",
                 lambda O, xs: fa(O, xs) / (1.5 + fb(O, xs) ** 2))][kind]
    return [(f"{c} + ({ta})", lambda O, xs: c + fa(O, xs)),
            (f"({ta}) + {c}", lambda O, xs: fa(O, xs) + c),
            (f"({ta}) - {c}", lambda O, xs: fa(O, xs) - c),
            (f"{c} - ({ta})", lambda O, xs: c - fa(O, xs)),
            (f"{c} * ({ta})", lambda O, xs: c * fa(O, xs)),
            (f"({ta}) * {c}", lambda O, xs: fa(O, xs) * c),
            (f"({ta}) / {c}", lambda O, xs: fa(O, xs) / c),
            (f"{c} / (2 + sin({ta}))", lambda O, xs: c / (2 + O["sin"](fa(O, xs)))),
            (f"-({ta})", lambda O, xs: -fa(O, xs)),
            (f"sin({ta})", lambda O, xs: O["sin"](fa(O, xs))),
            (f"cos({ta})", lambda O, xs: O["cos"](fa(O, xs))),
            (f"exp(sin({ta}))", lambda O, xs: O["exp"](O["sin"](fa(O, xs)))),
            (f"log(1 + ({ta})**2)", lambda O, xs: O["log"](1 + fa(O, xs) ** 2)),
            (f"(1 + ({ta})**2) ** {p}", lambda O, xs: (1 + fa(O, xs) ** 2) ** p),
            ][kind - 4]


_STUDENT = {"sin": sin, "cos": cos, "exp": exp, "log": log}
_ENGINE = {"sin": ad.sin, "cos": ad.cos, "exp": ad.exp, "log": ad.log}
for _ in range(30):
    _n = int(_rng.integers(1, 4))
    _text, _fn = _expression(_rng, _n, int(_rng.integers(1, 4)))
    _x = [float(v) for v in _rng.uniform(-1.5, 1.5, _n)]
    _v = [float(v) for v in _rng.standard_normal(_n)]
    _got = _fn(_STUDENT, [Dual(xi, vi) for xi, vi in zip(_x, _v)])
    _val, _tan = ad.functional.jvp(lambda *ts: _fn(_ENGINE, ts),
                                   tuple(ad.tensor(xi) for xi in _x),
                                   tuple(ad.tensor(vi) for vi in _v))
    _where = (f"{_text} at x = {np.round(_x, 4).tolist()} with tangents "
              f"{np.round(_v, 4).tolist()}, compared with ad.functional.jvp")
    if not isinstance(_got, Dual):
        raise grading.GradingError(f"{_where}: expected a Dual, got {_got!r}.")
    grading.assert_close(_got.value, _val.item(), name=f"the value of {_where}",
                         rtol=1e-10, atol=1e-12)
    grading.assert_close(_got.tangent, _tan.item(), name=f"the tangent of {_where}",
                         rtol=1e-10, atol=1e-11)
### END HIDDEN TESTS

# %% [markdown]
# With `Dual` in place, the worked example runs as ordinary code. Note that
# the function below is written once, without any derivative in it; only the
# seeds decide which derivative comes out.

# %%
def y_example(x1, x2):
    return log(x1) + x1 * x2 - sin(x2)


try:
    pass_1 = y_example(Dual(2.0, 1.0), Dual(5.0, 0.0))
    pass_2 = y_example(Dual(2.0, 0.0), Dual(5.0, 1.0))
    print(f"pass 1: y = {pass_1.value:.4f}, dy/dx1 = {pass_1.tangent:.4f}")
    print(f"pass 2: y = {pass_2.value:.4f}, dy/dx2 = {pass_2.tangent:.4f}")
    slant = y_example(Dual(2.0, 1.0), Dual(5.0, 1.0))
    print(f"seed (1, 1): the derivative along (1, 1) is {slant.tangent:.4f} = 5.5 + 1.7163")
except NotImplementedError:
    print("Finish Exercise 3 (the Dual class) to run this cell.")

# %% [markdown]
# ### Exercise 4 (1 point): a whole gradient by forward mode
#
# Write `forward_gradient(f, point)`: the gradient of a scalar function of
# $n$ numbers, computed with your `Dual` class and **exactly $n$ calls** of
# `f` (one forward pass per input, seeded with tangent 1 on that input and 0
# on the others). The test counts the calls.

# %% solution="forward_gradient" exact=true
def forward_gradient(f, point):
    """The gradient of f at point by forward mode, one pass per input.

    f: a function of n arguments (Duals) that returns a Dual;
    point: a sequence of n floats.
    Returns a 1-D float array of length n whose entry k is df/dx_k at point.
    """
    ### BEGIN SOLUTION
    gradient = np.zeros(len(point))
    for k in range(len(point)):
        seeds = [Dual(v, 1.0 if j == k else 0.0) for j, v in enumerate(point)]
        gradient[k] = f(*seeds).tangent
    return gradient
    ### END SOLUTION


# %% test="test_forward_gradient" points=1
try:
    _ok = Dual(2.0, 1.0) * Dual(3.0, 0.0)
except NotImplementedError:
    raise grading.GradingError("forward_gradient needs the Dual class of Exercise 3: "
                               "finish it first.") from None


def _counting(f):
    def counted(*args):
        counted.calls += 1
        return f(*args)
    counted.calls = 0
    return counted


def _check_forward_gradient(f, point, expected, what):
    g = _counting(f)
    got = forward_gradient(g, list(point))
    if isinstance(got, (list, tuple)) and any(isinstance(v, Dual) for v in got):
        raise grading.GradingError(f"forward_gradient of {what} returned Duals: {got!r}. "
                                   "Return an array of numbers, the tangents of the outputs.")
    if g.calls != len(point):
        raise grading.GradingError(
            f"forward_gradient of {what} called f {g.calls} times for {len(point)} inputs; "
            "forward mode needs exactly one pass per input (seed tangent 1 on that input, "
            "0 on the others).")
    grading.assert_close(got, expected, name=f"forward_gradient of {what}", rtol=1e-10,
                         atol=1e-12)


with grading.exercise(4, "forward_gradient"):
    _check_forward_gradient(lambda x1, x2: log(x1) + x1 * x2 - sin(x2), [2.0, 5.0],
                            [5.5, 2 - np.cos(5.0)], "ln(x1) + x1 x2 - sin(x2) at (2, 5)")
    _check_forward_gradient(lambda a, b, c: a * b * c, [2.0, 3.0, 4.0], [12.0, 8.0, 6.0],
                            "a b c at (2, 3, 4)")
grading.passed("forward_gradient")
### BEGIN HIDDEN TESTS
_rng = np.random.default_rng()
for _ in range(4):
    _n = int(_rng.integers(1, 7))
    _c = _rng.uniform(-2, 2, _n)
    _point = _rng.uniform(0.2, 2.0, _n)

    def _f(*xs, _c=_c, _engine=False):
        total = 0.0
        for k, xk in enumerate(xs):
            s = ad.sin(xk) if _engine else sin(xk)
            total = total + float(_c[k]) * xk * s + xk**2 / (k + 1.0)
        if len(xs) > 1:
            total = total + xs[0] * xs[-1]
        return total

    _ts = [ad.tensor(float(v), requires_grad=True) for v in _point]
    _f(*_ts, _engine=True).backward()
    _check_forward_gradient(_f, [float(v) for v in _point], [t.grad.item() for t in _ts],
                            f"a random function of {_n} inputs")
### END HIDDEN TESTS

# %% [markdown]
# ## 7. JVP, VJP and what each mode costs
#
# The reference engine offers both products directly, with the call shapes of
# `torch.autograd.functional`:
#
# * `ad.functional.jvp(f, x, v)` returns $(f(x),\ J v)$ by forward mode:
#   one pass in which every primitive pushes a tangent (its `jvp` rule);
# * `ad.functional.vjp(f, x, u)` returns $(f(x),\ u^\top J)$ by reverse
#   mode: one forward pass, then one backward pass (each primitive's
#   `backward` rule).
#
# On our example, a JVP with $v = e_1$ gives $\partial y/\partial x_1$, a
# JVP with $v = (1, 1)$ the derivative along that direction, and a single VJP
# with $u = 1$ the whole gradient.

# %%
def y_engine(x1, x2):
    return ad.log(x1) + x1 * x2 - ad.sin(x2)


inputs = (ad.tensor(2.0), ad.tensor(5.0))
_, jvp_e1 = ad.functional.jvp(y_engine, inputs, (ad.tensor(1.0), ad.tensor(0.0)))
_, jvp_11 = ad.functional.jvp(y_engine, inputs, (ad.tensor(1.0), ad.tensor(1.0)))
value, vjp_1 = ad.functional.vjp(y_engine, inputs, ad.tensor(1.0))
print(f"y = {value.item():.4f}")
print(f"JVP with v = (1, 0): {jvp_e1.item():.4f}     JVP with v = (1, 1): {jvp_11.item():.4f}")
print(f"VJP with u = 1: ({vjp_1[0].item():.4f}, {vjp_1[1].item():.4f})")
assert np.isclose(jvp_e1.item(), 5.5) and np.isclose(jvp_11.item(), 7.5 - np.cos(5))
assert np.allclose([g.item() for g in vjp_1], [5.5, 2 - np.cos(5)])

# %% [markdown]
# ### A stack of layers, in both directions
#
# The engine's `jvp` and `vjp` work for any program. To see that there is no
# magic in them, write both sweeps yourself for a stack of $k$ layers
#
# $$
# h_0 = x, \qquad z_i = W_i\, h_{i-1}, \qquad h_i = a_i(z_i) \quad (i = 1, \dots, k),
# \qquad F(x) = h_k ,
# $$
#
# where $W_i$ has shape $n_i \times n_{i-1}$ and $a_i$ is an element-wise
# activation: `"tanh"`, `"sigmoid"` or `"sin"`. The recipe:
#
# 1. the Jacobian of one layer $h_{i-1} \mapsto h_i$ is the product of the
#    Jacobians of its two steps (section 3); notebook 02 gave both: a matrix
#    map $h \mapsto Wh$ and an element-wise function;
# 2. never build that $n_i \times n_{i-1}$ matrix. Apply it to a vector
#    instead: a diagonal matrix times a vector is an element-wise product,
#    and a row vector times $W$ is $W^\top$ times a column;
# 3. the **forward** sweep multiplies from the right, layer 1 first, carrying
#    the tangent $\dot h_i$ next to $h_i$ (section 6), and keeps only the
#    current layer;
# 4. the **reverse** sweep first runs the forward pass and keeps what the
#    backward pass will need, then carries the adjoint $\bar h_i$ from layer
#    $k$ back to layer 1 and returns $\bar h_0 = u^\top J_F$.
#
# For the activations, derive each derivative and decide whether to compute it
# from $z_i$ or from the output $h_i$: section 4 showed that the sigmoid's can
# be written with its output alone (no new exponential), and so can tanh's
# ($\tanh' = 1 - \tanh^2$). Which quantity a layer needs decides what the
# reverse sweep must store.
#
# ### Exercise 5 (3 points): JVP and VJP through a stack of layers
#
# Write `activation_slope(name, z, h)`, `layers_jvp(layers, x, v)` and
# `layers_vjp(layers, x, u)` with NumPy, following the recipe. `ACTIVATIONS`
# below maps each name to its NumPy function.

# %%
ACTIVATIONS = {"tanh": np.tanh, "sigmoid": sigmoid, "sin": np.sin}

# %% solution="layer_sweeps" exact=true
def activation_slope(name, z, h):
    """The derivative a'(z) of the activation `name`, element-wise.

    name: "tanh", "sigmoid" or "sin"; z: the pre-activation (an array);
    h: ACTIVATIONS[name](z), the layer's output, for rules that can use it.
    Returns an array of z's shape. Raises ValueError for an unknown name.
    """
    ### BEGIN SOLUTION
    if name == "tanh":
        return 1.0 - h**2
    if name == "sigmoid":
        return h * (1.0 - h)
    if name == "sin":
        return np.cos(z)
    raise ValueError(f"unknown activation {name!r}")
    ### END SOLUTION


def layers_jvp(layers, x, v):
    """Forward mode through the stack: (F(x), J_F(x) v) in one sweep.

    layers: a list of (W, name) pairs, W a 2-D array of shape (n_i, n_{i-1}),
    name a key of ACTIVATIONS; x, v: 1-D arrays of length n_0.
    Returns (h_k, t): two 1-D arrays of length n_k, the output and the
    Jacobian-vector product. Never builds a Jacobian matrix.
    """
    ### BEGIN SOLUTION
    h, t = x, v
    for W, name in layers:
        z = W @ h
        h = ACTIVATIONS[name](z)
        t = activation_slope(name, z, h) * (W @ t)
    return h, t
    ### END SOLUTION


def layers_vjp(layers, x, u):
    """Reverse mode through the stack: (F(x), u^T J_F(x)).

    layers, x: as in layers_jvp; u: a 1-D array of length n_k (the upstream
    gradient). Returns (h_k, g): the output (length n_k) and the
    vector-Jacobian product as a 1-D array of length n_0 (x's shape).
    One forward sweep that stores what is needed, one backward sweep; never
    builds a Jacobian matrix.
    """
    ### BEGIN SOLUTION
    h, stored = x, []
    for W, name in layers:
        z = W @ h
        h = ACTIVATIONS[name](z)
        stored.append((W, name, z, h))
    g = u
    for W, name, z, out in reversed(stored):
        g = W.T @ (activation_slope(name, z, out) * g)
    return h, g
    ### END SOLUTION


# %% test="test_layer_sweeps" points=3
_AD_ACT = {"tanh": ad.tanh, "sigmoid": ad.sigmoid, "sin": ad.sin}


def _engine_stack(layers):
    """The same stack of layers in autodiff_ref, as a function of a Tensor."""
    def F(x):
        for W, name in layers:
            x = _AD_ACT[name](ad.tensor(W) @ x)
        return x
    return F


def _check_sweeps(layers, x, v, u, what):
    F, xt = _engine_stack(layers), ad.tensor(x)
    for name in ACTIVATIONS:  # the slope of each activation vs a JVP of the engine's
        slope = activation_slope(name, x.copy(), ACTIVATIONS[name](x))
        grading.assert_close(slope, ad.functional.jvp(_AD_ACT[name], xt, ad.tensor(
            np.ones_like(x)))[1].data, rtol=1e-10, atol=1e-12,
            name=f"activation_slope('{name}', z, h) at z = {np.round(x, 3).tolist()}")
    value, tangent = ad.functional.jvp(F, xt, ad.tensor(v))
    h, t = layers_jvp(layers, x.copy(), v.copy())
    grading.assert_close(h, value.data, rtol=1e-12, name=f"layers_jvp({what})[0], F(x)")
    grading.assert_close(t, tangent.data, rtol=1e-10, atol=1e-12,
                         name=f"layers_jvp({what})[1], J v vs ad.functional.jvp")
    h, g = layers_vjp(layers, x.copy(), u.copy())
    ones = ad.functional.vjp(F, xt, ad.tensor(np.ones_like(u)))[1].data
    grading.assert_close(h, value.data, rtol=1e-12, name=f"layers_vjp({what})[0], F(x)")
    grading.assert_close(g, ad.functional.vjp(F, xt, ad.tensor(u))[1].data, rtol=1e-10,
                         atol=1e-12, without_upstream=ones,
                         name=f"layers_vjp({what})[1], u^T J vs ad.functional.vjp")


with grading.exercise(5, "layers_jvp / layers_vjp"):
    # F(x) = sigmoid(W2 tanh(W1 x)) with W1 of shape (2, 3), W2 of shape (1, 2)
    _W1, _W2 = np.array([[1.0, 2.0, 0.0], [0.0, -1.0, 3.0]]), np.array([[0.5, -1.0]])
    _check_sweeps([(_W1, "tanh"), (_W2, "sigmoid")], np.array([0.5, -0.3, 0.2]),
                  np.array([1.0, 0.0, 0.0]), np.array([1.0]), "[(W1, 'tanh'), (W2, 'sigmoid')]")
    _check_sweeps([(_W1.T, "sin")], np.array([0.3, -0.2]), np.array([0.0, 1.0]),
                  np.array([1.0, -2.0, 0.5]), "[(W1.T, 'sin')]")
grading.passed("layers_jvp / layers_vjp")
### BEGIN HIDDEN TESTS
_rng = np.random.default_rng()
for _ in range(4):
    _sizes = [int(s) for s in _rng.integers(1, 6, int(_rng.integers(2, 6)))]
    _layers = [(_rng.standard_normal((m, n)) / np.sqrt(n), str(_rng.choice(list(ACTIVATIONS))))
               for n, m in zip(_sizes[:-1], _sizes[1:])]
    _check_sweeps(_layers, _rng.uniform(-1.5, 1.5, _sizes[0]), _rng.standard_normal(_sizes[0]),
                  _rng.standard_normal(_sizes[-1]),
                  f"a random stack with sizes {_sizes}, activations "
                  f"{[name for _, name in _layers]}")
try:
    activation_slope("relu", np.zeros(2), np.zeros(2))
except ValueError:
    pass
else:
    raise grading.GradingError("activation_slope('relu', ...) should raise ValueError: it is "
                               "not one of the three activations.")
### END HIDDEN TESTS

# %% [markdown]
# ### Exercise 6 (1 point): a whole Jacobian with the fewest sweeps
#
# A whole Jacobian of $F:\mathbb{R}^{n}\to\mathbb{R}^{m}$ ($n = n_0$,
# $m = n_k$) is $n$ JVPs (one per column, $v = e_j$) or $m$ VJPs (one per
# row, $u = e_i$). Write `layers_jacobian(layers, x)` that calls
# `layers_jvp` or `layers_vjp`, whichever needs **fewer calls** (forward mode
# on a tie: it stores nothing for a backward sweep), and assembles the
# $m\times n$ matrix. The test counts the calls.

# %% solution="layers_jacobian" exact=true
def layers_jacobian(layers, x):
    """The Jacobian of the stack at x, by the cheaper mode.

    layers, x: as in layers_jvp. Returns (J, mode): J a 2-D array of shape
    (n_k, n_0) with J[i, j] = dF_i/dx_j; mode the string "forward" (n_0 calls
    of layers_jvp, when n_0 <= n_k) or "reverse" (n_k calls of layers_vjp).
    """
    ### BEGIN SOLUTION
    n, m = len(x), layers[-1][0].shape[0]
    if n <= m:
        columns = [layers_jvp(layers, x, e)[1] for e in np.eye(n)]
        return np.stack(columns, axis=1), "forward"
    rows = [layers_vjp(layers, x, e)[1] for e in np.eye(m)]
    return np.stack(rows, axis=0), "reverse"
    ### END SOLUTION


# %% test="test_layers_jacobian" points=1
def _counted(fn):
    def wrapper(*args):
        wrapper.calls += 1
        return fn(*args)
    wrapper.calls = 0
    return wrapper


def _check_jacobian(layers, x, what):
    global layers_jvp, layers_vjp
    n, m = len(x), layers[-1][0].shape[0]
    want_mode, want_calls = ("forward", n) if n <= m else ("reverse", m)
    mine = layers_jvp, layers_vjp
    layers_jvp, layers_vjp = _counted(mine[0]), _counted(mine[1])
    try:
        J, mode = layers_jacobian(layers, x.copy())
        calls = {"forward": layers_jvp.calls, "reverse": layers_vjp.calls}
    finally:
        layers_jvp, layers_vjp = mine
    expected = ad.functional.jacobian(_engine_stack(layers), ad.tensor(x)).data
    grading.assert_close(J, expected, rtol=1e-10, atol=1e-12,
                         name=f"layers_jacobian({what})[0] vs ad.functional.jacobian")
    if mode != want_mode or calls[want_mode] != want_calls or sum(calls.values()) != want_calls:
        raise grading.GradingError(
            f"layers_jacobian({what}) with n = {n} inputs and m = {m} outputs returned mode "
            f"{mode!r} after {calls['forward']} call(s) of layers_jvp and {calls['reverse']} "
            f"of layers_vjp; the fewest sweeps are {want_calls} call(s) of layers_"
            f"{'jvp' if want_mode == 'forward' else 'vjp'} (mode {want_mode!r}).")


with grading.exercise(6, "layers_jacobian", needs=[(5, "layers_jvp"), (5, "layers_vjp"),
                                                    (5, "activation_slope")]):
    _W1, _W2 = np.array([[1.0, 2.0, 0.0], [0.0, -1.0, 3.0]]), np.array([[0.5, -1.0]])
    _check_jacobian([(_W1, "tanh"), (_W2, "sigmoid")], np.array([0.5, -0.3, 0.2]),
                    "3 inputs, 1 output")
    _check_jacobian([(_W1.T, "sin")], np.array([0.3, -0.2]), "2 inputs, 3 outputs")
grading.passed("layers_jacobian")
### BEGIN HIDDEN TESTS
_rng = np.random.default_rng()
for _ in range(4):
    _sizes = [int(s) for s in _rng.integers(1, 6, int(_rng.integers(2, 5)))]
    _layers = [(_rng.standard_normal((m, n)), str(_rng.choice(list(ACTIVATIONS))))
               for n, m in zip(_sizes[:-1], _sizes[1:])]
    _check_jacobian(_layers, _rng.uniform(-1, 1, _sizes[0]), f"a random stack, sizes {_sizes}")
_check_jacobian([(_rng.standard_normal((3, 3)), "tanh")], _rng.uniform(-1, 1, 3),
                "3 inputs, 3 outputs (a tie: forward mode)")
### END HIDDEN TESTS

# %% [markdown]
# ### Measuring the cost
#
# To get a whole Jacobian of $F:\mathbb{R}^n\to\mathbb{R}^m$, forward mode
# needs $n$ JVPs (one column each, $v = e_j$) and reverse mode $m$ VJPs (one
# row each, $u = e_i$). `ad.functional.jacobian(f, x, strategy=...)` does
# exactly that with `strategy="forward-mode"` or `"reverse-mode"`. Each pass
# costs a small constant times one evaluation of $F$, so:
#
# | | passes | extra memory |
# |---|---|---|
# | forward mode | $n$ (one per input) | no tape: a tangent beside each value while it is alive |
# | reverse mode | $m$ (one per output), after one forward pass | every intermediate of the forward pass |
#
# The next cell times both strategies on a small two-layer function
# $F(x) = \sin(W_2 \tanh(W_1 x))$ (16 hidden units), first with one output
# and a growing number of inputs $n = 1, 2, 4, \dots, 64$, then with one
# input and a growing number of outputs $m = 1, 2, \dots, 64$.
#
# **Predict before you run it** (written answer, 1 point). For each of the
# two experiments: how does the time of each strategy grow with the size?
# Which strategy is cheaper at $n = 64, m = 1$, and roughly by what factor?
# And at $n = m = 1$, where both make a single pass, which one do you expect
# to be faster, and why? Then run the cell and compare.

# %% [markdown] answer="predict_mode_costs" points=1
# ### BEGIN SOLUTION
# **Model answer.** With one output ($m = 1$) forward mode makes $n$ passes,
# so its time grows about linearly with $n$, while reverse mode makes one
# forward and one backward pass whatever $n$ is, so its time stays about
# flat (the matrices grow a little, but at these sizes the per-operation
# overhead of Python dominates). At $n = 64$ reverse mode is cheaper by
# roughly a factor of 64 divided by the cost ratio of one reverse pass to one
# forward-mode pass, so a few tens. With one input the picture mirrors:
# forward mode stays flat, reverse mode grows linearly with $m$. At
# $n = m = 1$ both make one pass, and forward mode should be somewhat
# faster: its single sweep computes values and tangents together, while a
# VJP runs the forward pass, records the graph and stores the
# intermediates, then runs a separate backward pass.
#
# **Rubric (1 point).** Full credit: forward mode linear in $n$ and flat in
# $m$, reverse mode the other way round, with the winner of each experiment
# right and a factor of the right order (tens, not 2 or 1000). The winners
# right without the growth or the factor: half a point. The $n = m = 1$ part is
# a bonus remark: take no points off for missing it.
# ### END SOLUTION

# %%
def two_layer(n, m, hidden=16, seed=0):
    rng = np.random.default_rng(seed)
    W1 = ad.tensor(rng.standard_normal((hidden, n)) / np.sqrt(n))
    W2 = ad.tensor(rng.standard_normal((m, hidden)) / np.sqrt(hidden))
    return lambda x: ad.sin(W2 @ ad.tanh(W1 @ x))


def time_jacobian(n, m, strategy, repeats=3):
    F, x = two_layer(n, m), ad.tensor(np.linspace(-1, 1, n))
    best = np.inf
    for _ in range(repeats):
        start = time.perf_counter()
        J = ad.functional.jacobian(F, x, strategy=strategy)
        best = min(best, time.perf_counter() - start)
    assert J.shape == (m, n)
    return 1e3 * best  # milliseconds


sizes = [1, 2, 4, 8, 16, 32, 64]
strategies = ["forward-mode", "reverse-mode"]
many_inputs = {s: [time_jacobian(n, 1, s) for n in sizes] for s in strategies}
many_outputs = {s: [time_jacobian(1, m, s) for m in sizes] for s in strategies}

fig, axes = plt.subplots(1, 2, figsize=(11, 3.8), sharey=True)
for ax, timings, label in [(axes[0], many_inputs, "n inputs (m = 1 output)"),
                           (axes[1], many_outputs, "m outputs (n = 1 input)")]:
    for s, marker in zip(strategies, "os"):
        ax.plot(sizes, timings[s], marker + "-", label=s)
    ax.set_xlabel(label)
    ax.legend()
axes[0].set_ylabel("time for the whole Jacobian (ms)")
axes[0].set_title("A gradient (one output): reverse mode wins")
axes[1].set_title("One input, many outputs: forward mode wins")
plt.show()
print(f"{'size':>5} | {'m = 1: forward':>15} {'reverse':>8} | {'n = 1: forward':>15} "
      f"{'reverse':>8}   (ms)")
for k, size in enumerate(sizes):
    print(f"{size:5d} | {many_inputs['forward-mode'][k]:15.2f} "
          f"{many_inputs['reverse-mode'][k]:8.2f} | {many_outputs['forward-mode'][k]:15.2f} "
          f"{many_outputs['reverse-mode'][k]:8.2f}")

# %% [markdown]
# The lines are what the pass counts predict: the cost of forward mode grows
# with the number of inputs and not with the number of outputs, and the other
# way round for reverse mode. (A single pass of reverse mode is somewhat
# dearer than one of forward mode, since it runs the forward pass and then a
# backward pass, but that is a constant factor.)
#
# Training a network means the gradient of one scalar loss with respect to
# millions of parameters: $m = 1$, $n$ huge. That is why deep learning runs
# on reverse mode, and why the next notebook builds the reverse-mode
# algorithm in full. Forward mode has its place too: few inputs and many
# outputs (the sensitivity of a simulation to one parameter) and directional
# derivatives (one JVP), both without a tape. A Hessian-vector product can
# be computed forward over reverse, as a JVP of the gradient function; that
# one does contain a reverse pass, so it stores the intermediates of the
# forward pass like any gradient (notebook 04 computes it reverse over
# reverse).
#
# ## Summary
#
# * Chain rule: for one variable the local derivatives multiply; for many
#   variables the contributions of all paths add up; for vector functions the
#   Jacobians multiply, $(p\times m)\cdot(m\times n)$.
# * A computational graph makes every step local: each gate multiplies the
#   upstream gradient by its local gradient. Add distributes, max routes,
#   mul swaps; the sigmoid's local gradient is $\sigma(1-\sigma)$.
# * The staged backward pass has one line per forward line, in reverse
#   order, uses the stored intermediates, and **accumulates** (`+=`) the
#   gradient of any variable used more than once.
# * Forward mode carries tangents with the values (dual numbers,
#   $\varepsilon^2 = 0$): a JVP, one pass per input, no tape (but a
#   tangent beside every value that is still alive). Reverse mode carries
#   adjoints backward: a VJP, one pass per output, memory for every
#   intermediate of the forward pass. For a scalar loss, one reverse pass
#   gives the whole gradient.
# * Neither mode builds a Jacobian: a layer's Jacobian is applied to a
#   vector (element-wise slopes, then $W$ or $W^\top$), and a whole Jacobian
#   costs $\min(n, m)$ sweeps with the right mode.
