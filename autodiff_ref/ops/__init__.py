"""The primitives, by family. Each is a ``Function`` with ``forward``,
``backward`` (the VJP) and ``jvp`` (forward mode) side by side.

Backward rules return gradients shaped like the *output* when an input was
broadcast; the engine sums them back to the input's shape in one place
(``function.sum_to_shape``).
"""

from .elementwise import (Abs, Add, Cos, Div, Exp, Log, Maximum, Mul, Neg, Pow,
                          PowScalar, Relu, Sigmoid, Sin, Sqrt, Sub, Tanh)
from .linalg import MatMul
from .nn import CrossEntropy, Linear, LogSoftmax, Softmax
from .reduce import Max, Sum
from .shape import (BroadcastTo, GetItem, IndexAdd, Permute, Reshape, normalize_axis,
                    normalize_index, normalize_shape)

__all__ = [
    "Abs", "Add", "BroadcastTo", "Cos", "CrossEntropy", "Div", "Exp", "GetItem", "IndexAdd", "Linear", "Log",
    "LogSoftmax", "MatMul", "Max", "Maximum", "Mul", "Neg", "Permute", "Pow",
    "PowScalar", "Relu", "Reshape", "Sigmoid", "Sin", "Softmax", "Sqrt", "Sub", "Sum",
    "Tanh", "normalize_axis", "normalize_index", "normalize_shape",
]
