"""Finite differences: the independent check of every backward rule.

The central difference (f(x + eps) - f(x - eps)) / (2 eps) has error O(eps^2),
so with eps = 1e-6 in float64 it agrees with a correct analytic derivative to
about 1e-9. In float32 round-off swamps it, so gradcheck warns.
"""

from __future__ import annotations

import warnings

import numpy as np

from .engine import enable_grad, no_grad
from .tensor import Tensor, grad


class GradcheckError(RuntimeError):
    """Raised by gradcheck / gradgradcheck when a derivative is wrong."""


def _as_tuple(x):
    return tuple(x) if isinstance(x, (tuple, list)) else (x,)


def _is_float(x):
    return np.issubdtype(np.asarray(x.data if isinstance(x, Tensor) else x).dtype, np.floating)


def _call_with(fn, inputs, i, new_value):
    """Call fn with input i replaced by ``new_value`` (same kind: Tensor or array)."""
    args = list(inputs)
    args[i] = Tensor(new_value) if isinstance(inputs[i], Tensor) else new_value
    with no_grad():
        out = fn(*args)
    return out


def _values(out):
    return [np.asarray(o.data if isinstance(o, Tensor) else o, dtype=np.float64)
            for o in _as_tuple(out)]


def numerical_jacobian(fn, inputs, eps=1e-6):
    """Central-difference Jacobian of ``fn`` at ``inputs``.

    ``fn`` takes the inputs (Tensors or arrays) and returns one Tensor or
    array. For each input the result is an array of shape
    ``output.shape + input.shape`` with ``J[o..., i...] = d out[o...] / d x[i...]``
    (the same layout as ``functional.jacobian``); one array if ``inputs`` is
    a single tensor/array, a tuple (None for non-float inputs) if it is a tuple.
    Cost: two evaluations of ``fn`` per input element.
    """
    single = not isinstance(inputs, (tuple, list))
    inputs = _as_tuple(inputs)
    jacobians = []
    for i, x in enumerate(inputs):
        if not _is_float(x):
            jacobians.append(None)
            continue
        base = np.array(x.data if isinstance(x, Tensor) else x)
        columns = []
        for j in range(base.size):
            plus, minus = base.copy(), base.copy()
            plus.flat[j] += eps
            minus.flat[j] -= eps
            (f_plus,) = _values(_call_with(fn, inputs, i, plus))
            (f_minus,) = _values(_call_with(fn, inputs, i, minus))
            columns.append((f_plus - f_minus) / (2 * eps))
        out_shape = columns[0].shape if columns else _values(fn(*inputs))[0].shape
        jac = np.stack([c.reshape(-1) for c in columns], axis=1) if columns else \
            np.zeros((int(np.prod(out_shape)), 0))
        jacobians.append(jac.reshape(out_shape + base.shape))
    return jacobians[0] if single else tuple(jacobians)


def _analytical_jacobian(output, diff_inputs):
    """One backward per output element: row e is the gradient of output[e]."""
    rows = [np.zeros((output.size,) + x.shape) for x in diff_inputs]
    if not output.requires_grad:
        return rows
    for e in range(output.size):
        seed = np.zeros(output.shape)
        seed.flat[e] = 1.0
        grads = grad([output], diff_inputs, [Tensor(seed.astype(output.dtype))],
                     retain_graph=True, allow_unused=True)
        for r, g in zip(rows, grads):
            if g is not None:
                r[e] = g.data
    return rows


def _fail(message, raise_exception):
    if raise_exception:
        raise GradcheckError(message)
    warnings.warn(message, stacklevel=3)
    return False


def _index(shape, flat):
    return tuple(int(i) for i in np.unravel_index(flat, shape)) if shape else ()


def gradcheck(fn, inputs, *, eps=1e-6, atol=1e-5, rtol=1e-3, raise_exception=True,
              fast_mode=False):
    """Check the backward pass of ``fn`` against central finite differences.

    ``inputs`` is a tensor or a tuple; every tensor with ``requires_grad=True``
    is checked. An analytic value ``a`` passes against the numerical value
    ``n`` if ``|a - n| <= atol + rtol * |n|``. Returns True; on a mismatch
    raises ``GradcheckError`` (or returns False if ``raise_exception=False``)
    with a report naming the output, the input, the element and both values.

    ``fast_mode=True`` checks ``u . J v`` for random directions ``u`` and
    ``v`` instead of the full Jacobian: two evaluations of ``fn`` and one
    backward per input, whatever the number of elements.
    """
    inputs = _as_tuple(inputs)
    diff = [i for i, x in enumerate(inputs) if isinstance(x, Tensor) and x.requires_grad]
    if not diff:
        raise ValueError("gradcheck needs at least one input tensor with requires_grad=True")
    for i in diff:
        if inputs[i].dtype != np.float64:
            warnings.warn(f"gradcheck: input {i} has dtype {inputs[i].dtype}; finite "
                          "differences are only reliable in float64", UserWarning,
                          stacklevel=2)
    outputs = _as_tuple(fn(*inputs))
    diff_inputs = [inputs[i] for i in diff]
    rng = np.random.default_rng(0)

    for k, out in enumerate(outputs):
        if not isinstance(out, Tensor) or not _is_float(out):
            continue
        fn_k = (lambda *a, k=k: _as_tuple(fn(*a))[k])
        if fast_mode:
            u = rng.standard_normal(out.shape)
            analytic_vjp = [np.zeros(x.shape) for x in diff_inputs]
            if out.requires_grad:
                grads = grad([out], diff_inputs, [Tensor(u.astype(out.dtype))],
                             retain_graph=True, allow_unused=True)
                analytic_vjp = [np.zeros(x.shape) if g is None else g.data for g in grads]
            for i, x, a_vjp in zip(diff, diff_inputs, analytic_vjp):
                v = rng.standard_normal(x.shape)
                (f_plus,) = _values(_call_with(fn_k, inputs, i, x.data + eps * v))
                (f_minus,) = _values(_call_with(fn_k, inputs, i, x.data - eps * v))
                numeric = float(np.sum(u * (f_plus - f_minus)) / (2 * eps))
                analytic = float(np.sum(a_vjp * v))
                if not abs(analytic - numeric) <= atol + rtol * abs(numeric):
                    return _fail(
                        f"Gradient check failed (fast mode) for output {k} with respect "
                        f"to input {i}: along random directions u (output) and v "
                        f"(input), u.J.v is analytical {analytic:.10g} but numerical "
                        f"{numeric:.10g}. Run with fast_mode=False to find the element.",
                        raise_exception)
            continue
        numeric_all = numerical_jacobian(fn_k, inputs, eps)
        analytic_all = _analytical_jacobian(out, diff_inputs)
        for i, x, analytic in zip(diff, diff_inputs, analytic_all):
            numeric = numeric_all[i].reshape(out.size, -1)
            analytic = analytic.reshape(out.size, -1)
            bad = ~(np.abs(analytic - numeric) <= atol + rtol * np.abs(numeric))
            if bad.any():
                e, j = (int(v[0]) for v in np.nonzero(bad))
                return _fail(
                    f"Gradient check failed for output {k} with respect to input {i} "
                    f"(shape {x.shape}): d out{list(_index(out.shape, e))} / d "
                    f"x{list(_index(x.shape, j))} is analytical {analytic[e, j]:.10g} "
                    f"but numerical {numeric[e, j]:.10g}; {int(bad.sum())} of "
                    f"{bad.size} Jacobian entries disagree.\nanalytical:\n"
                    f"{np.array2string(analytic, precision=6)}\nnumerical:\n"
                    f"{np.array2string(numeric, precision=6)}",
                    raise_exception)
    return True


def gradgradcheck(fn, inputs, grad_outputs=None, *, eps=1e-6, atol=1e-5, rtol=1e-3,
                  raise_exception=True, fast_mode=False):
    """Check second derivatives: gradcheck of the map
    ``(inputs, grad_outputs) -> grad(fn(inputs), inputs, grad_outputs, create_graph=True)``.

    ``grad_outputs`` default to random tensors. A backward that is not itself
    differentiable (for example one computed with NumPy) fails here.
    """
    inputs = _as_tuple(inputs)
    n = len(inputs)
    outputs = _as_tuple(fn(*inputs))
    if grad_outputs is None:
        rng = np.random.default_rng(1)
        grad_outputs = tuple(Tensor(rng.standard_normal(o.shape), requires_grad=True)
                             for o in outputs)
    grad_outputs = _as_tuple(grad_outputs)
    diff = [i for i, x in enumerate(inputs) if isinstance(x, Tensor) and x.requires_grad]

    def first_derivatives(*args):
        xs, gos = list(args[:n]), args[n:]
        with enable_grad():
            for i in diff:
                if not xs[i].requires_grad:  # a finite-difference evaluation
                    xs[i] = Tensor(xs[i].data, requires_grad=True)
            outs = _as_tuple(fn(*xs))
            pairs = [(o, g) for o, g in zip(outs, gos) if o.requires_grad]
            wrt = [xs[i] for i in diff]
            if not pairs:
                return tuple(Tensor(np.zeros(x.shape)) for x in wrt)
            grads = grad([o for o, _ in pairs], wrt, [g for _, g in pairs],
                         create_graph=True, allow_unused=True)
        return tuple(Tensor(np.zeros(x.shape)) if g is None else g
                     for x, g in zip(wrt, grads))

    return gradcheck(first_derivatives, inputs + grad_outputs, eps=eps, atol=atol,
                     rtol=rtol, raise_exception=raise_exception, fast_mode=fast_mode)
