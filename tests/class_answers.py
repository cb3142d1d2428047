"""Answers of a simulated class for notebook 01 (tests/test_class_report.py):
independently written correct solutions, two copies with renamed variables
and reordered lines, and mistakes whose diagnosis is known."""

DOC_PP = '''def product_partials(theta):
    """All partial derivatives of f(theta) = theta[0] * theta[1] * ... * theta[n-1].

    theta: 1-D array of n numbers (n >= 1), zeros allowed.
    Returns a 1-D float array of length n whose entry k is the product of all
    entries except theta[k], computed with prefix and suffix products in O(n)
    and without division.
    """
'''
DOC_NG = '''def numerical_gradient(f, theta, eps=1e-6):
    """Central-difference gradient of a scalar function of an array.

    f: maps an ndarray of theta's shape to a float; theta: ndarray of floats,
    any shape; eps: the step.
    Returns an ndarray of theta's shape whose entry at index i is
    (f(theta + eps e_i) - f(theta - eps e_i)) / (2 eps). theta is left
    unchanged.
    """
'''

# product_partials, correct, written independently of each other
PP_CUMPROD = DOC_PP + '''    t = np.asarray(theta, dtype=float)
    left = np.concatenate(([1.0], np.cumprod(t[:-1])))
    right = np.concatenate((np.cumprod(t[::-1][:-1])[::-1], [1.0]))
    return left * right
'''
PP_LISTS = DOC_PP + '''    values = [float(v) for v in theta]
    count = len(values)
    before = [1.0] * count
    after = [1.0] * count
    running = 1.0
    for idx in range(count):
        before[idx] = running
        running *= values[idx]
    running = 1.0
    for idx in reversed(range(count)):
        after[idx] = running
        running *= values[idx]
    return np.array([b * a for b, a in zip(before, after)])
'''
PP_ONE_ARRAY = DOC_PP + '''    x = np.array(theta, dtype=np.float64)
    out = np.ones_like(x)
    acc = 1.0
    for j in range(x.size):
        out[j] *= acc
        acc *= x[j]
    acc = 1.0
    for j in range(x.size - 1, -1, -1):
        out[j] *= acc
        acc *= x[j]
    return out
'''
PP_WHILE = DOC_PP + '''    data = np.asarray(theta, dtype=np.float64)
    total = len(data)
    lefts = np.ones(total)
    rights = np.ones(total)
    i = 1
    while i < total:
        lefts[i] = lefts[i - 1] * data[i - 1]
        rights[total - 1 - i] = rights[total - i] * data[total - i]
        i += 1
    return lefts * rights
'''
# PP_WHILE copied: names changed, the two lines of the loop and the two
# np.ones lines swapped
PP_WHILE_COPY = DOC_PP + '''    vec = np.asarray(theta, dtype=np.float64)
    n_items = len(vec)
    after = np.ones(n_items)
    before = np.ones(n_items)
    step = 1
    while step < n_items:
        after[n_items - 1 - step] = after[n_items - step] * vec[n_items - step]
        before[step] = before[step - 1] * vec[step - 1]
        step += 1
    return before * after
'''

# numerical_gradient, correct, written independently
NG_FLAT = DOC_NG + '''    x = np.array(theta, dtype=float)
    g = np.zeros(x.size)
    for i in range(x.size):
        xp = x.copy().ravel()
        xm = x.copy().ravel()
        xp[i] += eps
        xm[i] -= eps
        g[i] = (f(xp.reshape(x.shape)) - f(xm.reshape(x.shape))) / (2 * eps)
    return g.reshape(x.shape)
'''
NG_NDITER = DOC_NG + '''    base = np.asarray(theta, dtype=np.float64)
    out = np.empty_like(base)
    it = np.nditer(base, flags=["multi_index"])
    for _ in it:
        idx = it.multi_index
        plus, minus = base.copy(), base.copy()
        plus[idx] = plus[idx] + eps
        minus[idx] = minus[idx] - eps
        out[idx] = (f(plus) - f(minus)) / (2.0 * eps)
    return out
'''
NG_IN_PLACE = DOC_NG + '''    point = np.array(theta, dtype=np.float64, copy=True)
    slope = np.zeros(point.shape)
    for where in np.ndindex(*point.shape):
        keep = point[where]
        point[where] = keep + eps
        upper = f(point)
        point[where] = keep - eps
        lower = f(point)
        point[where] = keep
        slope[where] = 0.5 * (upper - lower) / eps
    return slope
'''
# NG_IN_PLACE copied: names changed, the two evaluations swapped
NG_IN_PLACE_COPY = DOC_NG + '''    p = np.array(theta, dtype=np.float64, copy=True)
    result = np.zeros(p.shape)
    for ix in np.ndindex(*p.shape):
        saved = p[ix]
        p[ix] = saved - eps
        down = f(p)
        p[ix] = saved + eps
        up = f(p)
        p[ix] = saved
        result[ix] = 0.5 * (up - down) / eps
    return result
'''

# mistakes
FD_NEGATED = "def forward_difference(f, x, eps):\n    return -(f(x + eps) - f(x)) / eps\n"
CD_HALF_STEP = "def central_difference(f, x, eps):\n    return (f(x + eps) - f(x - eps)) / eps\n"
NG_NO_RETURN = (DOC_NG + "    theta = np.asarray(theta, dtype=np.float64)\n"
                "    grad = np.zeros_like(theta)\n"
                "    for i in np.ndindex(theta.shape):\n"
                "        step = np.zeros_like(theta)\n        step[i] = eps\n"
                "        grad[i] = (f(theta + step) - f(theta - step)) / (2 * eps)\n")
PP_FINITE_DIFFERENCES = ("def product_partials(theta):\n"
                         "    return numerical_gradient(lambda t: np.prod(t), "
                         "np.asarray(theta, float))\n")
PP_DIVIDE = ("def product_partials(theta):\n    theta = np.asarray(theta, dtype=float)\n"
             "    return np.prod(theta) / theta\n")
PP_TYPE_ERROR = ("def product_partials(theta):\n    theta = np.asarray(theta, dtype=float)\n"
                 "    return theta + None\n")
FLOOD = "print('x' * (40 * 1024 ** 2))\n"
PATCH = "\nnp.allclose = lambda *a, **k: True\n"
