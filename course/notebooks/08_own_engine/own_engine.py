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
# # 08 · Your own autograd engine
#
# Until now `autodiff_ref` recorded the graph for you: you wrote the walk over
# its nodes (notebook 04), the backward rules of its primitives (05), a
# network's backward pass by hand (06) and new primitives (07). This notebook
# builds the other half, the part that **records**: objects that remember,
# every time an operation is applied to them, what they were computed from
# and how to send a gradient back. When you are done you will have two
# engines of your own and will have trained a network with one of them.
#
# 1. **A scalar engine, second version.** The `Value` of notebook 04 stored
#    one number per edge, the local derivative. That design cannot grow: for
#    an operation on arrays the local derivative is a Jacobian, far too large
#    to store (notebook 02). Here every node stores a **local backward
#    function** instead, the vector-Jacobian product, which is the design
#    that carries over to tensors. You write the topological order as a
#    function of its own (iterative: the tests use a graph 5,000 nodes deep;
#    the tensor engine reuses it), the backward walk with what frameworks do
#    when `backward()` runs twice, and every operator of a class `Value`
#    (`+`, `-`, `*`, `/`, `**`, `exp`, `log`, `sin`, `tanh`, `relu`, with
#    numbers on either side, `2 - x` and `2 ** x` included).
# 2. **A tensor engine.** A `Function` base class with a context `ctx`, the
#    backward rules you derived in notebook 05 (matrix product, broadcasting
#    addition, ReLU, sum, mean, fused log-softmax cross-entropy) as its
#    primitives, and a `Tensor` that records them. With it you train the
#    network of notebook 06 on real images of handwritten digits, step for
#    step next to `autodiff_ref`: the two loss curves must agree to about
#    $10^{-10}$.
# 3. **Memory.** Reverse mode keeps every intermediate value until the
#    backward pass needs it. You measure what that costs on a chain of $N$
#    layers, and write **checkpointing**, which keeps only about $\sqrt N$ of
#    them and recomputes the rest.
#
# Notation follows the [notation card](../notation.md): values of the
# running examples are numbered $v_1, v_2, \dots$, and the **adjoint** of a
# value is $\bar v = \partial y / \partial v$ for the output $y$ of the graph.
#
# **How this notebook works.** Read from top to bottom and run each cell
# (Shift-Enter). There are eight exercises (18 points) and two written
# answers (2 points). In each exercise, replace `raise NotImplementedError()`
# with your code, then run the test cell right below it. The visible tests use
# the numbers from the text; when the notebook is graded, hidden tests run
# your code on fresh random graphs, shapes and data. A failing test says in
# words what is wrong. The exercises build on each other: do them in order.
# **Run All stops at the first unfinished exercise** (its test cell raises);
# to run the rest anyway, run cells one by one, or use *Run All Above* on the
# cell you are working on. Every other cell runs without your code; cells
# that need an exercise say which one to finish.
#
# **What your answers may use.** NumPy and `math`, and nothing of
# `autodiff_ref`: the point is to build the engine yourself. The autograder
# enforces this. It also forbids names that start with an underscore (other
# than the methods `__add__` and friends in the classes that define
# operators), so name internal attributes plainly, as in `self.backward_fn`.

# %%
# %matplotlib inline
import time
import tracemalloc

import numpy as np
import matplotlib.pyplot as plt
import autodiff_ref as ad
from autodiff_ref import grading
from sklearn.datasets import load_digits  # 1,797 images of 8x8 pixels, shipped with scikit-learn

# %% [markdown]
# ## 1. What a recorded graph holds
#
# Reverse mode needs three things from the forward pass, for every value $v$
# it computed:
#
# * the number itself;
# * its **parents**: the values $v$ was computed from;
# * a **local backward**: given the adjoint $\bar v$, the partial adjoint
#   $\bar v \, \partial v / \partial p$ that $v$ sends to each parent $p$
#   (notebook 04).
#
# The class `Node` below holds exactly these, plus the field `grad` where the
# adjoint will be collected. Its `backward` method calls the function
# `backprop` that you write in exercise 2.
#
# Compare with your `Value` of notebook 04, whose `parents` were pairs
# (operand, local derivative), the derivative being a number computed during
# the forward pass. Here the third ingredient is a **function**
# `backward_fn(adjoint)` that returns the partial adjoints. For a scalar the
# two are equivalent (the function multiplies by the number). For arrays they
# are not: `MatMul` sends $\bar Z W^\top$ back to $X$ without ever forming the
# Jacobian $\partial Z / \partial X$, which for one layer of a real network
# would not fit in memory. A function can compute a vector-Jacobian product
# a number cannot store, so this is the design that scales (section 5).

# %%
class Node:
    """A number in a recorded graph.

    data: the value (a float); grad: its adjoint, collected by backprop
    (starts at 0.0); parents: the Nodes it was computed from (a tuple, empty
    for a leaf: an input or a constant); backward_fn: a function that takes
    this node's adjoint (a float) and returns a tuple with one partial adjoint
    per entry of parents (None for a leaf); op: a label for printing.
    """

    def __init__(self, data, parents=(), backward_fn=None, op=""):
        self.data = float(data)
        self.grad = 0.0
        self.parents = tuple(parents)
        self.backward_fn = backward_fn
        self.op = op

    def __repr__(self):
        label = f", op={self.op!r}" if self.op else ""
        return f"{type(self).__name__}(data={self.data:.6g}, grad={self.grad:.6g}{label})"

    def backward(self):
        """Fill in the adjoints of the graph below this node (exercise 2)."""
        backprop(self)


# %% [markdown]
# **Worked example, recorded by hand.** The graph of notebook 04 in which a
# value is used twice: $y = (\exp(v_1) + 1)\,\exp(v_1)$, computed with one
# call of $\exp$,
#
# $$
# v_2 = \exp(v_1), \qquad v_3 = v_2 + 1, \qquad v_4 = v_2 \cdot v_3 = y .
# $$
#
# At $v_1 = \ln 2$: $v_2 = 2$, $v_3 = 3$, $v_4 = 6$, and by calculus
# $dy/dv_1 = 2e^{2v_1} + e^{v_1} = 10$. The three helpers below record one
# operation each: they compute the value and hand `Node` the parents and the
# local backward. A product sends each factor the *other* factor times the
# adjoint; `exp` sends its own output times the adjoint; an addition passes
# the adjoint on unchanged.

# %%
def node_add(a, b):
    """a + b for two Nodes, recorded."""
    return Node(a.data + b.data, (a, b), lambda g: (g, g), "+")


def node_mul(a, b):
    """a * b for two Nodes, recorded."""
    return Node(a.data * b.data, (a, b), lambda g: (g * b.data, g * a.data), "*")


def node_exp(a):
    """exp(a) for a Node, recorded."""
    out = np.exp(a.data)
    return Node(out, (a,), lambda g: (g * out,), "exp")


v1 = Node(np.log(2.0))
v2 = node_exp(v1)
v3 = node_add(v2, Node(1.0))  # the constant 1 is a leaf
v4 = node_mul(v2, v3)
for name, v in [("v1", v1), ("v2", v2), ("v3", v3), ("v4", v4)]:
    print(f"{name} = {v!r:42} parents: {[round(p.data, 4) for p in v.parents]}")
print("what v4 sends back to (v2, v3) for an adjoint of 1:", v4.backward_fn(1.0))

# %% [markdown]
# Nothing has been differentiated yet: the graph only *knows how* to send
# adjoints back. Running that knowledge in the right order is the job of the
# next two exercises.
#
# ## 2. The order of the walk
#
# A node's adjoint is the **sum** of what its consumers send it, so it is
# complete only after every consumer has been processed. Walking the nodes in
# **reverse topological order** guarantees this: a topological order lists
# every node after all of its parents, so the reverse lists every node after
# all of its consumers.
#
# Notebook 04 gave two ways to find such an order: an iterative depth-first
# search that appends a node once all of its parents are appended (its
# exercise 1), and **counting consumers** (Kahn's algorithm, inside your
# `Value.backward` there): count, for every node, the edges that lead from
# it to its consumers; then, starting from the output, emit a node and take
# one off the count of each of its parents; a parent whose count reaches
# zero is ready. The second emits the reverse topological order directly.
#
# This time the order is a function of its own, `topological_order`, because
# the tensor engine of section 5 reuses it unchanged. Either method is fine,
# as long as it keeps its own stack (a Python list) instead of calling
# itself. A recursive search uses one
# Python stack frame per level of the graph, and Python allows about 1,000
# (`sys.getrecursionlimit()`).
# A loop run 5,000 times, or a recurrent network unrolled over a long
# sequence, is deeper than that:

# %%
def depth_recursive(node):
    """The number of nodes on the longest path from node down to a leaf (recursive)."""
    return 1 + max((depth_recursive(p) for p in node.parents), default=0)


chain = Node(0.5)
for _ in range(5000):
    chain = node_exp(node_mul(chain, Node(-0.001)))  # 2 nodes per step: 10,001 deep
print("depth of v4 above:", depth_recursive(v4))
try:
    depth_recursive(chain)
except RecursionError as err:
    print("the chain:", type(err).__name__, "-", err)

# %% [markdown]
# **Common mistake:** appending a node when it is first *reached* (a
# pre-order) instead of after all its parents are done. In the worked
# example, a search that goes $v_4 \to v_2$ first reaches $v_2$ before $v_3$,
# yet $v_3$ still has to send its part to $v_2$. Check your order on that
# graph: $v_4$ last, $v_2$ before $v_3$.
#
# ### Exercise 1 (2 points): topological order, without recursion

# %% solution="topological_order"
def topological_order(root):
    """Every node that root depends on, in topological order.

    root: a Node (or any object whose .parents is a tuple of objects of the
    same kind; exercise 4 uses it for tensors too).
    Returns a list holding root and every node reachable from it through
    .parents (leaves included), each exactly once, every node after all of
    its parents, so root is the last element. A node that appears twice in
    one .parents tuple (x * x) is still listed once.
    Must not recurse: the hidden tests use a graph 5,000 nodes deep. Keep
    track of nodes by id(node).
    """
    ### BEGIN SOLUTION
    consumers = {}
    stack, seen = [root], {id(root): root}
    while stack:
        node = stack.pop()
        for parent in node.parents:
            consumers[id(parent)] = consumers.get(id(parent), 0) + 1
            if id(parent) not in seen:
                seen[id(parent)] = parent
                stack.append(parent)
    order, ready = [], [root]
    while ready:
        node = ready.pop()
        order.append(node)
        for parent in node.parents:
            consumers[id(parent)] -= 1
            if consumers[id(parent)] == 0:
                ready.append(parent)
    order.reverse()
    return order
    ### END SOLUTION


# %% test="test_topological_order" points=2
def _check_order(order, root, what):
    """Is order a topological order of everything root depends on?"""
    reachable, stack = {id(root): root}, [root]
    while stack:
        for p in stack.pop().parents:
            if id(p) not in reachable:
                reachable[id(p)] = p
                stack.append(p)
    if order is None:
        raise grading.GradingError(f"topological_order({what}) returned None. Did you forget "
                                   "`return`?")
    order, position = list(order), {}
    for k, n in enumerate(order):
        if id(n) in position:
            raise grading.GradingError(
                f"topological_order({what}) lists {n!r} twice (positions {position[id(n)]} and "
                f"{k}): a node used by several consumers must appear once.")
        position[id(n)] = k
    missing = [n for i, n in reachable.items() if i not in position]
    if missing or len(order) != len(reachable):
        raise grading.GradingError(
            f"topological_order({what}) returned {len(order)} nodes, but root depends on "
            f"{len(reachable)} (itself and the leaves included)"
            + (f"; for example {missing[0]!r} is missing." if missing else "."))
    for n in order:
        for p in n.parents:
            if position[id(p)] > position[id(n)]:
                raise grading.GradingError(
                    f"topological_order({what}) puts {n!r} (position {position[id(n)]}) before "
                    f"its parent {p!r} (position {position[id(p)]}): every node must come "
                    "after all of its parents, root last. Is your list reversed?")


with grading.exercise(1, "topological_order"):
    _v1 = Node(np.log(2.0))
    _v2 = node_exp(_v1)
    _v3 = node_add(_v2, Node(1.0))
    _v4 = node_mul(_v2, _v3)
    _check_order(topological_order(_v4), _v4, "(exp(v1) + 1) * exp(v1)")
    _x = Node(3.0)
    _sq = node_mul(_x, _x)
    _check_order(topological_order(_sq), _sq, "x * x")
    if [n.data for n in topological_order(_x)] != [3.0]:
        raise grading.GradingError("topological_order(x) for a leaf x should be [x].")
    grading.passed("topological_order")
### BEGIN HIDDEN TESTS
_rng = np.random.default_rng()


def _random_nodes(rng, n_ops):
    pool = [Node(v) for v in rng.uniform(-1, 1, 4)]
    for _ in range(n_ops):
        a, b = (pool[int(rng.integers(len(pool)))] for _ in range(2))
        kind = int(rng.integers(4))
        pool.append([node_add(a, b), node_mul(a, b), node_exp(a), node_mul(a, a)][kind])
    root = pool[-1]
    for extra in pool[-4:-1]:
        root = node_add(root, extra)
    return root


with np.errstate(all="ignore"):  # the values do not matter here, only the order
    for _ in range(5):
        _root = _random_nodes(_rng, int(_rng.integers(5, 30)))
        _check_order(topological_order(_root), _root, "a random graph with shared nodes")
_v = Node(0.3)
for _ in range(12):  # diamonds: every node has two consumers
    _v = node_mul(node_add(_v, _v), _v)
_check_order(topological_order(_v), _v, "a chain of 12 diamonds")
_v = Node(0.5)
for _ in range(2500):
    _v = node_mul(node_exp(_v), Node(0.1))
try:
    _deep = topological_order(_v)
except RecursionError:
    raise grading.GradingError(
        "topological_order raised RecursionError on a graph 5,000 nodes deep: each "
        "recursive call uses a Python stack frame and Python allows about 1,000. Keep your "
        "own stack (a list) in a loop instead.") from None
_check_order(_deep, _v, "a chain 5,000 nodes deep")
### END HIDDEN TESTS

# %% [markdown]
# ## 3. The backward walk, with accumulation
#
# With the order in hand, the walk is the `node_to_grad` algorithm of
# notebook 04, except that each node now keeps its adjoint in its own field
# `grad`: start the output at $\bar y = 1$, then visit the nodes output
# first; each node hands its (now complete) adjoint to its `backward_fn` and
# **adds** every partial adjoint it gets back to the `grad` of the matching
# parent.
#
# What should happen to `grad` values left over from an earlier call? Two
# different answers, one for each kind of node:
#
# * a node **with parents** is an intermediate of this one graph: its
#   adjoint must be computed afresh, so set it to 0 before the walk (else a
#   second `backward()` would start from doubled adjoints);
# * a **leaf** is an input or a parameter: frameworks *add* the new gradient
#   to what it holds (PyTorch's `.grad` does). Gradients of several losses,
#   or of several mini-batches, then sum up, and a training loop clears them
#   itself when it wants to.
#
# **Common mistake:** `parent.grad = partial` instead of
# `parent.grad += partial`. Each parent keeps only the partial adjoint of its
# last consumer: in the worked example $v_2$ keeps 2 or 3 instead of
# $3 + 2 = 5$, and $dy/dv_1$ comes out as 4 or 6 instead of 10.
#
# ### Exercise 2 (2 points): backprop

# %% solution="backprop"
def backprop(root):
    """Reverse-mode AD on the graph below root (a Node); returns None.

    Afterwards every node n of the graph that has parents (root included)
    holds n.grad = d root / d n, computed by this call alone, and the .grad of
    every leaf has grown by d root / d leaf (leaves accumulate over calls).
    Uses your topological_order and each node's backward_fn; no recursion.
    """
    ### BEGIN SOLUTION
    order = topological_order(root)
    for node in order:
        if node.parents:
            node.grad = 0.0
    root.grad += 1.0
    for node in reversed(order):
        if node.parents:
            for parent, partial in zip(node.parents, node.backward_fn(node.grad)):
                parent.grad += partial
    ### END SOLUTION


# %% test="test_backprop" points=2
with grading.exercise(2, "backprop", needs=[(1, "topological_order")]):
    _v1 = Node(np.log(2.0))  # the worked example: dy/dv1 = 10, and v2 collects 3 + 2
    _v2 = node_exp(_v1)
    _v4 = node_mul(_v2, node_add(_v2, Node(1.0)))
    _v4.backward()
    grading.assert_close(_v2.grad, 5.0, name="v2.grad for y = (exp(v1) + 1) exp(v1)")
    grading.assert_close(_v1.grad, 10.0, name="v1.grad for y = (exp(v1) + 1) exp(v1)")
    grading.assert_close(_v4.grad, 1.0, name="y.grad (the output's own adjoint)")
    _v4.backward()  # a second call: the leaf adds another 10, the intermediates stay
    grading.assert_close(_v1.grad, 20.0, name="v1.grad after a second y.backward() (10 + 10)")
    grading.assert_close(_v2.grad, 5.0, name="v2.grad after a second y.backward()")
    grading.passed("backprop")
### BEGIN HIDDEN TESTS
_rng = np.random.default_rng()


def _node_sin(a):
    return Node(np.sin(a.data), (a,), lambda g: (g * np.cos(a.data),), "sin")


def _random_pair(rng, n_ops):
    """The same random graph as Nodes and as autodiff_ref tensors."""
    values = rng.uniform(-1, 1, 4)
    leaves = [Node(v) for v in values]
    tensors = [ad.tensor(v, requires_grad=True) for v in values]
    pool = list(zip(leaves, tensors))
    for _ in range(n_ops):
        (a, ta), (b, tb) = (pool[int(rng.integers(len(pool)))] for _ in range(2))
        kind = int(rng.integers(4))
        if kind == 0:
            pool.append((node_add(a, b), ta + tb))
        elif kind == 1:
            pool.append((node_mul(_node_sin(a), b), ad.sin(ta) * tb))
        elif kind == 2:
            pool.append((_node_sin(a), ad.sin(ta)))
        else:
            s = _node_sin(a)
            pool.append((node_mul(s, s), ad.sin(ta) * ad.sin(ta)))
    root, troot = pool[-1]
    for n, t in pool[-4:-1]:
        root, troot = node_add(root, n), troot + t
    return leaves, tensors, root, troot


for _ in range(5):
    _leaves, _tensors, _root, _troot = _random_pair(_rng, int(_rng.integers(5, 30)))
    _root.backward()
    _troot.backward()
    for _k, (_n, _t) in enumerate(zip(_leaves, _tensors)):
        _expected = 0.0 if _t.grad is None else _t.grad.item()
        grading.assert_close(_n.grad, _expected, rtol=1e-10, atol=1e-12,
                             name=f"leaf {_k}.grad in a random graph with shared nodes "
                                  "(vs autodiff_ref)")
    _before = [_n.grad for _n in _leaves]
    _root.backward()
    for _k, _n in enumerate(_leaves):
        grading.assert_close(_n.grad, 2 * _before[_k], rtol=1e-10, atol=1e-12,
                             name=f"leaf {_k}.grad after a second backward() on a random graph "
                                  "(leaves accumulate; intermediates must start again from 0)")
_x = Node(0.5)
_v = _x
for _ in range(2500):
    _v = _node_sin(node_mul(_v, Node(1.2)))
try:
    _v.backward()
except RecursionError:
    raise grading.GradingError("backprop raised RecursionError on a graph 5,000 nodes "
                               "deep.") from None
_tx = ad.tensor(0.5, requires_grad=True)
_tv = _tx
for _ in range(2500):
    _tv = ad.sin(_tv * 1.2)
_tv.backward()
grading.assert_close(_x.grad, _tx.grad.item(), rtol=1e-9, atol=1e-300,
                     name="x.grad for a chain of 2,500 sin(1.2 v) (5,000 nodes deep)")
_leaf = Node(2.0)
_leaf.backward()
grading.assert_close(_leaf.grad, 1.0, name="x.grad after x.backward() for a leaf x")
### END HIDDEN TESTS

# %% [markdown]
# ### Written answer 1 (1 point): why search for an order at all?
#
# In a program that runs one operation at a time, a node is always created
# *after* its parents. So the order of creation is itself a topological
# order, and its reverse is what the walk needs. Why, then, does `backprop`
# search the graph for an order instead of simply processing the nodes in
# reverse order of creation? Would reverse creation order give correct
# gradients? What would the engine have to record to use it, and what would
# that cost? (Three to six sentences.)

# %% [markdown] answer="why_search_order" points=1
# ### BEGIN SOLUTION
# **Model answer.** Reverse creation order *is* a valid reverse topological
# order: a consumer is always created after its parents, so it comes before
# them in the reversed list, and the gradients would be correct (this is how
# tape-based engines, the "Wengert list", work; PyTorch uses creation
# sequence numbers to break ties). But a `Node` does not know its creation
# time, and nothing lists all nodes: the engine would have to record every
# operation on a global tape (global state shared by all graphs) or stamp
# each node with a counter and still find the nodes `y` depends on, which is
# the graph search again (plus a sort, $O(n \log n)$). A global tape also
# holds operations that do not feed `y` (other losses, printed diagnostics,
# dead branches), which the walk would visit for nothing, and it keeps all of
# them alive in memory. Searching from the output visits exactly the nodes
# that matter, each once, with no global state.
#
# **Rubric (1 point):** full credit for (a) saying that creation order is a
# topological order (so it would work) and (b) one real cost: a global
# tape/counter must be kept, nodes not feeding the output are visited or
# kept alive, or the reachable nodes must still be found (search/sort).
# Half credit for only one of (a), (b). No credit for "it would give wrong
# gradients" without qualification.
# ### END SOLUTION

# %% [markdown]
# ## 4. Recording by operator overloading
#
# Writing `node_mul(node_exp(v1), ...)` by hand is no way to write a model.
# Python calls a method whenever an operator is applied to an object, and
# that is all an engine needs (in notebook 04 the reversed operators were
# written for you; here all of them are yours):
#
# | you write | Python calls | when |
# |---|---|---|
# | `a + b` | `a.__add__(b)` | `a` is a `Value` |
# | `2 + a` | `a.__radd__(2)` | `int.__add__` does not know `Value`, so Python asks the right operand |
# | `a - b`, `2 - a` | `a.__sub__(b)`, `a.__rsub__(2)` | `__rsub__` must compute `2 - a`, not `a - 2` |
# | `a * b`, `a / b` | `__mul__`, `__truediv__` (and `__rmul__`, `__rtruediv__`) | |
# | `-a` | `a.__neg__()` | |
# | `a ** 3`, `2 ** a` | `a.__pow__(3)`, `a.__rpow__(2)` | |
#
# Each method computes the value and returns a new `Value` built with its
# parents and its local backward, as the helpers of section 1 did. A number
# on either side is first wrapped as a constant leaf (`as_value`). Only a few
# operations need a backward function of their own: the others can be
# *composed* of them (`a - b` is `a + (-b)`), and the composition records
# the right graph automatically.
#
# Derive each local derivative on paper before you write it. Two are worth
# a moment:
#
# * `x ** n` for a **number** $n$ (any real, not only integers) and `c ** x`
#   for a **number** $c > 0$ are different functions of $x$: a power and an
#   exponential. Write $c^x = e^{x \ln c}$ before differentiating the second.
# * `tanh` and `exp` have derivatives that are simplest in terms of their
#   **output**; ReLU's derivative at exactly 0 is taken as 0 (as in
#   `autodiff_ref` and PyTorch).
#
# **Common mistake:** the reversed operators. `2 - a` calls
# `a.__rsub__(2)`, so `self` is the *right* operand: returning `self - 2`
# gives the wrong value and the wrong sign of the gradient. The same holds
# for `__rtruediv__` and `__rpow__`.
#
# ### Exercise 3 (3 points): the class `Value`
#
# Fill in the methods of `Value`, a `Node` that records itself. The test
# builds the running example of the [notation card](../notation.md)
# ($\partial y/\partial x_1 = 5.5$, $\partial y/\partial x_2 = 2 - \cos 5
# \approx 1.7163$) and the worked examples of notebook 03, and compares every
# gradient with `autodiff_ref`; the hidden tests do the same on random expressions with
# shared subexpressions and constants on either side, and on a graph 5,000
# nodes deep.

# %% solution="value_class" exact=true dunder_methods=true
def as_value(x):
    """x itself if it is a Node, else a new constant leaf Value(x)."""
    return x if isinstance(x, Node) else Value(x)


class Value(Node):
    """A Node whose operations record the graph.

    Every method returns a new Value holding the result, whose parents are
    the Values it was computed from (numbers are wrapped with as_value) and
    whose backward_fn maps the result's adjoint to a tuple of partial
    adjoints, one per parent. Exponents of ** and bases of rpow are numbers.
    """

    def __add__(self, other):
        ### BEGIN SOLUTION
        other = as_value(other)
        return Value(self.data + other.data, (self, other), lambda g: (g, g), "+")
        ### END SOLUTION

    def __mul__(self, other):
        ### BEGIN SOLUTION
        other = as_value(other)
        return Value(self.data * other.data, (self, other),
                     lambda g: (g * other.data, g * self.data), "*")
        ### END SOLUTION

    def __pow__(self, exponent):
        """self ** exponent for a number exponent."""
        ### BEGIN SOLUTION
        return Value(self.data ** exponent, (self,),
                     lambda g: (g * exponent * self.data ** (exponent - 1),), f"**{exponent}")
        ### END SOLUTION

    def __rpow__(self, base):
        """base ** self for a number base > 0."""
        ### BEGIN SOLUTION
        out = base ** self.data
        return Value(out, (self,), lambda g: (g * out * np.log(base),), f"{base}**")
        ### END SOLUTION

    def exp(self):
        ### BEGIN SOLUTION
        out = np.exp(self.data)
        return Value(out, (self,), lambda g: (g * out,), "exp")
        ### END SOLUTION

    def log(self):
        """The natural logarithm, for self.data > 0."""
        ### BEGIN SOLUTION
        return Value(np.log(self.data), (self,), lambda g: (g / self.data,), "log")
        ### END SOLUTION

    def sin(self):
        ### BEGIN SOLUTION
        return Value(np.sin(self.data), (self,), lambda g: (g * np.cos(self.data),), "sin")
        ### END SOLUTION

    def tanh(self):
        ### BEGIN SOLUTION
        out = np.tanh(self.data)
        return Value(out, (self,), lambda g: (g * (1 - out * out),), "tanh")
        ### END SOLUTION

    def relu(self):
        ### BEGIN SOLUTION
        return Value(max(self.data, 0.0), (self,), lambda g: (g * (self.data > 0),), "relu")
        ### END SOLUTION

    def __neg__(self):
        ### BEGIN SOLUTION
        return self * -1
        ### END SOLUTION

    def __sub__(self, other):
        ### BEGIN SOLUTION
        return self + (-as_value(other))
        ### END SOLUTION

    def __truediv__(self, other):
        ### BEGIN SOLUTION
        return self * as_value(other) ** -1
        ### END SOLUTION

    def __radd__(self, other):
        ### BEGIN SOLUTION
        return as_value(other) + self
        ### END SOLUTION

    def __rsub__(self, other):
        ### BEGIN SOLUTION
        return as_value(other) - self
        ### END SOLUTION

    def __rmul__(self, other):
        ### BEGIN SOLUTION
        return as_value(other) * self
        ### END SOLUTION

    def __rtruediv__(self, other):
        ### BEGIN SOLUTION
        return as_value(other) / self
        ### END SOLUTION


# %% test="test_value_class" points=3
def _compare(f, xs, what, expected=None):
    """f on Values and on autodiff_ref tensors: the same output and gradients?"""
    with grading.batch():  # many small operations: the grader sends them together
        vals = [Value(x) for x in xs]
        out = f(*vals)
    tens = [ad.tensor(x, requires_grad=True) for x in xs]
    ref = f(*tens)
    if not isinstance(out, Value):
        raise grading.GradingError(f"{what} returned a {type(out).__name__}, not a Value.")
    grading.assert_close(out.data, ref.item(), rtol=1e-12, atol=1e-14, name=f"the value of {what}")
    out.backward()
    ref.backward()
    for k, (v, t) in enumerate(zip(vals, tens)):
        grading.assert_close(v.grad, 0.0 if t.grad is None else t.grad.item(), rtol=1e-10,
                             atol=1e-12, name=f"the gradient {k} of {what} (vs autodiff_ref)")
    if expected is not None:
        grading.assert_close([v.grad for v in vals], expected, rtol=1e-4, name=f"grads of {what}")


with grading.exercise(3, "Value", needs=[(1, "topological_order"), (2, "backprop")]):
    # the running example y = ln x1 + x1 x2 - sin x2 at (2, 5): 5.5 and 2 - cos 5 = 1.7163
    _compare(lambda x1, x2: x1.log() + x1 * x2 - x2.sin(), [2.0, 5.0],
             "ln(x1) + x1*x2 - sin(x2)", expected=[5.5, 1.7163])
    # L = (w x + b - y)^2 at (2, 3, 1, 5): L = 4, gradients 12, 8, 4, -4 (notebook 03)
    _compare(lambda w, x, b, y: (w * x + b - y) ** 2, [2.0, 3.0, 1.0, 5.0],
             "(w*x + b - y)**2", expected=[12.0, 8.0, 4.0, -4.0])
    # f = (x + s(y)) / (s(x) + (x + y)^2), s(v) = 1 / (1 + exp(-v)) at (3, -4): 2.0596, 1.5922
    _sig = lambda v: 1 / (1 + (-v).exp())  # noqa: E731
    _compare(lambda x, y: (x + _sig(y)) / (_sig(x) + (x + y) ** 2), [3.0, -4.0],
             "(x + s(y)) / (s(x) + (x + y)**2)", expected=[2.0596, 1.5922])
    _compare(lambda x: x.tanh() + x.log() - 2 ** x + (3 - x).relu() * x + (-x).relu(), [0.5],
             "tanh(x) + log(x) - 2**x + relu(3 - x) * x + relu(-x)")
    _compare(lambda x: (x.exp() + 1) * x.exp() / x ** 1.5 - 2.0 / x, [np.log(2.0)],
             "(exp(x) + 1) exp(x) / x**1.5 - 2 / x")
    grading.passed("Value")
### BEGIN HIDDEN TESTS
_rng = np.random.default_rng()
_UNARY = [lambda a: a.tanh(), lambda a: (a * a + 0.5).log(), lambda a: a.tanh().exp(),
          lambda a: a.relu(), lambda a: -a, lambda a: (a * a + 0.1) ** 1.5, lambda a: a ** 3,
          lambda a: 1.7 ** a.tanh(), lambda a: 2.5 - a, lambda a: 1.0 / (a * a + 1.0),
          lambda a: 0.5 * a, lambda a: a + 0.25, lambda a: a.sin()]
_BINARY = [lambda a, b: a + b, lambda a, b: a - b, lambda a, b: a * b,
           lambda a, b: a / (b * b + 1.0), lambda a, b: (a * b).tanh() + a]


def _random_expression(rng, n_leaves, n_ops):
    plan = []
    for _ in range(n_ops):
        if rng.random() < 0.5:
            plan.append((0, int(rng.integers(len(_UNARY))), int(rng.integers(n_leaves + len(plan))), 0))
        else:
            plan.append((1, int(rng.integers(len(_BINARY)))) +
                        tuple(int(i) for i in rng.integers(n_leaves + len(plan), size=2)))

    def f(*xs):
        pool = list(xs)
        for kind, op, i, j in plan:
            r = _UNARY[op](pool[i]) if kind == 0 else _BINARY[op](pool[i], pool[j])
            pool.append(r.tanh() * 3.0 if abs(float(r.data)) > 50 else r)
        total = pool[-1]
        for extra in pool[-5:-1]:
            total = total + extra
        return total
    return f


for _trial in range(8):
    _n = int(_rng.integers(1, 4))
    _f = _random_expression(_rng, _n, int(_rng.integers(5, 30)))
    _xs = list(_rng.uniform(-1.5, 1.5, _n))
    _compare(_f, _xs, f"a random expression of {_n} inputs with shared subexpressions")
    # and against central differences where they are trustworthy (no ReLU kink nearby)
    with grading.batch():
        _vals = [Value(x) for x in _xs]
        _f(*_vals).backward()
    for _k in range(_n):
        _up, _down = list(_xs), list(_xs)
        _up[_k] += 1e-6
        _down[_k] -= 1e-6
        with grading.batch():
            _fd = (_f(*[Value(x) for x in _up]).data - _f(*[Value(x) for x in _down]).data)
        _fd = float(_fd) / 2e-6
        _tx = [ad.tensor(x, requires_grad=True) for x in _xs]
        _f(*_tx).backward()
        _exact = 0.0 if _tx[_k].grad is None else _tx[_k].grad.item()
        if abs(_fd - _exact) < 1e-5 * (1 + abs(_exact)):
            grading.assert_close(_vals[_k].grad, _fd, rtol=1e-4, atol=1e-5,
                                 name=f"gradient {_k} of a random expression vs central differences")
_compare(lambda x: x.relu() + (x - 1).relu(), [0.0], "relu(x) + relu(x - 1) at x = 0 (relu'(0) "
         "is taken as 0)")
# a graph 5,000 nodes deep
_x, _tx = Value(0.3), ad.tensor(0.3, requires_grad=True)
_v, _tv = _x, _tx
with grading.batch():
    for _ in range(2500):
        _v, _tv = (_v * 1.1).tanh(), (_tv * 1.1).tanh()
_v.backward()
_tv.backward()
grading.assert_close(_x.grad, _tx.grad.item(), rtol=1e-9, name="x.grad for a chain of 2,500 "
                     "tanh(1.1 v) (5,000 nodes deep)")
# parents are recorded, numbers become leaves, inputs are not changed
_a, _b = Value(1.5), Value(-2.0)
_c = _a * _b
if not (len(_c.parents) == 2 and _c.parents[0] is _a and _c.parents[1] is _b):
    raise grading.GradingError("(a * b).parents should be (a, b), the Values themselves.")
for _expr, _label in [(_a + 2, "a + 2"), (2 * _a, "2 * a"), (_a ** 2, "a ** 2")]:
    for _p in _expr.parents:
        if not isinstance(_p, Node):
            raise grading.GradingError(f"({_label}).parents contains {_p!r}, which is not a "
                                       "Node: wrap numbers with as_value.")
if (_a.data, _b.data) != (1.5, -2.0):
    raise grading.GradingError("an operation changed the .data of its inputs.")
### END HIDDEN TESTS

# %% [markdown]
# Your `Value` is a complete scalar engine, and it can already train a tiny
# model. The cell below fits $y = w x + b$ to three points by gradient
# descent: each step builds a fresh graph, calls `backward()`, reads the
# gradients of the leaves and **clears them** (leaves accumulate).

# %%
try:
    w, b = Value(0.0), Value(0.0)
    points = [(1.0, 3.0), (2.0, 5.0), (3.0, 7.0)]  # y = 2x + 1
    for step in range(200):
        loss = sum(((w * x + b - y) ** 2 for x, y in points), Value(0.0)) / len(points)
        w.grad, b.grad = 0.0, 0.0  # clear: without this, step t would use the sum of t gradients
        loss.backward()
        w.data -= 0.1 * w.grad
        b.data -= 0.1 * b.grad
    print(f"after 200 steps: w = {w.data:.4f}, b = {b.data:.4f}, loss = {loss.data:.2e}")
except NotImplementedError:
    print("Finish exercises 1-3 to train with your Value.")

# %% [markdown]
# ## 5. A tensor engine
#
# One node per number is far too slow for a network: a product of two
# $64 \times 64$ matrices would be 500,000 nodes. Real engines record one
# node per **array operation**, and its local backward is the
# vector-Jacobian product you derived in notebook 05. The engine does not
# change: a topological order, a walk, and accumulation. Only the contents of
# a node grow:
#
# * a **primitive** is a class with two static methods,
#   `forward(ctx, *arrays)`, which computes the result from NumPy arrays, and
#   `backward(ctx, grad_output)`, which receives the adjoint of the result
#   (an array of the result's shape) and returns a **tuple** of adjoints, one per input
#   of `forward`, each of that input's shape (`None` for an input that needs
#   none, such as a table of labels);
# * `ctx`, a fresh `Context` per call, carries what `forward` keeps for
#   `backward`: `ctx.save_for_backward(a, b)` stores arrays, `ctx.saved`
#   returns them, and any other fact can be stored as `ctx.shape = ...`;
# * `Function.apply(*tensors)` runs `forward` on the tensors' arrays and
#   returns a new `Tensor` that records its parents (the tensors), its
#   primitive (`fn`) and its `ctx`;
# * `Tensor.backward()` walks the graph. Adjoints of intermediates are
#   temporary (kept in a dictionary while the walk runs); **leaves**
#   (parameters, inputs) get theirs in `.grad`, added to what is already
#   there, as with `Value`.
#
# This is the design of PyTorch's `autograd.Function` and of `autodiff_ref`
# (notebook 07), without the conveniences (`requires_grad`, higher
# derivatives). Two primitives come with the class, as examples of the
# format: `Mul` (element-wise, same shapes) and `Exp`. Your
# `topological_order` works unchanged on tensors: it only uses `.parents`.
#
# **Common mistake:** adding into an adjoint **in place**
# (`adjoints[k] += g`). A primitive may return the same array object for two
# inputs (an addition returns `(grad, grad)`), or return its own upstream
# array; an in-place add then changes another node's adjoint behind your
# back. Write `adjoints[k] = adjoints[k] + g`, and copy before storing an
# array in a leaf's `.grad`.
#
# ### Exercise 4 (3 points): `Function.apply` and `Tensor.backward`
#
# Besides the walk, `backward` checks the contract of every primitive: a
# gradient whose shape is not its input's shape is a bug in that primitive,
# and the sooner it is reported, the easier it is to find. The tests also
# use the primitives below the exercise, a graph 5,000 nodes deep and a
# primitive that returns a wrong shape.

# %% solution="tensor_engine" dunder_methods=true
class Context:
    """What one call of a primitive's forward keeps for its backward."""

    def save_for_backward(self, *arrays):
        self.saved = arrays


def as_tensor(x):
    """x itself if it is a Tensor, else a constant leaf Tensor holding x."""
    return x if isinstance(x, Tensor) else Tensor(x)


class Tensor:
    """A float64 array in a recorded graph.

    data: the NumPy array; grad: None, or for a leaf the sum of the gradients
    of all backward() calls so far (an array of data's shape); parents: the
    Tensors it was computed from (empty for a leaf); fn: the primitive (a
    Function subclass) that computed it, ctx: that call's Context.
    """

    def __init__(self, data, parents=(), fn=None, ctx=None):
        self.data = np.array(data, dtype=np.float64)
        self.grad = None
        self.parents = tuple(parents)
        self.fn = fn
        self.ctx = ctx

    @property
    def shape(self):
        return self.data.shape

    def __repr__(self):
        return f"Tensor(shape={self.shape}, {'computed' if self.parents else 'leaf'})"

    def __add__(self, other): return Add.apply(self, as_tensor(other))
    def __radd__(self, other): return Add.apply(as_tensor(other), self)
    def __mul__(self, other): return Mul.apply(self, as_tensor(other))
    def __matmul__(self, other): return MatMul.apply(self, as_tensor(other))
    def exp(self): return Exp.apply(self)
    def relu(self): return ReLU.apply(self)
    def sum(self): return Sum.apply(self)
    def mean(self): return Mean.apply(self)

    def backward(self):
        """Reverse mode from this Tensor, which must hold one number (a loss).

        Every leaf below it gets d self / d leaf added to its .grad (None
        counts as zero; store a new array, never one a primitive returned);
        intermediates' .grad stays None. Each node's adjoint goes through
        node.fn.backward(node.ctx, adjoint); None entries are skipped.
        Raises ValueError if a backward returns a gradient whose shape is not
        the shape of its input. Uses your topological_order; no recursion.
        """
        ### BEGIN SOLUTION
        adjoints = {id(self): np.ones(self.shape)}
        for node in reversed(topological_order(self)):
            adjoint = adjoints.pop(id(node), None)
            if adjoint is None:  # every consumer returned None for it: no gradient needed
                continue
            if not node.parents:
                node.grad = adjoint.copy() if node.grad is None else node.grad + adjoint
                continue
            grads = node.fn.backward(node.ctx, adjoint)
            for parent, g in zip(node.parents, grads):
                if g is None:
                    continue
                g = np.asarray(g, dtype=np.float64)
                if g.shape != parent.shape:
                    raise ValueError(f"the backward of {node.fn} returned a gradient of shape "
                                     f"{g.shape} for an input of shape {parent.shape}")
                if id(parent) in adjoints:
                    adjoints[id(parent)] = adjoints[id(parent)] + g
                else:
                    adjoints[id(parent)] = g
        ### END SOLUTION


class Function:
    """A primitive: subclasses define forward(ctx, *arrays) and
    backward(ctx, grad_output)."""

    @classmethod
    def apply(cls, *inputs):
        """Run cls.forward on the inputs' arrays (inputs: Tensors) with a new
        Context; return the result as a Tensor that records the inputs as its
        parents, cls as its fn and the Context as its ctx."""
        ### BEGIN SOLUTION
        ctx = Context()
        out = cls.forward(ctx, *[t.data for t in inputs])
        return Tensor(out, parents=inputs, fn=cls, ctx=ctx)
        ### END SOLUTION


class Mul(Function):
    """a * b element-wise, for arrays of the same shape (an example primitive)."""

    @staticmethod
    def forward(ctx, a, b):
        ctx.save_for_backward(a, b)
        return a * b

    @staticmethod
    def backward(ctx, grad_output):
        a, b = ctx.saved
        return grad_output * b, grad_output * a


class Exp(Function):
    """exp(a) element-wise (an example primitive: it saves its output)."""

    @staticmethod
    def forward(ctx, a):
        out = np.exp(a)
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx, grad_output):
        (out,) = ctx.saved
        return (grad_output * out,)


# %% [markdown]
# Five more primitives written to the same contract. The tests build graphs
# with them: `Twice` returns one array object for both of its inputs,
# `Scaled` has an input that needs no gradient, and `WrongShape` has a
# backward that is wrong on purpose (your `backward` should catch it).

# %%
class Sin(Function):
    """sin(a) element-wise."""

    @staticmethod
    def forward(ctx, a):
        if not isinstance(a, np.ndarray):
            raise TypeError(f"Function.apply passed a {type(a).__name__} to forward; "
                            "forward gets the inputs' arrays (.data).")
        ctx.save_for_backward(a)
        return np.sin(a)

    @staticmethod
    def backward(ctx, grad_output):
        (a,) = ctx.saved
        return (grad_output * np.cos(a),)


class Twice(Function):
    """a + b for arrays of the same shape; backward returns one array twice."""

    @staticmethod
    def forward(ctx, a, b):
        return a + b

    @staticmethod
    def backward(ctx, grad_output):
        return grad_output, grad_output


class Total(Function):
    """The sum of all entries of a."""

    @staticmethod
    def forward(ctx, a):
        ctx.shape = a.shape
        return np.sum(a)

    @staticmethod
    def backward(ctx, grad_output):
        return (grad_output * np.ones(ctx.shape),)


class Scaled(Function):
    """a * c for a constant c (a tensor that needs no gradient)."""

    @staticmethod
    def forward(ctx, a, c):
        ctx.c = c
        return a * c

    @staticmethod
    def backward(ctx, grad_output):
        return grad_output * ctx.c, None


class WrongShape(Function):
    """The identity, with a backward that returns the wrong shape."""

    @staticmethod
    def forward(ctx, a):
        return a.copy()

    @staticmethod
    def backward(ctx, grad_output):
        return (np.sum(grad_output, axis=0),)


# %% test="test_tensor_engine" points=3
with grading.exercise(4, "Tensor.backward and Function.apply", needs=[(1, "topological_order")]):
    # y = exp(x * x) * x at x = 0.5: dy/dx = exp(x^2) (2 x^2 + 1) = 1.5 e^0.25
    _x = Tensor(0.5)
    _y = (_x * _x).exp() * _x
    if not (isinstance(_y, Tensor) and _y.fn is Mul and _y.parents[1] is _x):
        raise grading.GradingError("Mul.apply(a, b) should return a Tensor with fn Mul and "
                                   "parents (a, b).")
    _y.backward()
    grading.assert_close(_x.grad, 1.5 * np.exp(0.25), rtol=1e-12, name="x.grad, y = exp(x*x) * x")
    if _y.grad is not None or _y.parents[0].grad is not None:
        raise grading.GradingError("after y.backward(), intermediates should keep .grad None.")
    ((_x * _x).exp() * _x).backward()  # a new graph: the leaf adds its gradient again
    grading.assert_close(_x.grad, 3.0 * np.exp(0.25), rtol=1e-12,
                         name="x.grad after a second backward() on a new graph (1.5 e^0.25 twice)")
    grading.passed("Tensor.backward and Function.apply")
### BEGIN HIDDEN TESTS
_rng = np.random.default_rng()
for _trial in range(5):
    _shape = (int(_rng.integers(1, 5)), int(_rng.integers(1, 4)))
    _vals = [_rng.uniform(-1, 1, _shape) for _ in range(3)]
    _mine = [Tensor(v) for v in _vals]
    _ref = [ad.tensor(v, requires_grad=True) for v in _vals]
    _pool = list(zip(_mine, _ref))
    with grading.batch():
        for _ in range(int(_rng.integers(5, 20))):
            (_a, _ta), (_b, _tb) = (_pool[int(_rng.integers(len(_pool)))] for _ in range(2))
            _kind = int(_rng.integers(4))
            if _kind == 0:
                _pool.append((Twice.apply(_a, _b), _ta + _tb))
            elif _kind == 1:
                _pool.append((Sin.apply(_a), ad.sin(_ta)))
            elif _kind == 2:
                _pool.append((Mul.apply(Sin.apply(_a), _b), ad.sin(_ta) * _tb))
            else:
                _c = float(_rng.uniform(0.5, 1.5))
                _pool.append((Scaled.apply(_a, Tensor(_c)), _ta * _c))
        _root, _troot = _pool[-1]
        for _n, _t in _pool[-4:-1]:
            _root, _troot = Twice.apply(_root, _n), _troot + _t
        _out = Total.apply(_root)
    if _out.fn is not Total or not isinstance(_out.ctx, Context) or _out.parents[0] is not _root:
        raise grading.GradingError("Function.apply should record fn (the class), ctx (a new "
                                   "Context) and parents (the input Tensors).")
    _out.backward()
    _troot.sum().backward()
    for _k, (_m, _t) in enumerate(zip(_mine, _ref)):
        _expected = np.zeros(_shape) if _t.grad is None else _t.grad.data
        grading.assert_close(np.zeros(_shape) if _m.grad is None else _m.grad, _expected,
                             rtol=1e-10, atol=1e-12,
                             name=f"leaf {_k}.grad in a random graph with shared nodes and "
                                  "primitives that return one array twice (vs autodiff_ref)")
_x, _tx = Tensor(np.array([0.5, -0.3])), ad.tensor([0.5, -0.3], requires_grad=True)
_v, _tv = _x, _tx
with grading.batch():
    for _ in range(5000):
        _v, _tv = Sin.apply(_v), ad.sin(_tv)
try:
    Total.apply(_v).backward()
except RecursionError:
    raise grading.GradingError("Tensor.backward raised RecursionError on a graph 5,000 nodes "
                               "deep.") from None
_tv.sum().backward()
grading.assert_close(_x.grad, _tx.grad.data, rtol=1e-10, name="x.grad for 5,000 nested sin")
_a, _b = Tensor(np.ones(3)), Tensor(np.ones(3))
Total.apply(Twice.apply(_a, _b)).backward()
if _a.grad is None or _b.grad is None:
    raise grading.GradingError("for y = sum(a + b), a.grad or b.grad is None after backward().")
Total.apply(Scaled.apply(_a, Tensor(2.0))).backward()  # a second graph that uses only a
if not np.allclose(_b.grad, 1.0) or not np.allclose(_a.grad, 3.0):
    raise grading.GradingError(
        "for y = sum(a + b) with a primitive whose backward returns (grad, grad), then a "
        f"second backward through 2 a alone: a.grad should be 3 and b.grad 1, got "
        f"{np.asarray(_a.grad).tolist()} and {np.asarray(_b.grad).tolist()}. If b.grad changed, "
        "a.grad and b.grad are the same array: store a copy in a leaf's .grad.")
_x = Tensor(np.ones((3, 2)))
try:
    Total.apply(WrongShape.apply(_x)).backward()
except ValueError:
    pass
else:
    raise grading.GradingError("a backward that returns a gradient of shape (2,) for an input of "
                               "shape (3, 2) should make Tensor.backward raise ValueError.")
### END HIDDEN TESTS

# %% [markdown]
# ## 6. The primitives of a network
#
# The network of notebook 06, for a batch of $N$ examples stored as rows, is
#
# $$
# Z = X W_1 + b_1, \qquad H = \operatorname{ReLU}(Z), \qquad
# \Theta = H W_2 + b_2, \qquad
# J = -\frac{1}{N} \sum_{n} \log \operatorname{softmax}(\Theta_n)_{c_n},
# $$
#
# with $W_1$ of shape $(D_x, D_h)$ and $W_2$ of shape $(D_h, C)$: the $W$ and
# $U$ of notebook 06, stored transposed so that no transpose primitive is
# needed, and $c_n$ the class of example $n$. It needs four primitives:
# `MatMul`, `Add` with **broadcasting** (the biases, of shape $(D_h,)$, are
# added to every row), `ReLU` and the fused `CrossEntropy`, plus `Sum` and
# `Mean` for other losses. Their backward rules are the ones you derived in
# notebook 05; write them again from your derivation, not from memory:
#
# * for $Z = AB$, each entry $Z_{ij} = \sum_k A_{ik} B_{kj}$; differentiate
#   $\sum_{ij} \bar Z_{ij} Z_{ij}$ with respect to $A_{ik}$ and $B_{kj}$, and
#   check the shapes;
# * an input that was **broadcast** was used several times, so its adjoint
#   is the **sum** of the adjoints of its copies: over the leading axes that
#   broadcasting added, and over the axes where the input had size 1. Write
#   `unbroadcast(grad, shape)` once and use it in `Add`;
# * ReLU passes the adjoint where the input was positive;
# * cross-entropy: compute $\log \operatorname{softmax}$ stably (subtract the
#   row maximum before exponentiating), and remember the factor $1/N$ of the
#   mean. Its second input is the **one-hot** table of labels (an $N \times C$
#   array with one 1 per row), which needs no gradient.
#
# **Common mistake:** the bias gradient without the sum over the batch:
# $\bar b_1$ must have $b_1$'s shape $(D_h,)$, not $(N, D_h)$. Your engine
# catches it now (a `ValueError` from exercise 4), which is exactly why that
# check is there.
#
# ### Exercise 5 (2 points): `unbroadcast`, `MatMul`, `Add`, `ReLU`

# %% solution="linear_primitives" exact=true
def unbroadcast(grad, shape):
    """Sum grad (an array of the broadcast shape) down to shape, the shape of
    an input that NumPy broadcast to grad's shape. Returns an array of shape."""
    ### BEGIN SOLUTION
    while grad.ndim > len(shape):
        grad = grad.sum(axis=0)
    for axis, size in enumerate(shape):
        if size == 1:
            grad = grad.sum(axis=axis, keepdims=True)
    return grad
    ### END SOLUTION


class MatMul(Function):
    """a @ b for 2-D arrays a (n, k) and b (k, m)."""

    @staticmethod
    def forward(ctx, a, b):
        ### BEGIN SOLUTION
        ctx.save_for_backward(a, b)
        return a @ b
        ### END SOLUTION

    @staticmethod
    def backward(ctx, grad_output):
        ### BEGIN SOLUTION
        a, b = ctx.saved
        return grad_output @ b.T, a.T @ grad_output
        ### END SOLUTION


class Add(Function):
    """a + b with NumPy broadcasting (for example (N, D) + (D,))."""

    @staticmethod
    def forward(ctx, a, b):
        ### BEGIN SOLUTION
        ctx.shapes = (a.shape, b.shape)
        return a + b
        ### END SOLUTION

    @staticmethod
    def backward(ctx, grad_output):
        ### BEGIN SOLUTION
        shape_a, shape_b = ctx.shapes
        return unbroadcast(grad_output, shape_a), unbroadcast(grad_output, shape_b)
        ### END SOLUTION


class ReLU(Function):
    """max(a, 0) element-wise; its derivative at 0 is taken as 0."""

    @staticmethod
    def forward(ctx, a):
        ### BEGIN SOLUTION
        ctx.save_for_backward(a > 0)
        return np.maximum(a, 0)
        ### END SOLUTION

    @staticmethod
    def backward(ctx, grad_output):
        ### BEGIN SOLUTION
        (positive,) = ctx.saved
        return (grad_output * positive,)
        ### END SOLUTION


# %% test="test_linear_primitives" points=2
def _backward_of(primitive, keep=None, extra=()):
    """backward(g, *arrays) for check_vjp: forward with a new Context (and the
    extra arguments), then backward; keep: which gradient to return."""
    def backward(g, *arrays):
        ctx = Context()
        primitive.forward(ctx, *arrays, *extra)
        grads = primitive.backward(ctx, g)
        return grads if keep is None else grads[keep]
    return backward


with grading.exercise(5, "MatMul, Add, ReLU"):
    grading.assert_close(unbroadcast(np.ones((4, 2, 3)), (2, 1)), np.full((2, 1), 12.0),
                         name="unbroadcast(ones((4, 2, 3)), (2, 1))")
    for _shapes in [[(3, 4), (4, 2)], [(1, 5), (5, 1)]]:
        grading.check_vjp(_backward_of(MatMul), lambda a, b: a @ b, _shapes, rtol=1e-10,
                          atol=1e-12, reference=lambda a, b: a @ b, names=["MatMul: grad a", "grad b"])
    for _shapes in [[(4, 3), (3,)], [(2, 3), (2, 1)], [(3,), (2, 3)], [(2, 3), ()]]:
        grading.check_vjp(_backward_of(Add), lambda a, b: a + b, _shapes, rtol=1e-10, atol=1e-12,
                          reference=lambda a, b: a + b, names=["Add: grad a", "grad b"])
    grading.check_vjp(_backward_of(ReLU), lambda a: np.maximum(a, 0), [(3, 4)], rtol=1e-10,
                      atol=1e-12, reference=lambda a: a.relu(), names=["ReLU: grad a"])
    grading.passed("MatMul, Add, ReLU")
### BEGIN HIDDEN TESTS
_rng = np.random.default_rng()
for _ in range(3):
    _n, _k, _m = (int(v) for v in _rng.integers(1, 6, 3))
    grading.check_vjp(_backward_of(MatMul), lambda a, b: a @ b, [(_n, _k), (_k, _m)], rtol=1e-10,
                      atol=1e-12, reference=lambda a, b: a @ b, names=["MatMul: grad a", "grad b"])
    _N, _D = (int(v) for v in _rng.integers(2, 6, 2))
    for _shapes in [[(_N, _D), (_D,)], [(_D,), (_N, _D)], [(_N, 1), (1, _D)], [(2, _N, _D), (_N, 1)],
                    [(), (_N, _D)], [(_N, _D), (_N, _D)]]:
        grading.check_vjp(_backward_of(Add), lambda a, b: a + b, _shapes, rtol=1e-10, atol=1e-12,
                          reference=lambda a, b: a + b, names=["Add: grad a", "grad b"])
    grading.check_vjp(_backward_of(ReLU), lambda a: np.maximum(a, 0), [(_N, _D)], rtol=1e-10,
                      atol=1e-12, reference=lambda a: a.relu(), names=["ReLU: grad a"])
_a = np.array([[-1.0, 0.0, 2.0]])
grading.assert_close(_backward_of(ReLU)(np.array([[5.0, 7.0, 3.0]]), _a)[0], [[0.0, 0.0, 3.0]],
                     name="ReLU backward at a = [-1, 0, 2] (the derivative at 0 is 0)")
# inside the engine: a broadcast bias
_X, _W, _b = _rng.standard_normal((4, 3)), _rng.standard_normal((3, 2)), _rng.standard_normal(2)
_out = (Tensor(_X) @ Tensor(_W) + Tensor(_b)).relu()
grading.assert_close(_out.data, np.maximum(_X @ _W + _b, 0), rtol=1e-12,
                     name="relu(X @ W + b) with your engine")
### END HIDDEN TESTS

# %% [markdown]
# ### Exercise 6 (2 points): `Sum`, `Mean`, `CrossEntropy`
#
# `Sum` and `Mean` reduce a whole array to one number. `CrossEntropy` takes
# the logits $\Theta$ $(N, C)$ and the one-hot labels $Y$ $(N, C)$ and
# returns the mean loss $J$ (an array of shape `()`). Its backward is the
# fused rule of notebook 05: derive it again from
# $J = -\frac1N \sum_{n,k} Y_{nk} \log \operatorname{softmax}(\Theta_n)_k$
# (use $\sum_k Y_{nk} = 1$). It must stay finite for logits such as 1000.
# The helper `cross_entropy(logits, labels)` after the cell builds the
# one-hot table from integer labels.

# %% solution="loss_primitives" exact=true
class Sum(Function):
    """The sum of all entries of a (any shape); returns an array of shape ()."""

    @staticmethod
    def forward(ctx, a):
        ### BEGIN SOLUTION
        ctx.shape = a.shape
        return np.sum(a)
        ### END SOLUTION

    @staticmethod
    def backward(ctx, grad_output):
        ### BEGIN SOLUTION
        return (grad_output * np.ones(ctx.shape),)
        ### END SOLUTION


class Mean(Function):
    """The mean of all entries of a (any shape, at least one entry); shape ()."""

    @staticmethod
    def forward(ctx, a):
        ### BEGIN SOLUTION
        ctx.shape = a.shape
        return np.mean(a)
        ### END SOLUTION

    @staticmethod
    def backward(ctx, grad_output):
        ### BEGIN SOLUTION
        return (grad_output * np.ones(ctx.shape) / np.prod(ctx.shape),)
        ### END SOLUTION


class CrossEntropy(Function):
    """Mean softmax cross-entropy of logits (N, C) against one-hot labels (N, C).

    Returns an array of shape (); backward returns (gradient for the logits,
    None) since the labels need no gradient.
    """

    @staticmethod
    def forward(ctx, logits, onehot):
        ### BEGIN SOLUTION
        shifted = logits - logits.max(axis=1, keepdims=True)
        log_probs = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
        ctx.save_for_backward(np.exp(log_probs), onehot)
        return -np.sum(onehot * log_probs) / logits.shape[0]
        ### END SOLUTION

    @staticmethod
    def backward(ctx, grad_output):
        ### BEGIN SOLUTION
        probs, onehot = ctx.saved
        return grad_output * (probs - onehot) / probs.shape[0], None
        ### END SOLUTION


def cross_entropy(logits, labels):
    """The mean cross-entropy of a Tensor of logits (N, C) and integer labels (N,)."""
    labels = np.asarray(labels)
    return CrossEntropy.apply(logits, Tensor(np.eye(logits.shape[1])[labels]))


# %% test="test_loss_primitives" points=2
with grading.exercise(6, "Sum, Mean, CrossEntropy"):
    grading.check_vjp(_backward_of(Sum), np.sum, [(3, 4)], rtol=1e-10, atol=1e-12,
                      reference=lambda a: a.sum(), names=["Sum: grad a"])
    grading.check_vjp(_backward_of(Mean), np.mean, [(2, 5)], rtol=1e-10, atol=1e-12,
                      reference=lambda a: a.mean(), names=["Mean: grad a"])
    _labels = np.array([0, 2, 1, 2])
    _onehot = np.eye(3)[_labels]
    grading.check_vjp(_backward_of(CrossEntropy, keep=0, extra=(_onehot,)),
                      lambda z: CrossEntropy.forward(Context(), z, _onehot), [(4, 3)], rtol=1e-10,
                      atol=1e-12, reference=lambda z: ad.cross_entropy(z, _labels),
                      names=["CrossEntropy: grad logits"])
    # logits 1000 apart: the loss is 1000 for the wrong class, the gradient finite
    _big = Tensor(np.array([[1000.0, 0.0], [0.0, 1000.0]]))
    grading.assert_close(cross_entropy(_big, [1, 1]).data, 500.0, name="the loss of [[1000, 0], "
                         "[0, 1000]] for labels [1, 1] (mean of 1000 and 0)")
    grading.passed("Sum, Mean, CrossEntropy")
### BEGIN HIDDEN TESTS
_rng = np.random.default_rng()
for _ in range(3):
    _shape = tuple(int(v) for v in _rng.integers(1, 5, int(_rng.integers(1, 4))))
    grading.check_vjp(_backward_of(Sum), np.sum, [_shape], rtol=1e-10, atol=1e-12,
                      reference=lambda a: a.sum(), names=["Sum: grad a"])
    grading.check_vjp(_backward_of(Mean), np.mean, [_shape], rtol=1e-10, atol=1e-12,
                      reference=lambda a: a.mean(), names=["Mean: grad a"])
    _N, _C = int(_rng.integers(1, 7)), int(_rng.integers(2, 6))
    _labels = _rng.integers(0, _C, _N)
    _onehot = np.eye(_C)[_labels]
    grading.check_vjp(_backward_of(CrossEntropy, keep=0, extra=(_onehot,)),
                      lambda z: CrossEntropy.forward(Context(), z, _onehot), [(_N, _C)],
                      rtol=1e-10, atol=1e-12, low=-4, high=4,
                      reference=lambda z: ad.cross_entropy(z, _labels),
                      names=["CrossEntropy: grad logits"])
    _z = _rng.uniform(-1, 1, (_N, _C)) * 800
    _ctx = Context()
    _loss = CrossEntropy.forward(_ctx, _z, _onehot)
    _ref = ad.tensor(_z, requires_grad=True)
    _rl = ad.cross_entropy(_ref, _labels)
    _rl.backward()
    grading.assert_close(_loss, _rl.item(), rtol=1e-10, name="CrossEntropy of logits up to 800")
    _g = CrossEntropy.backward(_ctx, np.array(1.0))
    grading.assert_close(_g[0], _ref.grad.data, rtol=1e-10, atol=1e-14,
                         name="the CrossEntropy gradient for logits up to 800")
    if _g[1] is not None:
        raise grading.GradingError("CrossEntropy.backward should return None for the labels.")
### END HIDDEN TESTS

# %% [markdown]
# ## 7. Training on handwritten digits
#
# `load_digits` holds 1,797 handwritten digits 0 to 9, written by 13 people
# (the test part of the UCI "optical recognition of handwritten digits"
# set). Each image has $8 \times 8$ pixels, and each pixel counts the inked
# points in a $4 \times 4$ block of a $32 \times 32$ scan (0 to 16). We scale the
# pixels to $[0, 1]$, keep the first 1,500 images for training and the last
# 297 for testing, and use the network above with $D_x = 64$, $D_h = 32$,
# $C = 10$ (the initialisation of notebook 06: He scaling for $W_1$,
# variance $1/D_h$ for $W_2$, zero biases).
#
# Training uses **mini-batches**: each step takes 64 random training
# images, computes the loss and its gradient on them alone, and takes one
# plain gradient step $p \leftarrow p - \eta\, \bar p$ for every parameter $p$. The
# batches are drawn once, in advance, so that two engines given the same
# initial parameters and the same batches must produce **the same numbers**.
# `train_ref` does it with `autodiff_ref`; you write `train_own` with your
# engine.

# %%
digits = load_digits()
X_all, y_all = digits.data / 16.0, digits.target
X_train, y_train, X_test, y_test = X_all[:1500], y_all[:1500], X_all[1500:], y_all[1500:]


def init_params(Dx=64, Dh=32, C=10, seed=0):
    """The initial parameters W1 (Dx, Dh), b1 (Dh,), W2 (Dh, C), b2 (C,)."""
    rng = np.random.default_rng(seed)
    return {"W1": rng.standard_normal((Dx, Dh)) * np.sqrt(2.0 / Dx), "b1": np.zeros(Dh),
            "W2": rng.standard_normal((Dh, C)) * np.sqrt(1.0 / Dh), "b2": np.zeros(C)}


def make_batches(n, batch_size, steps, seed=0):
    """`steps` index arrays of `batch_size` distinct examples out of n."""
    rng = np.random.default_rng(seed)
    return [rng.choice(n, batch_size, replace=False) for _ in range(steps)]


def train_ref(X, y, params, lr, batches):
    """Mini-batch gradient descent with autodiff_ref: (losses, final params)."""
    params, losses = dict(params), []
    for idx in batches:
        t = {k: ad.tensor(v, requires_grad=True) for k, v in params.items()}
        hidden = ad.relu(ad.tensor(X[idx]) @ t["W1"] + t["b1"])
        loss = ad.cross_entropy(hidden @ t["W2"] + t["b2"], y[idx])
        loss.backward()
        params = {k: v - lr * t[k].grad.data for k, v in params.items()}
        losses.append(loss.item())
    return np.array(losses), params


fig, axes = plt.subplots(1, 8, figsize=(10, 1.6))
for ax, image, label in zip(axes, X_train, y_train):
    ax.imshow(image.reshape(8, 8), cmap="gray_r")
    ax.set_title(f"label {label}", fontsize=9)
    ax.axis("off")
fig.suptitle("the first training images (8 x 8 pixels)", y=1.08)
plt.show()

# %% [markdown]
# **Common mistake:** not clearing the leaves' `.grad` between steps. Leaves
# accumulate (that is the contract of exercise 4), so step $t$ would follow
# the sum of all gradients so far. The curves of the two engines then part
# after the first step, which the test below reports.
#
# ### Exercise 7 (2 points): training with your engine

# %% solution="train_own"
def train_own(X, y, params, lr, batches):
    """Mini-batch gradient descent with your Tensor engine (no autodiff_ref).

    X: (n, Dx) inputs; y: (n,) integer labels; params: dict of NumPy arrays
    W1 (Dx, Dh), b1 (Dh,), W2 (Dh, C), b2 (C,), not modified; lr: the
    learning rate; batches: a list of index arrays. For each batch: the mean
    cross-entropy of relu(X[idx] @ W1 + b1) @ W2 + b2 against y[idx], its
    gradient, and the step param <- param - lr * gradient.
    Returns (losses, params): a 1-D array with the loss of each step (before
    its update) and a dict of the final parameters (NumPy arrays).
    """
    ### BEGIN SOLUTION
    tensors = {k: Tensor(v) for k, v in params.items()}
    losses = []
    for idx in batches:
        hidden = (Tensor(X[idx]) @ tensors["W1"] + tensors["b1"]).relu()
        loss = cross_entropy(hidden @ tensors["W2"] + tensors["b2"], y[idx])
        for t in tensors.values():
            t.grad = None
        loss.backward()
        for t in tensors.values():
            t.data = t.data - lr * t.grad
        losses.append(float(loss.data))
    return np.array(losses), {k: t.data for k, t in tensors.items()}
    ### END SOLUTION


# %% test="test_train_own" points=2
with grading.exercise(7, "train_own", needs=[(4, "apply"), (5, "unbroadcast"),
                                             ("5 or 6", "forward"), ("4, 5 or 6", "backward")]):
    _init, _batches = init_params(seed=1), make_batches(1500, 64, 20, seed=1)
    _copy = {k: v.copy() for k, v in _init.items()}
    _losses, _final = train_own(X_train, y_train, _copy, 0.5, _batches)
    _ref_losses, _ref_final = train_ref(X_train, y_train, _init, 0.5, _batches)
    grading.assert_close(np.asarray(_losses, dtype=float), _ref_losses, rtol=1e-10, atol=1e-12,
                         name="the 20 losses of train_own vs train_ref (same init, same batches)")
    for _k in _init:
        grading.assert_close(_final[_k], _ref_final[_k], rtol=1e-9, atol=1e-12,
                             name=f"the final {_k} of train_own vs train_ref")
    if any(not np.array_equal(_copy[k], _init[k]) for k in _init):
        raise grading.GradingError("train_own changed the arrays of params it was given.")
    grading.passed("train_own")
### BEGIN HIDDEN TESTS
_rng = np.random.default_rng()
for _ in range(2):
    _n, _Dx, _Dh, _C = (int(v) for v in _rng.integers([20, 2, 3, 2], [40, 6, 8, 5]))
    _X, _y = _rng.standard_normal((_n, _Dx)), _rng.integers(0, _C, _n)
    _init = init_params(_Dx, _Dh, _C, seed=int(_rng.integers(1 << 30)))
    _init["b1"] = 0.1 * _rng.standard_normal(_Dh)
    _init["b2"] = 0.1 * _rng.standard_normal(_C)
    _batches = make_batches(_n, int(_rng.integers(3, 10)), int(_rng.integers(5, 15)),
                            seed=int(_rng.integers(1 << 30)))
    _lr = float(_rng.uniform(0.05, 0.8))
    _losses, _final = train_own(_X, _y, {k: v.copy() for k, v in _init.items()}, _lr, _batches)
    _ref_losses, _ref_final = train_ref(_X, _y, _init, _lr, _batches)
    _what = f"train_own on random data (n={_n}, Dx={_Dx}, Dh={_Dh}, C={_C}, lr={_lr:.3f})"
    grading.assert_close(np.asarray(_losses, dtype=float), _ref_losses, rtol=1e-10, atol=1e-12,
                         name=f"the losses of {_what} vs train_ref")
    for _k in _init:
        grading.assert_close(_final[_k], _ref_final[_k], rtol=1e-9, atol=1e-12,
                             name=f"the final {_k} of {_what} vs train_ref")
### END HIDDEN TESTS

# %% [markdown]
# The cell below trains for 500 steps with both engines from the same start
# and on the same batches, and plots both loss curves and their difference.
# The two engines compute the same formulas, but not always with the same
# floating-point operations in the same order, so they may differ in the last
# digits; gradient descent does not amplify such tiny differences here, and
# the curves agree to within a few units of $10^{-16}$ over the whole run.
# The loss is the loss of each step's own mini-batch, so the curve is noisy;
# the accuracy on the 297 test images, which the network never saw, comes
# out at about 92%.

# %%
def accuracy(X, y, params):
    hidden = np.maximum(X @ params["W1"] + params["b1"], 0)
    return np.mean((hidden @ params["W2"] + params["b2"]).argmax(axis=1) == y)


init, batches = init_params(seed=0), make_batches(len(X_train), 64, 500, seed=0)
start = time.perf_counter()
ref_losses, ref_params = train_ref(X_train, y_train, init, 0.5, batches)
time_ref = time.perf_counter() - start
try:
    start = time.perf_counter()
    own_losses, own_params = train_own(X_train, y_train, init, 0.5, batches)
    time_own = time.perf_counter() - start
except NotImplementedError:
    print("Finish exercises 4-7 to train with your engine; autodiff_ref alone:")
    own_losses = None
fig, (left, right) = plt.subplots(1, 2, figsize=(11, 3.8))
left.plot(ref_losses, lw=3, alpha=0.5, label=f"autodiff_ref ({time_ref:.2f} s)")
if own_losses is not None:
    left.plot(own_losses, "k", lw=0.8, label=f"your engine ({time_own:.2f} s)")
    right.semilogy(np.abs(np.asarray(own_losses) - ref_losses) + 1e-18, ".", ms=3)
    print(f"test accuracy: autodiff_ref {accuracy(X_test, y_test, ref_params):.1%}, "
          f"your engine {accuracy(X_test, y_test, own_params):.1%}; largest difference of "
          f"the losses: {np.max(np.abs(np.asarray(own_losses) - ref_losses)):.1e}")
left.set_xlabel("step")
left.set_ylabel("mini-batch loss J")
left.set_title("the same training run with two engines")
left.legend(loc="upper right")
right.set_xlabel("step")
right.set_ylabel("|your loss - reference loss|")
right.set_title("difference between the curves (1e-18 added for log scale)")
plt.tight_layout()
plt.show()

# %% [markdown]
# ## 8. What reverse mode costs in memory
#
# Every backward rule above reads something its forward saved: `MatMul` its
# two inputs, `ReLU` a mask, `CrossEntropy` the probabilities. The walk runs
# from the output back, so **everything** the forward pass saved is alive at
# the moment the backward pass starts. For a network of $N$ layers, memory
# grows with $N$; on a GPU, activation memory, not the weights, is usually
# what limits the batch size or the depth of the model one can train.
#
# Take the simplest deep network: one weight matrix $W$ $(D, D)$ applied $N$
# times (a recurrent network unrolled over $N$ steps, without inputs),
#
# $$
# h_{k+1} = \tanh(h_k W), \qquad k = 0, \dots, N - 1,
# $$
#
# with $h_0 = x$ a batch of shape $(B, D)$. Given the adjoint $\bar h_N$ of
# the output, the backward pass needs every $h_k$ (and $h_{k+1}$, for
# $\tanh' = 1 - \tanh^2$) and accumulates $\bar W$ over all $N$ layers,
# since the same $W$ is used $N$ times. `stored_backward` is the plain
# version: keep all $N + 1$ activations. `layer_backward` is the
# vector-Jacobian product of one layer; `CALLS` counts the evaluations of a
# layer.

# %%
CALLS = {"forward": 0}


def layer_forward(h, W):
    """One layer: tanh(h @ W)."""
    CALLS["forward"] += 1
    return np.tanh(h @ W)


def layer_backward(h, W, out, grad_out):
    """The VJP of out = tanh(h @ W): returns (adjoint of h, adjoint of W)."""
    grad_pre = grad_out * (1 - out * out)
    return grad_pre @ W.T, h.T @ grad_pre


def stored_backward(x, W, grad_out, n_layers):
    """Adjoints (of x, of W) of h_N for h_N = layer^N(x), keeping every activation."""
    activations = [x]
    for _ in range(n_layers):
        activations.append(layer_forward(activations[-1], W))
    grad, grad_W = grad_out, np.zeros_like(W)
    for k in reversed(range(n_layers)):
        grad, grad_W_k = layer_backward(activations[k], W, activations[k + 1], grad)
        grad_W = grad_W + grad_W_k
    return grad, grad_W


B, D = 32, 64
rng = np.random.default_rng(0)
x_chain = rng.standard_normal((B, D))
W_chain = rng.standard_normal((D, D)) / np.sqrt(D)
g_chain = rng.standard_normal((B, D))
print(f"one activation: {B} x {D} float64 = {x_chain.nbytes / 1024:.0f} KiB")

# %% [markdown]
# **Checkpointing** trades memory for time. Keep only every $k$-th activation
# (the **checkpoints** $h_0, h_k, h_{2k}, \dots$) during the forward pass and
# throw the others away. The backward pass then handles the chain one
# **segment** of $k$ layers at a time, from the last segment to the first:
# recompute the segment's activations from its checkpoint, walk back through
# the segment as usual (its adjoint $\bar h$ at the segment's end comes from
# the segment after it), and drop them before the next segment.
#
# With $N$ layers and segments of $k$, at most about $N/k$ checkpoints and
# $k$ recomputed activations are alive at once, and each layer's forward is
# computed twice. The choice $k \approx \sqrt N$ makes the two terms equal.
# (Frameworks offer this as `torch.utils.checkpoint`; the $\sqrt N$ scheme is
# due to Chen et al., 2016, and Griewank's "revolve" schedules go further.)
#
# ### Written answer 2 (1 point): predict before you measure
#
# For the chain above with $B = 32$, $D = 64$, predict how the **peak
# memory** of `stored_backward` and of a checkpointed backward with
# $k = \lceil\sqrt N\,\rceil$ grow with $N$ (give the growth law, and a number
# in MiB for $N = 2048$ for the stored version), and how their **running
# times** grow and compare (count the layer evaluations). The measurement after exercise 8 will tell you whether you
# were right.

# %% [markdown] answer="predict_memory" points=1
# ### BEGIN SOLUTION
# **Model answer.** One activation is $32 \cdot 64 \cdot 8$ bytes $= 16$ KiB.
# The stored version keeps $N + 1$ of them, so its peak grows **linearly**:
# $N = 2048$ gives $2049 \times 16$ KiB $\approx 32$ MiB (plus a few arrays of
# the size of $W$ and $\bar h$, negligible). The checkpointed version keeps
# about $N/k$ checkpoints plus $k + 1$ recomputed activations of one segment,
# about $2\sqrt N$ arrays: it grows like $\sqrt N$, about $91 \times 16$ KiB
# $\approx 1.4$ MiB for $N = 2048$, some 20 times less. Both run in time
# proportional to $N$; the checkpointed one does one extra forward pass
# (every layer is evaluated twice), so by counting operations it takes
# longer by the cost of one forward pass, about 1.3 to 1.5 times the stored
# version (a layer's backward costs about twice its forward). Measured, the
# gap is smaller and noisy: the stored version pays for fresh memory for
# every activation (allocation, cache misses), while the checkpointed one
# works in a small set of arrays that stays in the cache.
#
# **Rubric (1 point):** half a point for linear vs $\sqrt N$ growth with a
# reason (what is alive at the peak), half a point for the time (both linear,
# checkpointing about one extra forward pass, not a factor of $N$ or
# $\sqrt N$). The MiB figure should be about 32 (16 KiB times 2049); a wrong
# figure with the right laws loses nothing.
# ### END SOLUTION

# %% [markdown]
# **Common mistakes:** collecting the recomputed activations of *all*
# segments in one list that lives across the loop (memory is back to
# $O(N)$), and recomputing each segment from $x$ instead of from its
# checkpoint (time grows like $N^2/k$). The test counts the layer
# evaluations and measures the peak memory.
#
# ### Exercise 8 (2 points): checkpointed backward

# %% solution="checkpointed_backward"
def checkpointed_backward(x, W, grad_out, n_layers, every):
    """The same adjoints as stored_backward(x, W, grad_out, n_layers), keeping
    only every `every`-th activation of the forward pass (h_0, h_every, ...)
    and recomputing the others one segment at a time during the backward pass.

    x: (B, D); W: (D, D); grad_out: the adjoint of h_N, (B, D); n_layers: N >= 1;
    every: the segment length k, 1 <= k <= N (N need not be a multiple of k).
    Returns (adjoint of x, adjoint of W). Uses layer_forward and
    layer_backward; evaluates layer_forward at most 2 N times.
    """
    ### BEGIN SOLUTION
    checkpoints, h = [], x
    for k in range(n_layers):
        if k % every == 0:
            checkpoints.append(h)
        h = layer_forward(h, W)
    grad, grad_W = grad_out, np.zeros_like(W)
    for start in reversed(range(0, n_layers, every)):
        stop = min(start + every, n_layers)
        segment = [checkpoints.pop()]
        for k in range(start, stop):
            segment.append(layer_forward(segment[-1], W))
        for k in reversed(range(stop - start)):
            grad, grad_W_k = layer_backward(segment[k], W, segment[k + 1], grad)
            grad_W = grad_W + grad_W_k
    return grad, grad_W
    ### END SOLUTION


# %% test="test_checkpointed_backward" points=2
def _peak(fn, *args):
    """(result, peak memory in bytes while fn ran)."""
    tracemalloc.start()
    try:
        result = fn(*args)
        return result, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def _check_checkpointed(n, every, check_memory=True):
    what = f"checkpointed_backward(x, W, g, n_layers={n}, every={every})"
    expected, stored_peak = _peak(stored_backward, x_chain, W_chain, g_chain, n)
    CALLS["forward"] = 0
    got, peak = _peak(checkpointed_backward, x_chain.copy(), W_chain.copy(), g_chain.copy(), n, every)
    if CALLS["forward"] > 2 * n:
        raise grading.GradingError(f"{what} called layer_forward {CALLS['forward']} times; at "
                                   f"most {2 * n} (every layer twice) is needed. Recompute each "
                                   "segment from its own checkpoint, not from x.")
    grading.assert_close(got[0], expected[0], rtol=1e-10, atol=1e-14, name=f"the adjoint of x of {what}")
    grading.assert_close(got[1], expected[1], rtol=1e-10, atol=1e-14, name=f"the adjoint of W of {what}")
    if check_memory:  # N/k checkpoints + k + 1 activations of a segment, twice, + temporaries
        bound = (2 * (-(-n // every) + every + 1) + 16) * x_chain.nbytes
        grading.assert_less(peak / 2**10, bound / 2**10, name=f"the peak memory (KiB) of {what}",
                            hint=f"The stored version used {stored_peak / 2**10:.0f} KiB. Keep "
                                 "only the checkpoints and one segment at a time.")


with grading.exercise(8, "checkpointed_backward"):
    _check_checkpointed(100, 10)
    _check_checkpointed(7, 3, check_memory=False)
    grading.passed("checkpointed_backward")
### BEGIN HIDDEN TESTS
_rng = np.random.default_rng()
for _ in range(2):
    _n = int(_rng.integers(150, 300))
    _check_checkpointed(_n, int(np.ceil(np.sqrt(_n))))
_n = int(_rng.integers(2, 20))
for _every in (1, _n, int(_rng.integers(1, _n + 1))):
    _check_checkpointed(_n, _every, check_memory=False)
_check_checkpointed(1, 1, check_memory=False)
### END HIDDEN TESTS

# %% [markdown]
# Now the measurement: peak memory (with `tracemalloc`, which sees every
# NumPy array allocated while it runs) and running time of the two backward
# passes, for chains of 16 to 2048 layers with $k = \lceil\sqrt N\,\rceil$.
# Compare with your prediction.

# %%
def measure(fn, n, *extra):
    """(peak memory in MiB, best time of 2 runs in s) of fn(x, W, g, n, *extra)."""
    tracemalloc.start()
    fn(x_chain, W_chain, g_chain, n, *extra)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    times = []
    for _ in range(2):
        start = time.perf_counter()
        fn(x_chain, W_chain, g_chain, n, *extra)
        times.append(time.perf_counter() - start)
    return peak / 2**20, min(times)


depths = 2 ** np.arange(4, 12)
stored = np.array([measure(stored_backward, int(n)) for n in depths])
try:
    checkpointed = np.array([measure(checkpointed_backward, int(n), int(np.ceil(np.sqrt(n))))
                             for n in depths])
except NotImplementedError:
    print("Finish exercise 8 to measure the checkpointed version too.")
    checkpointed = None
fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
left.loglog(depths, stored[:, 0], "o-", label="every activation stored")
right.plot(depths, 1e3 * stored[:, 1], "o-", label="every activation stored")
if checkpointed is not None:
    left.loglog(depths, checkpointed[:, 0], "s-", label=r"$\sqrt{N}$ checkpoints")
    right.plot(depths, 1e3 * checkpointed[:, 1], "s-", label=r"$\sqrt{N}$ checkpoints")
    print(f"N = {depths[-1]}: peak {stored[-1, 0]:.1f} MiB stored vs {checkpointed[-1, 0]:.2f} "
          f"MiB checkpointed; time ratio {checkpointed[-1, 1] / stored[-1, 1]:.2f}")
one = x_chain.nbytes / 2**20
left.loglog(depths, one * depths, "k:", lw=1, label="N activations")
left.loglog(depths, one * 2 * np.sqrt(depths), "k--", lw=1, label=r"$2\sqrt{N}$ activations")
left.set_xlabel("number of layers N")
left.set_ylabel("peak memory (MiB)")
left.set_title("memory of the backward pass")
left.legend(loc="upper left", fontsize=8)
right.set_xlabel("number of layers N")
right.set_ylabel("time of forward + backward (ms)")
right.set_title("time: both linear in N")
right.legend(loc="upper left", fontsize=8)
plt.tight_layout()
plt.show()

# %% [markdown]
# ## Summary
#
# * An engine records, for every value, its **parents** and a **local
#   backward** that turns its adjoint into partial adjoints for the parents.
#   Operator overloading (`__add__`, `__radd__`, ...) records the graph as
#   ordinary code runs; composed operations (`a - b = a + (-b)`) need no
#   derivative of their own.
# * The backward walk visits the nodes in **reverse topological order**,
#   found by a search from the output (counting consumers or an iterative
#   depth-first search; a recursive one fails beyond about 1,000 levels), and
#   **adds** partial adjoints: a value used twice receives two. Leaves
#   accumulate across calls; intermediates start afresh.
# * A tensor engine is the same engine with array primitives: a `Function`
#   with `forward(ctx, ...)` and `backward(ctx, grad)`, whose backward is a
#   vector-Jacobian product (notebook 05), and a `Tensor` that records
#   `(parents, fn, ctx)`. Checking every gradient's shape against its input
#   catches a missing broadcast sum at once.
# * Your engine trains the digits network to the same numbers as
#   `autodiff_ref`, step for step, up to rounding in the last digits.
# * Reverse mode stores the forward pass: memory grows like $N$ for $N$
#   layers. **Checkpointing** keeps $\sqrt N$ activations and recomputes the
#   rest, at the price of about one extra forward pass.
