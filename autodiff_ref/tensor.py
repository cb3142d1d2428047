"""The Tensor: an ndarray plus the links that let gradients flow back.

A Tensor holds its value in ``data`` (a NumPy array). If it was created by the
user with ``requires_grad=True`` it is a *leaf* and ``backward`` stores its
gradient in ``.grad``. If it was computed from such tensors, ``grad_fn``
points to the recorded node of the Function that made it. Operators
(``+``, ``*``, ``@``, ...) and methods (``exp``, ``sum``, ...) only call
``Function.apply`` of the primitives in ``ops/``; all the calculus lives there.
"""

from __future__ import annotations

import numbers

import numpy as np

from . import engine


class Tensor:
    # NumPy must not try to handle ``ndarray * Tensor`` itself: it returns
    # NotImplemented so that Python calls ``Tensor.__rmul__``.
    __array_ufunc__ = None

    def __init__(self, data, requires_grad=False):
        self.data = data if isinstance(data, np.ndarray) else np.asarray(data)
        self.grad = None
        self.grad_fn = None
        self.requires_grad = False
        self._retains_grad = False
        self._tangent = None  # forward mode: d(this)/d(input) . v
        self.name = None  # optional label for ad.viz
        if requires_grad:
            self.requires_grad_()

    # ------------------------------------------------------------ basics
    @property
    def shape(self):
        return self.data.shape

    @property
    def ndim(self):
        return self.data.ndim

    @property
    def dtype(self):
        return self.data.dtype

    @property
    def size(self):
        return self.data.size

    @property
    def is_leaf(self):
        """True for tensors the user created (and for anything not recording)."""
        return self.grad_fn is None

    def requires_grad_(self, requires_grad=True):
        if requires_grad and not np.issubdtype(self.data.dtype, np.floating):
            raise TypeError(
                f"only floating-point tensors can require gradients, but this tensor "
                f"has dtype {self.data.dtype}; create it with float data or "
                "dtype=np.float64.")
        if not self.is_leaf:
            raise RuntimeError("requires_grad can only be changed on leaf tensors")
        self.requires_grad = bool(requires_grad)
        return self

    def __array__(self, dtype=None, copy=None):
        if dtype is not None and dtype != self.data.dtype:
            return self.data.astype(dtype)
        return self.data.copy() if copy else self.data

    def numpy(self):
        """The value as a NumPy array (shares memory, like PyTorch)."""
        return self.data

    def item(self):
        if self.data.size != 1:
            raise ValueError(f"item() needs a tensor with one element, got shape {self.shape}")
        return self.data.item()

    def tolist(self):
        return self.data.tolist()

    def detach(self):
        """A new leaf with the same data and no history: gradients stop here."""
        return Tensor(self.data)

    def retain_grad(self):
        """Keep ``.grad`` on this intermediate tensor after backward (leaves always do)."""
        if self.is_leaf:
            return self
        self._retains_grad = True
        return self

    def zero_(self):
        """Fill with zeros in place (``x.grad.zero_()``). Not for tensors in a graph."""
        if self.requires_grad:
            raise RuntimeError("zero_() would change a tensor that requires grad; "
                               "clear a gradient with x.grad = None or x.grad.zero_()")
        self.data = np.zeros_like(self.data)
        return self

    def backward(self, gradient=None, retain_graph=False, create_graph=False):
        """Accumulate d(self)/d(leaf) into ``.grad`` of every leaf this depends on.

        Gradients *add up* across calls: clear them with ``x.grad = None``
        (what ``optim.SGD.zero_grad`` does) or ``x.grad.zero_()``. ``gradient``
        is the upstream gradient and is required unless ``self`` is a scalar:
        then the call computes the vector-Jacobian product gradient . J.
        """
        backward(self, gradient, retain_graph, create_graph)

    def __repr__(self):
        body = np.array2string(self.data, precision=4, separator=", ", prefix="tensor(")
        extra = ""
        if self.grad_fn is not None:
            extra = f", grad_fn=<{self.grad_fn.name}>"
        elif self.requires_grad:
            extra = ", requires_grad=True"
        if self.dtype != np.float64 and np.issubdtype(self.dtype, np.floating):
            extra = f", dtype={self.dtype}" + extra
        return f"tensor({body}{extra})"

    def __len__(self):
        return len(self.data)

    def __iter__(self):
        return (self[i] for i in range(len(self)))

    def __bool__(self):
        return bool(self.data)

    def __float__(self):
        return float(self.data)

    def __int__(self):
        return int(self.data)

    __hash__ = object.__hash__

    # ------------------------------------------------ operators -> ops
    def _lift(self, other):
        if isinstance(other, Tensor):
            return other
        if isinstance(other, numbers.Number) and np.issubdtype(self.dtype, np.floating):
            return Tensor(np.asarray(other, dtype=self.dtype))
        return Tensor(np.asarray(other))

    def __add__(self, other): return ops.Add.apply(self, self._lift(other))
    def __radd__(self, other): return ops.Add.apply(self._lift(other), self)
    def __sub__(self, other): return ops.Sub.apply(self, self._lift(other))
    def __rsub__(self, other): return ops.Sub.apply(self._lift(other), self)
    def __mul__(self, other): return ops.Mul.apply(self, self._lift(other))
    def __rmul__(self, other): return ops.Mul.apply(self._lift(other), self)
    def __truediv__(self, other): return ops.Div.apply(self, self._lift(other))
    def __rtruediv__(self, other): return ops.Div.apply(self._lift(other), self)
    def __neg__(self): return ops.Neg.apply(self)
    def __pos__(self): return self
    def __matmul__(self, other): return ops.MatMul.apply(self, self._lift(other))
    def __rmatmul__(self, other): return ops.MatMul.apply(self._lift(other), self)

    def __pow__(self, exponent):
        if isinstance(exponent, numbers.Number):
            return ops.PowScalar.apply(self, exponent)
        return ops.Pow.apply(self, self._lift(exponent))

    def __rpow__(self, base):
        return ops.Pow.apply(self._lift(base), self)

    def __getitem__(self, index):
        return ops.GetItem.apply(self, ops.normalize_index(index))

    # Comparisons give constant boolean tensors (no gradient), for control flow.
    def _compare(self, other, fn):
        other = other.data if isinstance(other, Tensor) else other
        return Tensor(fn(self.data, other))

    def __lt__(self, other): return self._compare(other, np.less)
    def __le__(self, other): return self._compare(other, np.less_equal)
    def __gt__(self, other): return self._compare(other, np.greater)
    def __ge__(self, other): return self._compare(other, np.greater_equal)

    # ------------------------------------------------------ methods -> ops
    def exp(self): return ops.Exp.apply(self)
    def log(self): return ops.Log.apply(self)
    def sin(self): return ops.Sin.apply(self)
    def cos(self): return ops.Cos.apply(self)
    def tanh(self): return ops.Tanh.apply(self)
    def sigmoid(self): return ops.Sigmoid.apply(self)
    def relu(self): return ops.Relu.apply(self)
    def abs(self): return ops.Abs.apply(self)
    def sqrt(self): return ops.Sqrt.apply(self)

    def sum(self, axis=None, keepdims=False):
        return ops.Sum.apply(self, ops.normalize_axis(axis, self.ndim), keepdims)

    def mean(self, axis=None, keepdims=False):
        axis = ops.normalize_axis(axis, self.ndim)
        count = int(np.prod([self.shape[a] for a in axis]))
        return self.sum(axis, keepdims) / count

    def max(self, axis=None, keepdims=False):
        """Maximum; the gradient goes to the maximum (split evenly between ties)."""
        return ops.Max.apply(self, ops.normalize_axis(axis, self.ndim), keepdims)

    def norm(self):
        """The Euclidean norm of all elements."""
        return (self * self).sum().sqrt()

    def reshape(self, *shape):
        shape = shape[0] if len(shape) == 1 and not isinstance(shape[0], int) else shape
        return ops.Reshape.apply(self, ops.normalize_shape(shape, self.shape))

    def transpose(self, *axes):
        """No argument: reverse the axes (like ``.T``). Two axes: swap them
        (like ``torch.transpose``). For a full permutation use ``permute``."""
        if not axes:
            perm = tuple(reversed(range(self.ndim)))
        elif len(axes) == 2:
            perm = list(range(self.ndim))
            a, b = (ax % self.ndim for ax in axes)
            perm[a], perm[b] = perm[b], perm[a]
            perm = tuple(perm)
        else:
            raise TypeError("transpose() takes no axes or two axes; use permute() "
                            "for a full permutation")
        return ops.Permute.apply(self, perm)

    def permute(self, *axes):
        axes = axes[0] if len(axes) == 1 and not isinstance(axes[0], int) else axes
        return ops.Permute.apply(self, tuple(a % self.ndim for a in axes))

    @property
    def T(self):
        return self.transpose()

    def matmul(self, other):
        return self @ other

    def broadcast_to(self, shape):
        return ops.BroadcastTo.apply(self, tuple(shape))


def tensor(data, requires_grad=False, dtype=None):
    """Make a new leaf tensor from data (always copied).

    Python floats become float64; integer data stays integer and cannot
    require grad. ``dtype`` forces a NumPy dtype.
    """
    if isinstance(data, Tensor):
        data = data.data
    array = np.array(data, dtype=dtype)
    return Tensor(array, requires_grad=requires_grad)


# ---------------------------------------- asking for gradients


def grad(outputs, inputs, grad_outputs=None, retain_graph=None, create_graph=False,
         allow_unused=False):
    """Gradients of ``outputs`` with respect to ``inputs``, as a tuple.

    Like ``torch.autograd.grad``: nothing is accumulated into ``.grad``.
    ``grad_outputs`` is the upstream gradient for each output (needed when an
    output is not a scalar); ``create_graph=True`` records the backward pass
    so the result can be differentiated again. ``retain_graph`` defaults to
    ``create_graph``. An input that the outputs do not depend on raises,
    unless ``allow_unused=True`` (then its entry is ``None``).
    """
    outputs = _as_list(outputs, "outputs")
    inputs = _as_list(inputs, "inputs")
    for i, t in enumerate(inputs):
        if not t.requires_grad:
            raise RuntimeError(f"ad.grad: inputs[{i}] does not require grad, so no "
                               "gradient can be computed with respect to it.")
    if retain_graph is None:
        retain_graph = create_graph
    grad_outputs = _make_grad_outputs(outputs, grad_outputs)
    result = engine.run_backward(outputs, grad_outputs, retain_graph=retain_graph,
                          create_graph=create_graph, inputs=inputs)
    for i, g in enumerate(result):
        if g is None and not allow_unused:
            raise RuntimeError(
                f"ad.grad: inputs[{i}] was not used to compute the outputs; pass "
                "allow_unused=True to get None for it.")
        if g is not None and not create_graph:
            result[i] = g.detach()
    return tuple(result)


def backward(tensor, gradient=None, retain_graph=False, create_graph=False):
    """``tensor.backward(...)``: accumulate d(tensor)/d(leaf) into every ``leaf.grad``."""
    (g,) = _make_grad_outputs([tensor], None if gradient is None else [gradient])
    engine.run_backward([tensor], [g], retain_graph=retain_graph or create_graph,
                 create_graph=create_graph)


def _as_list(x, what):
    if isinstance(x, Tensor):
        return [x]
    x = list(x)
    for i, t in enumerate(x):
        if not isinstance(t, Tensor):
            raise TypeError(f"{what}[{i}] must be an ad.Tensor, got {type(t).__name__}")
    return x


def _make_grad_outputs(outputs, grad_outputs):
    if grad_outputs is None:
        grad_outputs = [None] * len(outputs)
    elif isinstance(grad_outputs, Tensor) or (
            len(outputs) == 1 and not isinstance(grad_outputs, (list, tuple))):
        # one gradient for one output (a Tensor, an array or a number); a list or
        # tuple is one gradient per output. (np.ndim must not be used to tell them
        # apart: it fails on a list of tensors of different shapes.)
        grad_outputs = [grad_outputs]
    grad_outputs = list(grad_outputs)
    if len(grad_outputs) != len(outputs):
        raise ValueError(f"got {len(grad_outputs)} grad_outputs for {len(outputs)} outputs")
    result = []
    for i, (out, g) in enumerate(zip(outputs, grad_outputs)):
        if not out.requires_grad:
            raise RuntimeError(
                f"output {i} does not require grad: nothing it was computed from has "
                "requires_grad=True (or it was computed under ad.no_grad() or from "
                "detached tensors), so there is no graph to back-propagate through.")
        if g is None:
            if out.data.size != 1:
                raise RuntimeError(
                    f"backward() without a gradient needs a scalar output, but the "
                    f"output has shape {describe_shape(out.shape)}. Pass gradient= (or "
                    "grad_outputs=) with that shape: the upstream gradient dL/d(output).")
            g = Tensor(np.ones_like(out.data))
        else:
            g = g if isinstance(g, Tensor) else Tensor(np.asarray(g, dtype=out.dtype))
            if g.shape != out.shape:
                raise RuntimeError(
                    f"the gradient passed for output {i} has shape {describe_shape(g.shape)} "
                    f"but the output has shape {describe_shape(out.shape)}: they must match.")
        result.append(g)
    return result


def describe_shape(shape):
    return "(" + ", ".join(str(s) for s in shape) + ("," if len(shape) == 1 else "") + ")"


from . import ops  # noqa: E402  (ops need the Tensor class defined above)
