"""autodiff_ref: a small reverse-mode (and forward-mode) autodiff engine on NumPy.

Shaped like PyTorch's autograd so that what you learn here carries over::

    import autodiff_ref as ad
    x = ad.tensor([1.0, 2.0, 3.0], requires_grad=True)
    y = (x * x).sum()
    y.backward()
    x.grad            # tensor([2., 4., 6.])

Where things live: ``engine.py`` (grad mode, ``no_grad``, the order of the
backward walk and the walk itself), ``tensor.py`` (the Tensor, ``backward``
and ``grad``), ``function.py`` (Function, the one extension point, with the
recorded ``Node`` and the checks on what a backward returns), ``ops/`` (every primitive with its backward and jvp rules),
``functional.py`` (jvp, vjp, jacobian, hessian), ``gradcheck.py`` (finite
differences), ``nn.py``/``optim.py`` (a tiny network toolkit), ``viz.py``
(graph drawings for notebooks).
"""

import numpy as np

from . import ops
from .engine import enable_grad, is_grad_enabled, no_grad, set_grad_enabled
from .function import Context, Function
from .gradcheck import GradcheckError, gradcheck, gradgradcheck, numerical_jacobian
from .tensor import Tensor, grad, tensor

__version__ = "0.1.0"


def _t(x):
    return x if isinstance(x, Tensor) else tensor(x)


def exp(x): return _t(x).exp()
def log(x): return _t(x).log()
def sin(x): return _t(x).sin()
def cos(x): return _t(x).cos()
def tanh(x): return _t(x).tanh()
def sigmoid(x): return _t(x).sigmoid()
def relu(x): return _t(x).relu()
def abs(x): return _t(x).abs()  # noqa: A001  (mirrors torch.abs)
def sqrt(x): return _t(x).sqrt()
def sum(x, axis=None, keepdims=False): return _t(x).sum(axis, keepdims)  # noqa: A001
def mean(x, axis=None, keepdims=False): return _t(x).mean(axis, keepdims)
def max(x, axis=None, keepdims=False): return _t(x).max(axis, keepdims)  # noqa: A001
def reshape(x, *shape): return _t(x).reshape(*shape)
def transpose(x, *axes): return _t(x).transpose(*axes)
def permute(x, *axes): return _t(x).permute(*axes)
def broadcast_to(x, shape): return _t(x).broadcast_to(shape)


def matmul(a, b):
    """``a @ b`` (vectors, matrices and stacks of matrices)."""
    return _t(a) @ b


def maximum(a, b):
    """Element-wise maximum with broadcasting; a tie gives each input half."""
    a = _t(a)
    return ops.Maximum.apply(a, a._lift(b))


def softmax(x, axis=-1):
    x = _t(x)
    return ops.Softmax.apply(x, axis % x.ndim)


def log_softmax(x, axis=-1):
    x = _t(x)
    return ops.LogSoftmax.apply(x, axis % x.ndim)


def cross_entropy(logits, target):
    """Mean cross-entropy of ``logits`` (N, C) against integer classes ``target`` (N,).

    Equal to ``-log_softmax(logits)[arange(N), target].mean()``, computed as
    one fused primitive (``ops.CrossEntropy``), stable for large logits.
    """
    logits = _t(logits)
    target = np.asarray(target.data if isinstance(target, Tensor) else target)
    if logits.ndim != 2:
        raise ValueError(f"cross_entropy expects logits of shape (N, C), got {logits.shape}")
    if not np.issubdtype(target.dtype, np.integer) or target.shape != logits.shape[:1]:
        raise ValueError(
            f"cross_entropy expects integer class indices of shape ({logits.shape[0]},), "
            f"got dtype {target.dtype} and shape {target.shape}")
    if target.size and (target.min() < 0 or target.max() >= logits.shape[1]):
        raise ValueError(f"cross_entropy: class indices must lie in [0, {logits.shape[1]}), "
                         f"got values from {target.min()} to {target.max()}")
    return ops.CrossEntropy.apply(logits, target)


def zeros(*shape, requires_grad=False, dtype=np.float64):
    shape = shape[0] if len(shape) == 1 and not isinstance(shape[0], int) else shape
    return Tensor(np.zeros(shape, dtype=dtype), requires_grad=requires_grad)


def ones(*shape, requires_grad=False, dtype=np.float64):
    shape = shape[0] if len(shape) == 1 and not isinstance(shape[0], int) else shape
    return Tensor(np.ones(shape, dtype=dtype), requires_grad=requires_grad)


def zeros_like(x, requires_grad=False):
    return Tensor(np.zeros_like(np.asarray(x)), requires_grad=requires_grad)


def ones_like(x, requires_grad=False):
    return Tensor(np.ones_like(np.asarray(x)), requires_grad=requires_grad)


def randn(*shape, requires_grad=False, seed=None):
    """Standard normal float64 data; ``seed`` makes it reproducible."""
    shape = shape[0] if len(shape) == 1 and not isinstance(shape[0], int) else shape
    return Tensor(np.random.default_rng(seed).standard_normal(shape),
                  requires_grad=requires_grad)


from . import functional, nn, optim  # noqa: E402,F401


def __getattr__(name):
    # viz is imported on first use so that ``import autodiff_ref`` stays fast
    if name == "viz":
        import importlib

        return importlib.import_module(".viz", __name__)
    raise AttributeError(f"module 'autodiff_ref' has no attribute {name!r}")
