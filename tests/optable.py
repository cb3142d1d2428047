"""The op table that drives tests/test_ops.py and tests/test_against_torch.py.

One row per operation (``Op``): its name, our function (taking ad Tensors),
a NumPy reference for the value, the input domain of each argument and the
input shapes to try (one tuple of shapes per case; the arity is the length
of such a tuple). ``torch_fn`` is the same operation on torch tensors when
the spelling differs (``None``: ``fn`` works on torch tensors as it is).

``CASES`` expands every row into one case per shape combination; binary
element-wise ops are tried on broadcasting shapes (size-1 axes, missing
leading axes, 0-d operands) so the sum-over-broadcast-axes path is used.

Domains keep every input away from the places where an op is not
differentiable or not defined, further than the finite-difference step:
``positive`` for log/sqrt/pow, ``nonzero`` for abs/relu/division,
``distinct`` (values 0.1 apart) for max, and two interleaved grids
``grid_even``/``grid_odd`` (never closer than 0.1) for maximum.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

import autodiff_ref as ad


@dataclass(frozen=True)
class Op:
    name: str
    fn: Callable  # ad Tensors -> ad Tensor
    ref: Callable  # NumPy arrays -> NumPy array
    domains: tuple  # one domain name per input
    shapes: tuple  # tuple of cases, each a tuple of input shapes
    torch_fn: Callable | None = None  # torch tensors -> torch tensor (None: fn)

    @property
    def arity(self):
        return len(self.domains)


@dataclass(frozen=True)
class Case:
    op: Op
    shapes: tuple

    @property
    def id(self):
        return f"{self.op.name}-" + ",".join(
            "x".join(map(str, s)) if s else "scalar" for s in self.shapes)


# ------------------------------------------------------------ input domains


def sample(domain, shape, rng):
    """Random float64 data of ``shape`` from ``domain``."""
    size = int(np.prod(shape, dtype=int))
    if domain == "real":
        x = rng.standard_normal(shape)
    elif domain == "positive":
        x = rng.uniform(0.5, 2.0, shape)
    elif domain == "nonzero":  # |x| in [0.2, 2]: away from the kinks of abs/relu and from 1/0
        x = rng.choice([-1.0, 1.0], shape) * rng.uniform(0.2, 2.0, shape)
    elif domain == "distinct":  # all different, 0.1 apart: no ties for max
        x = (rng.permutation(size).reshape(shape) - size / 2) * 0.1
    elif domain == "grid_even":  # even multiples of 0.1 ...
        x = 0.2 * rng.integers(-6, 7, shape)
    elif domain == "grid_odd":  # ... against odd ones: |a - b| >= 0.1 for maximum
        x = 0.2 * rng.integers(-6, 7, shape) + 0.1
    else:
        raise ValueError(domain)
    return np.asarray(x, dtype=np.float64)


def make_inputs(case, rng):
    return [sample(d, s, rng) for d, s in zip(case.op.domains, case.shapes)]


# ------------------------------------------------------------ numpy helpers


def np_sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def np_softmax(x, axis):
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def np_log_softmax(x, axis):
    return np.log(np_softmax(x, axis))


TARGET = np.array([2, 0, 3, 3, 1])  # classes for cross_entropy on (5, 4) logits


def np_cross_entropy(logits, target=TARGET):
    return -np_log_softmax(logits, 1)[np.arange(len(target)), target].mean()


def _torch():
    import torch

    return torch


def torch_cross_entropy(logits, target=TARGET):
    torch = _torch()
    return torch.nn.functional.cross_entropy(logits, torch.as_tensor(target))


def _torch_dims(x, axis):
    return tuple(range(x.ndim)) if axis is None else axis


# ------------------------------------------------------------ the table

UNARY_SHAPES = (((3, 4),), ((5,),), ((),))
# (a, b) pairs: equal, size-1 axes on both sides, missing leading axes, 0-d operands
BROADCAST = (((3, 4), (3, 4)), ((3, 1), (1, 4)), ((4,), (2, 3, 4)), ((2, 3, 4), (3, 1)),
             ((), (2, 3)), ((2, 3), ()), ((2, 1, 4), (3, 1)))
R3 = ((2, 3, 4),)


def _unary(name, fn, ref, domain="real", shapes=UNARY_SHAPES, torch_fn=None):
    return Op(name, fn, ref, (domain,), shapes, torch_fn)


def _binary(name, fn, ref, domains=("real", "real"), shapes=BROADCAST, torch_fn=None):
    return Op(name, fn, ref, domains, shapes, torch_fn)


def _reductions():
    rows = []
    for axis in (None, 1, -1, (0, 2), (-1, 0)):
        for keepdims in (False, True):
            tag = f"axis={axis},keepdims={keepdims}".replace(" ", "")
            rows += [
                _unary(f"sum[{tag}]", lambda x, a=axis, k=keepdims: x.sum(a, k),
                       lambda x, a=axis, k=keepdims: np.sum(x, axis=a, keepdims=k),
                       shapes=(R3,),
                       torch_fn=lambda x, a=axis, k=keepdims:
                           x.sum(dim=_torch_dims(x, a), keepdim=k)),
                _unary(f"mean[{tag}]", lambda x, a=axis, k=keepdims: x.mean(a, k),
                       lambda x, a=axis, k=keepdims: np.mean(x, axis=a, keepdims=k),
                       shapes=(R3,),
                       torch_fn=lambda x, a=axis, k=keepdims:
                           x.mean(dim=_torch_dims(x, a), keepdim=k)),
                _unary(f"max[{tag}]", lambda x, a=axis, k=keepdims: x.max(a, k),
                       lambda x, a=axis, k=keepdims: np.max(x, axis=a, keepdims=k),
                       "distinct", shapes=(R3,),
                       torch_fn=lambda x, a=axis, k=keepdims:
                           x.amax(dim=_torch_dims(x, a), keepdim=k)),
            ]
    # the module-level spellings
    rows += [
        _unary("ad.sum", lambda x: ad.sum(x, axis=0), lambda x: x.sum(axis=0), shapes=(R3,),
               torch_fn=lambda x: x.sum(dim=0)),
        _unary("ad.mean", lambda x: ad.mean(x, axis=2, keepdims=True),
               lambda x: x.mean(axis=2, keepdims=True), shapes=(R3,),
               torch_fn=lambda x: x.mean(dim=2, keepdim=True)),
        _unary("ad.max", lambda x: ad.max(x, axis=1), lambda x: x.max(axis=1), "distinct",
               shapes=(R3,), torch_fn=lambda x: x.amax(dim=1)),
        _unary("sum-of-scalar", lambda x: x.sum(), np.sum, shapes=(((),),)),
    ]
    return rows


def _softmaxes():
    rows = []
    for shape, axes in (((3, 4), (-1, 0, 1)), ((2, 3, 4), (1, -1, 0))):
        for axis in axes:
            tag = f"[axis={axis}]"
            rows += [
                _unary("softmax" + tag, lambda x, a=axis: ad.softmax(x, axis=a),
                       lambda x, a=axis: np_softmax(x, a), shapes=((shape,),),
                       torch_fn=lambda x, a=axis: x.softmax(dim=a)),
                _unary("log_softmax" + tag, lambda x, a=axis: ad.log_softmax(x, axis=a),
                       lambda x, a=axis: np_log_softmax(x, a), shapes=((shape,),),
                       torch_fn=lambda x, a=axis: x.log_softmax(dim=a)),
            ]
    return rows


MATMUL_SHAPES = (((4,), (4,)), ((3,), (3, 5)), ((2, 3), (3,)), ((2, 3), (3, 4)),
                 ((5, 2, 3), (3, 4)), ((2, 3), (5, 3, 4)), ((5, 2, 3), (3,)),
                 ((3,), (5, 3, 4)), ((2, 1, 2, 3), (5, 3, 4)))

OPS = [
    # arithmetic, tensor (op) tensor, with broadcasting
    _binary("add", lambda a, b: a + b, np.add),
    _binary("sub", lambda a, b: a - b, np.subtract),
    _binary("mul", lambda a, b: a * b, np.multiply),
    _binary("div", lambda a, b: a / b, np.divide, ("real", "nonzero")),
    _binary("pow-tensor", lambda a, b: a ** b, np.power, ("positive", "real")),
    _binary("maximum", ad.maximum, np.maximum, ("grid_even", "grid_odd"),
            torch_fn=lambda a, b: _torch().maximum(a, b)),
    # arithmetic with a Python number, in both operand orders
    _unary("x+2", lambda x: x + 2, lambda x: x + 2),
    _unary("2+x", lambda x: 2 + x, lambda x: 2 + x),
    _unary("x-2.5", lambda x: x - 2.5, lambda x: x - 2.5),
    _unary("2.5-x", lambda x: 2.5 - x, lambda x: 2.5 - x),
    _unary("x*3", lambda x: x * 3, lambda x: x * 3),
    _unary("2*x", lambda x: 2 * x, lambda x: 2 * x),
    _unary("x/4", lambda x: x / 4, lambda x: x / 4),
    _unary("1.0/x", lambda x: 1.0 / x, lambda x: 1.0 / x, "nonzero"),
    _unary("neg", lambda x: -x, np.negative),
    _unary("x**3", lambda x: x ** 3, lambda x: x ** 3),
    _unary("x**2.5", lambda x: x ** 2.5, lambda x: x ** 2.5, "positive"),
    _unary("x**-1.5", lambda x: x ** -1.5, lambda x: x ** -1.5, "positive"),
    _unary("2.0**x", lambda x: 2.0 ** x, lambda x: 2.0 ** x),
    # element-wise functions
    _unary("exp", lambda x: x.exp(), np.exp),
    _unary("log", lambda x: x.log(), np.log, "positive"),
    _unary("sin", lambda x: x.sin(), np.sin),
    _unary("cos", lambda x: x.cos(), np.cos),
    _unary("tanh", lambda x: x.tanh(), np.tanh),
    _unary("sigmoid", lambda x: x.sigmoid(), np_sigmoid),
    _unary("relu", lambda x: x.relu(), lambda x: np.maximum(x, 0), "nonzero"),
    _unary("abs", lambda x: x.abs(), np.abs, "nonzero"),
    _unary("sqrt", lambda x: x.sqrt(), np.sqrt, "positive"),
    _unary("ad.exp", ad.exp, np.exp, torch_fn=lambda x: x.exp()),
    _unary("ad.tanh", ad.tanh, np.tanh, torch_fn=lambda x: x.tanh()),
    _unary("ad.relu", ad.relu, lambda x: np.maximum(x, 0), "nonzero",
           torch_fn=lambda x: x.relu()),
    *_reductions(),
    # shapes
    _unary("reshape(4,-1)", lambda x: x.reshape(4, -1), lambda x: x.reshape(4, -1),
           shapes=(R3,)),
    _unary("reshape((6,4))", lambda x: x.reshape((6, 4)), lambda x: x.reshape(6, 4),
           shapes=(R3,)),
    _unary("reshape(-1)", lambda x: x.reshape(-1), lambda x: x.reshape(-1), shapes=(R3,)),
    _unary("reshape(1,3,1)", lambda x: x.reshape(1, 3, 1), lambda x: x.reshape(1, 3, 1),
           shapes=(((3,),),)),
    _unary("transpose()", lambda x: x.transpose(), lambda x: x.transpose(), shapes=(R3,),
           torch_fn=lambda x: x.permute(2, 1, 0)),
    _unary("transpose(0,2)", lambda x: x.transpose(0, 2), lambda x: x.swapaxes(0, 2),
           shapes=(R3,)),
    _unary("transpose(-1,-2)", lambda x: x.transpose(-1, -2), lambda x: x.swapaxes(-1, -2),
           shapes=(R3,)),
    _unary("permute(2,0,1)", lambda x: x.permute(2, 0, 1), lambda x: x.transpose(2, 0, 1),
           shapes=(R3,)),
    _unary("permute((1,2,0))", lambda x: x.permute((1, 2, 0)),
           lambda x: x.transpose(1, 2, 0), shapes=(R3,),
           torch_fn=lambda x: x.permute(1, 2, 0)),
    _unary("T", lambda x: x.T, lambda x: x.T, shapes=(((3, 4),),)),
    _unary("broadcast_to(2,3,4)", lambda x: x.broadcast_to((2, 3, 4)),
           lambda x: np.broadcast_to(x, (2, 3, 4)), shapes=(((3, 1),), ((4,),), ((),))),
    _unary("ad.broadcast_to", lambda x: ad.broadcast_to(x, (3, 4)),
           lambda x: np.broadcast_to(x, (3, 4)), shapes=(((1, 4),),),
           torch_fn=lambda x: x.broadcast_to((3, 4))),
    # indexing
    _unary("x[0]", lambda x: x[0], lambda x: x[0], shapes=(((4, 3),),)),
    _unary("x[1:3]", lambda x: x[1:3], lambda x: x[1:3], shapes=(((4, 3),),)),
    _unary("x[:,0]", lambda x: x[:, 0], lambda x: x[:, 0], shapes=(((4, 3),),)),
    _unary("x[...,::2]", lambda x: x[..., ::2], lambda x: x[..., ::2],
           shapes=(((2, 3, 5),),)),
    _unary("x[[0,2,0]]", lambda x: x[[0, 2, 0]], lambda x: x[[0, 2, 0]],
           shapes=(((4, 3),),)),
    _unary("x[[0,2,0],[1,1,1]]", lambda x: x[[0, 2, 0], [1, 1, 1]],
           lambda x: x[[0, 2, 0], [1, 1, 1]], shapes=(((4, 3),),)),
    # linear algebra
    _binary("matmul", lambda a, b: a @ b, np.matmul, shapes=MATMUL_SHAPES),
    _binary("ad.matmul", ad.matmul, np.matmul, shapes=(((2, 3), (3, 4)),),
            torch_fn=lambda a, b: a @ b),
    # softmax family
    *_softmaxes(),
    _unary("cross_entropy", lambda x: ad.cross_entropy(x, TARGET), np_cross_entropy,
           shapes=(((5, 4),),), torch_fn=torch_cross_entropy),
    # a few compositions
    _binary("x*sin(y)+exp(x)/y", lambda a, b: a * b.sin() + a.exp() / b,
            lambda a, b: a * np.sin(b) + np.exp(a) / b, ("real", "nonzero"),
            shapes=(((3, 1), (4,)),)),
    _unary("(x*x).sum().sqrt()", lambda x: (x * x).sum().sqrt(),
           lambda x: np.sqrt((x * x).sum()), "nonzero", shapes=(((3, 4),),)),
]

for _op in OPS:
    assert all(len(s) == _op.arity for s in _op.shapes), _op.name

CASES = [Case(op, shapes) for op in OPS for shapes in op.shapes]
# binary element-wise cases whose operands have different shapes
BROADCAST_CASES = [c for c in CASES if c.op.shapes is BROADCAST and c.shapes[0] != c.shapes[1]]


# ------------------------------------------------------------ finite differences


def evaluate(fn, arrays):
    """fn on fresh constant tensors made from ``arrays``, as a float64 array."""
    with ad.no_grad():
        out = fn(*[ad.Tensor(np.array(a)) for a in arrays])
    return np.asarray(out.data, dtype=np.float64)


def numerical_vjp(fn, arrays, g, eps=1e-6):
    """g . J for each input by central differences of sum(g * fn(...))."""
    grads = []
    for i, a in enumerate(arrays):
        gi = np.zeros(a.shape)
        for j in range(a.size):
            plus = [np.array(x) for x in arrays]
            minus = [np.array(x) for x in arrays]
            plus[i].flat[j] += eps
            minus[i].flat[j] -= eps
            gi.flat[j] = np.sum(g * (evaluate(fn, plus) - evaluate(fn, minus))) / (2 * eps)
        grads.append(gi)
    return grads


def numerical_jvp(fn, arrays, vs, eps=1e-6):
    """J . v by one central difference along the direction v."""
    plus = [a + eps * v for a, v in zip(arrays, vs)]
    minus = [a - eps * v for a, v in zip(arrays, vs)]
    return (evaluate(fn, plus) - evaluate(fn, minus)) / (2 * eps)
