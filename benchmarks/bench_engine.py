"""Performance benchmarks for ``autodiff_ref``, with baselines measured in the same run.

Run from the repository root (any working directory works)::

    python benchmarks/bench_engine.py            # the benchmark tables (< 2 min)
    python benchmarks/bench_engine.py --profile  # also: cProfile of the MLP step

Every figure is measured in this run with ``time.perf_counter``, after a
warm-up, repeated, and reported as the median (with the interquartile range of
per-step samples, or the min-max range of a few repeats). Ratios are taken
against baselines measured in the same run. The targets printed next to some
figures are context only: nothing here passes or fails on them. The script
*does* fail (AssertionError) if the three MLP implementations do not compute
the same loss, gradients and updated weights, because then the timings would
not compare equal work.

BLAS threads: ``OMP_NUM_THREADS``, ``OPENBLAS_NUM_THREADS`` and
``MKL_NUM_THREADS`` are set to 1 in ``os.environ`` before NumPy is imported,
and PyTorch runs with ``torch.set_num_threads(1)``, so every implementation
does its matrix products on one core.

What the figures mean
---------------------
1. MLP training step: one step (forward, backward, SGD update, lr=0.01, no
   momentum) of a 784-256-10 MLP (Linear-ReLU-Linear, softmax cross-entropy,
   mean over the batch) on a fixed batch of 64, float64, in ms per step:
     (a) autodiff_ref with ad.nn.Linear, ad.cross_entropy, ad.optim.SGD;
     (b) NumPy by hand: forward keeping what backward needs, hand-derived
         backward, in-place SGD update (the cost floor for this computation);
     (c) PyTorch on the CPU (torch.nn.Linear, F.cross_entropy, torch.optim.SGD),
         skipped with a note if torch does not import.
   Ratios autodiff_ref/NumPy (target <= 1.3) and autodiff_ref/PyTorch (target
   <= 1.0), from the medians and, less sensitive to other load on the
   machine, from the 10th percentiles. Every step is timed on its own; the
   implementations take turns in rounds of 10 steps (the order rotates every
   round) so that drift and other load on the machine affect all alike.
   Table 1d splits the step into forward (+loss), backward and update, timed
   inside the step.
2. Per-op overhead: a chain y = y * c of 10,000 multiplies of 0-d float64
   tensors; microseconds per op for building the chain (forward) and for
   y.backward() through it. With 0-d data this is almost pure framework
   overhead. PyTorch and bare 0-d NumPy arrays are shown for reference.
   (Python's garbage collector stays on throughout, as in normal use.)
3. ad.gradcheck on f(x) = x @ W (x requires grad, W fixed): fast_mode=True
   at 256x256, and fast_mode=False vs fast_mode=True at 64x64, where the full
   mode takes about a second (sizes printed). The full mode at 256x256 builds
   two dense 65536 x 65536 Jacobians (32 GiB each) from 131,072 evaluations of
   f and 65,536 backward passes, so it is not run; the script prints a lower
   bound on its time from the per-evaluation cost measured here.
4. Import time: `import autodiff_ref` in a fresh interpreter (median of
   several subprocesses, measured inside the subprocess so interpreter start-up
   is excluded; target < 0.2 s), and `import numpy` alone for reference. Twice:
   with the environment as it is (if PYTHONDONTWRITEBYTECODE is set and there
   is no __pycache__, every import compiles the modules from source), and with
   a warm bytecode cache in a temporary PYTHONPYCACHEPREFIX directory (what an
   installed package gets; nothing is written into the source tree).
"""

from __future__ import annotations

import os

_THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
for _var in _THREAD_VARS:  # must happen before NumPy (and its BLAS) is loaded
    os.environ[_var] = "1"

import argparse  # noqa: E402
import gc  # noqa: E402
import platform  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

_NUMPY_WAS_LOADED = "numpy" in sys.modules

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # benchmark the working tree, not an installed copy

import autodiff_ref as ad  # noqa: E402

try:
    import torch
    import torch.nn.functional as F

    torch.set_num_threads(1)
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:
        pass
    TORCH_BLAS = "MKL" if torch.backends.mkl.is_available() else "not MKL"
    TORCH_NOTE = (f"torch {torch.__version__} ({TORCH_BLAS} BLAS), "
                  f"torch.get_num_threads() = {torch.get_num_threads()}")
except Exception as exc:  # ImportError, or a broken install
    torch = None
    TORCH_BLAS = None
    TORCH_NOTE = f"PyTorch skipped: import torch failed ({type(exc).__name__}: {exc})"

perf_counter = time.perf_counter

# MLP problem
BATCH, N_IN, N_HIDDEN, N_OUT = 64, 784, 256, 10
LR = 0.01
# chain of scalar multiplies
CHAIN = 10_000
# gradcheck
GC_BIG = 256
GC_SMALL = 64  # full mode at 64x64: two 4096 x 4096 Jacobians, ~1-2 s


# ---------------------------------------------------------------- helpers


def median(xs):
    return statistics.median(xs)


def spread(xs, scale=1.0, fmt="{:.3f}"):
    return f"{fmt.format(min(xs) * scale)}-{fmt.format(max(xs) * scale)}"


def _load():
    try:
        return " ".join(f"{v:.2f}" for v in os.getloadavg())
    except (OSError, AttributeError):
        return "unknown"


def print_table(title, header, rows, note=None):
    widths = [max(len(str(r[i])) for r in [header] + rows) for i in range(len(header))]
    line = "  ".join("-" * w for w in widths)
    print()
    print(title)
    print("=" * len(title))
    print("  ".join(str(h).ljust(w) if i == 0 else str(h).rjust(w)
                    for i, (h, w) in enumerate(zip(header, widths))))
    print(line)
    for r in rows:
        print("  ".join(str(c).ljust(w) if i == 0 else str(c).rjust(w)
                        for i, (c, w) in enumerate(zip(r, widths))))
    if note:
        for n in note if isinstance(note, (list, tuple)) else [note]:
            print(n)
    sys.stdout.flush()


def time_interleaved(fns, *, block, rounds, warmup):
    """Seconds per call of each fn, one sample per call. Each round runs every fn
    ``block`` times in a row (timing each call); the order of the fns rotates
    every round, so that drift and other load on the machine hit all alike.
    Per-call samples and their median are robust to occasional preemption."""
    for fn in fns.values():
        for _ in range(warmup):
            fn()
    names = list(fns)
    samples = {n: [] for n in names}
    for r in range(rounds):
        for n in names[r % len(names):] + names[:r % len(names)]:
            fn, out = fns[n], samples[n]
            for _ in range(block):
                t0 = perf_counter()
                fn()
                out.append(perf_counter() - t0)
    return samples


def quantile(xs, q):
    return float(np.quantile(np.asarray(xs), q))


def iqr(xs, scale=1.0, fmt="{:.3f}"):
    return f"{fmt.format(quantile(xs, 0.25) * scale)}-{fmt.format(quantile(xs, 0.75) * scale)}"


# ------------------------------------------------------- 1. MLP step


def make_problem():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((BATCH, N_IN))
    y = rng.integers(0, N_OUT, BATCH)
    # Initial weights come from ad.nn.Linear (PyTorch's init, seeded) and are
    # copied into the other two implementations.
    fc1 = ad.nn.Linear(N_IN, N_HIDDEN, seed=1)
    fc2 = ad.nn.Linear(N_HIDDEN, N_OUT, seed=2)
    init = [p.data.copy() for p in (fc1.weight, fc1.bias, fc2.weight, fc2.bias)]
    return x, y, init


class AdMLP:
    """autodiff_ref, written the way the course notebooks write it."""

    name = "autodiff_ref"

    def __init__(self, init, x, y):
        fc1 = ad.nn.Linear(N_IN, N_HIDDEN)
        fc2 = ad.nn.Linear(N_HIDDEN, N_OUT)
        for p, v in zip((fc1.weight, fc1.bias, fc2.weight, fc2.bias), init):
            p.data = v.copy()
        self.model = ad.nn.Sequential(fc1, ad.nn.ReLU(), fc2)
        self.params = [fc1.weight, fc1.bias, fc2.weight, fc2.bias]
        self.opt = ad.optim.SGD(self.model.parameters(), lr=LR)
        self.x = ad.Tensor(x)
        self.y = y

    def step(self):
        self.opt.zero_grad()
        loss = ad.cross_entropy(self.model(self.x), self.y)
        loss.backward()
        self.opt.step()
        return loss

    def step_phases(self):
        t0 = perf_counter()
        self.opt.zero_grad()
        loss = ad.cross_entropy(self.model(self.x), self.y)
        t1 = perf_counter()
        loss.backward()
        t2 = perf_counter()
        self.opt.step()
        t3 = perf_counter()
        return t1 - t0, t2 - t1, t3 - t2

    def loss_and_grads(self):
        """One step; returns (loss, grads before the update, params after)."""
        loss = self.step()
        return (float(loss.item()), [p.grad.data.copy() for p in self.params],
                [p.data.copy() for p in self.params])


class NumpyMLP:
    """The same computation by hand in NumPy: the floor autodiff_ref is compared to.

    Forward keeps z1 (pre-activation), h, and the softmax pieces; backward uses
    d loss / d logits = (softmax - onehot) / N; the update is in place.
    """

    name = "NumPy (by hand)"

    def __init__(self, init, x, y):
        self.W1, self.b1, self.W2, self.b2 = (v.copy() for v in init)
        self.x, self.y = x, y
        self.rows = np.arange(len(y))
        self.inv_n = 1.0 / len(y)

    def forward(self):
        x, y, rows = self.x, self.y, self.rows
        z1 = x @ self.W1.T
        z1 += self.b1
        h = np.maximum(z1, 0.0)
        logits = h @ self.W2.T
        logits += self.b2
        logits -= logits.max(axis=1, keepdims=True)  # shifted, for stability
        e = np.exp(logits)
        s = e.sum(axis=1)
        loss = np.log(s).mean() - logits[rows, y].mean()
        return loss, (z1, h, e, s)

    def backward(self, cache):
        z1, h, e, s = cache
        dlogits = e
        dlogits *= (self.inv_n / s)[:, None]  # softmax / N
        dlogits[self.rows, self.y] -= self.inv_n  # - onehot / N
        dW2 = dlogits.T @ h
        db2 = dlogits.sum(axis=0)
        dh = dlogits @ self.W2
        dh *= z1 > 0  # ReLU'(z1), 0 at z1 == 0 as in autodiff_ref and PyTorch
        dW1 = dh.T @ self.x
        db1 = dh.sum(axis=0)
        return dW1, db1, dW2, db2

    def update(self, grads):
        for p, g in zip((self.W1, self.b1, self.W2, self.b2), grads):
            g *= LR
            p -= g

    def step(self):
        loss, cache = self.forward()
        self.update(self.backward(cache))
        return loss

    def step_phases(self):
        t0 = perf_counter()
        loss, cache = self.forward()
        t1 = perf_counter()
        grads = self.backward(cache)
        t2 = perf_counter()
        self.update(grads)
        t3 = perf_counter()
        return t1 - t0, t2 - t1, t3 - t2

    def loss_and_grads(self):
        loss, cache = self.forward()
        grads = self.backward(cache)
        saved = [g.copy() for g in grads]
        self.update(grads)
        return float(loss), saved, [p.copy() for p in (self.W1, self.b1, self.W2, self.b2)]


class TorchMLP:
    name = "PyTorch"

    def __init__(self, init, x, y):
        fc1 = torch.nn.Linear(N_IN, N_HIDDEN, dtype=torch.float64)
        fc2 = torch.nn.Linear(N_HIDDEN, N_OUT, dtype=torch.float64)
        self.params = [fc1.weight, fc1.bias, fc2.weight, fc2.bias]
        with torch.no_grad():
            for p, v in zip(self.params, init):
                p.copy_(torch.from_numpy(v))
        self.model = torch.nn.Sequential(fc1, torch.nn.ReLU(), fc2)
        self.opt = torch.optim.SGD(self.model.parameters(), lr=LR)
        self.x = torch.from_numpy(x)
        self.y = torch.from_numpy(y).long()

    def step(self):
        self.opt.zero_grad(set_to_none=True)
        loss = F.cross_entropy(self.model(self.x), self.y)
        loss.backward()
        self.opt.step()
        return loss

    def step_phases(self):
        t0 = perf_counter()
        self.opt.zero_grad(set_to_none=True)
        loss = F.cross_entropy(self.model(self.x), self.y)
        t1 = perf_counter()
        loss.backward()
        t2 = perf_counter()
        self.opt.step()
        t3 = perf_counter()
        return t1 - t0, t2 - t1, t3 - t2

    def loss_and_grads(self):
        loss = self.step()
        return (float(loss.item()), [p.grad.detach().numpy().copy() for p in self.params],
                [p.detach().numpy().copy() for p in self.params])


def check_same_computation(x, y, init, classes):
    """One step of each implementation from the same weights: same loss, same
    gradients, same updated weights (float64, up to summation order) as the
    hand-written NumPy version."""
    ref_name = NumpyMLP.name
    ref = NumpyMLP(init, x, y).loss_and_grads()
    rows = []
    pnames = ("W1", "b1", "W2", "b2")
    for cls in classes:
        loss, grads, params = cls(init, x, y).loss_and_grads()
        dloss = abs(loss - ref[0])
        assert dloss <= 1e-12 * max(1.0, abs(ref[0])), \
            f"{cls.name}: loss {loss!r} differs from {ref_name} loss {ref[0]!r}"
        worst = 0.0
        for pn, g, gr in zip(pnames, grads, ref[1]):
            assert g.shape == gr.shape, f"{cls.name}: grad {pn} shape {g.shape} vs {gr.shape}"
            np.testing.assert_allclose(g, gr, rtol=1e-9, atol=1e-13,
                                       err_msg=f"{cls.name}: gradient of {pn}")
            worst = max(worst, float(np.max(np.abs(g - gr))))
        for pn, p, pr in zip(pnames, params, ref[2]):
            np.testing.assert_allclose(p, pr, rtol=1e-12, atol=1e-14,
                                       err_msg=f"{cls.name}: updated {pn}")
        rows.append((cls.name, f"{loss:.15f}", f"{dloss:.1e}", f"{worst:.1e}"))
    return rows


def bench_mlp(quick=False):
    x, y, init = make_problem()
    classes = [AdMLP, NumpyMLP] + ([TorchMLP] if torch is not None else [])
    check_rows = check_same_computation(x, y, init, classes)
    print_table(
        "1a. MLP step: same computation check (one step from the same initial weights)",
        ("implementation", "loss", "|dloss| vs NumPy", "max |dgrad| vs NumPy"),
        check_rows,
        "  asserted: loss, all four gradients (rtol 1e-9) and the updated weights agree.")

    impls = {cls.name: cls(init, x, y) for cls in classes}
    rounds = 10 if quick else 40
    samples = time_interleaved({n: m.step for n, m in impls.items()},
                               block=10, rounds=rounds, warmup=20)
    med = {n: median(s) for n, s in samples.items()}
    ad_t, np_t = med["autodiff_ref"], med["NumPy (by hand)"]
    rows = []
    for n, s in samples.items():
        rows.append((n, f"{med[n] * 1e3:.3f}", iqr(s, 1e3), f"{quantile(s, 0.1) * 1e3:.3f}",
                     f"{med[n] / np_t:.2f}x"))
    print_table(
        f"1b. MLP {N_IN}-{N_HIDDEN}-{N_OUT} training step, batch {BATCH}, float64, 1 thread",
        ("implementation", "ms/step (median)", "IQR", "10th pct", "vs NumPy"),
        rows,
        [f"  {rounds} interleaved rounds x 10 individually timed steps (= {rounds * 10} "
         "samples each), after 20 warm-up steps."]
        + ([] if torch is not None else ["  " + TORCH_NOTE]))

    fast = {n: quantile(s, 0.1) for n, s in samples.items()}
    ratio_rows = [("autodiff_ref / NumPy", f"{ad_t / np_t:.2f}",
                   f"{fast['autodiff_ref'] / fast['NumPy (by hand)']:.2f}", "<= 1.3")]
    if torch is not None:
        ratio_rows.append(("autodiff_ref / PyTorch", f"{ad_t / med['PyTorch']:.2f}",
                           f"{fast['autodiff_ref'] / fast['PyTorch']:.2f}", "<= 1.0"))
    else:
        ratio_rows.append(("autodiff_ref / PyTorch", "skipped", "skipped", "<= 1.0"))
    print_table("1c. MLP step ratios (from the table above)",
                ("ratio", "of medians", "of 10th percentiles", "target (context)"), ratio_rows,
                [f"  autodiff_ref - NumPy = {(ad_t - np_t) * 1e3:.3f} ms/step of overhead "
                 "(medians).",
                 "  the 10th-percentile ratio is a cross-check that is less sensitive to "
                 "other load on the machine."]
                + ([f"  note: PyTorch does its matrix products with its own BLAS ({TORCH_BLAS}), "
                    "NumPy and autodiff_ref with NumPy's."] if torch is not None else []))

    # forward / backward / update split: timers inside the step, interleaved rounds
    phases = {n: [] for n in impls}
    names = list(impls)
    for r in range(10 if quick else 25):
        for n in names[r % len(names):] + names[:r % len(names)]:
            phases[n].extend(impls[n].step_phases() for _ in range(10))
    phase_rows = []
    for n, ph in phases.items():
        f, b, u = (median(p[i] for p in ph) for i in range(3))
        phase_rows.append((n, f"{f * 1e3:.3f}", f"{b * 1e3:.3f}", f"{u * 1e3:.3f}",
                           f"{(f + b + u) * 1e3:.3f}"))
    print_table("1d. MLP step split (ms, medians of each phase; interleaved rounds)",
                ("implementation", "forward+loss", "backward", "update", "sum"), phase_rows,
                "  forward+loss of autodiff_ref and PyTorch includes zero_grad (setting "
                ".grad to None).")
    return ratio_rows, med


# ------------------------------------------------- 2. per-op overhead


def bench_chain(quick=False):
    reps = 3 if quick else 7
    results = []

    def run(label, make_leaf, make_const, backward):
        fwd, bwd = [], []
        for r in range(reps + 1):  # first repetition is the warm-up
            x, c = make_leaf(), make_const()
            gc.collect()
            t0 = perf_counter()
            y = x
            for _ in range(CHAIN):
                y = y * c
            t1 = perf_counter()
            if backward:
                backward(y)
            t2 = perf_counter()
            if r:
                fwd.append((t1 - t0) / CHAIN)
                bwd.append((t2 - t1) / CHAIN)
            del y, x
        results.append((label, fwd, bwd if backward else None))

    run("autodiff_ref (0-d tensors)",
        lambda: ad.tensor(1.0, requires_grad=True), lambda: ad.tensor(1.0000001),
        lambda y: y.backward())
    if torch is not None:
        run("PyTorch (0-d tensors), reference",
            lambda: torch.tensor(1.0, dtype=torch.float64, requires_grad=True),
            lambda: torch.tensor(1.0000001, dtype=torch.float64),
            lambda y: y.backward())
    run("NumPy 0-d arrays (no autodiff), floor",
        lambda: np.array(1.0), lambda: np.array(1.0000001), None)

    # correctness of the chain's gradient (d y / d x = c^N)
    x = ad.tensor(1.0, requires_grad=True)
    c = ad.tensor(1.0000001)
    y = x
    for _ in range(CHAIN):
        y = y * c
    y.backward()
    expected = 1.0000001 ** CHAIN
    assert abs(x.grad.item() - expected) <= 1e-9 * expected, (x.grad.item(), expected)

    rows = []
    for label, fwd, bwd in results:
        rows.append((label, f"{median(fwd) * 1e6:.2f}", spread(fwd, 1e6, "{:.2f}"),
                     f"{median(bwd) * 1e6:.2f}" if bwd else "-",
                     spread(bwd, 1e6, "{:.2f}") if bwd else "-"))
    print_table(f"2. Per-op overhead: chain of {CHAIN:,} multiplies y = y * c (0-d float64)",
                ("implementation", "forward us/op", "range", "backward us/op", "range"), rows,
                f"  median of {reps} chains after one warm-up chain; the gradient of the "
                "autodiff_ref chain is checked against c**N.")
    ad_fwd, ad_bwd = median(results[0][1]), median(results[0][2])
    return ad_fwd, ad_bwd


# --------------------------------------------------------- 3. gradcheck


def bench_gradcheck(quick=False):
    rng = np.random.default_rng(0)

    def setup(n):
        x = ad.Tensor(rng.standard_normal((n, n)), requires_grad=True)
        W = ad.Tensor(rng.standard_normal((n, n)))
        return x, (lambda x: x @ W)

    def timed(fn, reps):
        fn()  # warm-up
        ts = []
        for _ in range(reps):
            t0 = perf_counter()
            ok = fn()
            ts.append(perf_counter() - t0)
            assert ok is True
        return ts

    xb, fb = setup(GC_BIG)
    fast_big = timed(lambda: ad.gradcheck(fb, (xb,), fast_mode=True), 7 if quick else 15)
    xs, fs = setup(GC_SMALL)
    fast_small = timed(lambda: ad.gradcheck(fs, (xs,), fast_mode=True), 11 if quick else 31)
    full_small = timed(lambda: ad.gradcheck(fs, (xs,), fast_mode=False), 1 if quick else 3)

    # cost of the pieces full mode would repeat at 256x256, for a lower bound
    with ad.no_grad():
        eval_t = median(timed(lambda: fb(ad.Tensor(xb.data)) is not None, 20))
    seed = ad.Tensor(rng.standard_normal((GC_BIG, GC_BIG)))
    bwd_t = median(timed(lambda: ad.grad([fb(xb)], [xb], [seed])[0] is not None, 20))
    n_el = GC_BIG * GC_BIG
    lower_bound = 2 * n_el * eval_t + n_el * bwd_t
    jac_gib = n_el * n_el * 8 / 2**30
    try:
        ram = f"{os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') / 2**30:.0f} GiB"
    except (ValueError, OSError, AttributeError):
        ram = "unknown"

    b, s = GC_BIG, GC_SMALL
    rows = [
        (f"fast_mode=True,  x {b}x{b}, W {b}x{b}", f"{median(fast_big) * 1e3:.1f} ms",
         spread(fast_big, 1e3, "{:.1f}"), "measured"),
        (f"fast_mode=True,  x {s}x{s}, W {s}x{s}", f"{median(fast_small) * 1e3:.2f} ms",
         spread(fast_small, 1e3, "{:.2f}"), "measured"),
        (f"fast_mode=False, x {s}x{s}, W {s}x{s}", f"{median(full_small):.2f} s",
         spread(full_small, 1.0, "{:.2f}"), "measured"),
        (f"fast_mode=False, x {b}x{b}, W {b}x{b}", f">= {lower_bound:,.0f} s",
         "-", "NOT RUN: estimate"),
    ]
    ratio = median(full_small) / median(fast_small)
    print_table("3. ad.gradcheck of f(x) = x @ W (x requires grad, W fixed)",
                ("mode and sizes", "time (median)", "range", "status"), rows, [
                    f"  full/fast ratio at {s}x{s} (same size, both measured): {ratio:,.0f}x",
                    f"  Full mode is NOT run at {b}x{b}: it needs 2*{n_el:,} evaluations of f "
                    f"({eval_t * 1e3:.2f} ms each, measured) and {n_el:,} backward passes "
                    f"({bwd_t * 1e3:.2f} ms each, measured) -> >= {lower_bound:,.0f} s, and "
                    f"two dense {n_el}x{n_el} float64 Jacobians ({jac_gib:.0f} GiB each; "
                    f"this machine has {ram} of RAM).",
                    f"  So full mode is timed at {s}x{s} instead (x {s}x{s}, W {s}x{s}, "
                    f"Jacobian {s * s}x{s * s}).",
                ])
    return median(fast_big), median(fast_small), median(full_small), ratio


# ------------------------------------------------------ 4. import time


_IMPORT_CODE = {
    # a fresh interpreter that imports autodiff_ref (which imports numpy)
    "autodiff_ref": "import autodiff_ref",
    # a fresh interpreter that imports numpy alone, then autodiff_ref on top of
    # it: numpy's time and autodiff_ref's own share, paired within one process
    "numpy, then autodiff_ref": "import numpy\nt1 = time.perf_counter()\nimport autodiff_ref",
}


def _import_times(env, runs):
    """Import times in fresh interpreters: {"autodiff_ref": [...], "numpy": [...],
    "own": [...]} in seconds, plus the whole-process times of the first kind."""
    head = f"import sys, time\nsys.path.insert(0, {str(ROOT)!r})\nt0 = time.perf_counter()\n"
    tail = {"autodiff_ref": "\nprint(time.perf_counter() - t0)",
            "numpy, then autodiff_ref": "\nprint(t1 - t0, time.perf_counter() - t1)"}
    times = {"autodiff_ref": [], "numpy": [], "own": []}
    wall = []
    for r in range(runs + 1):  # run 0 is the warm-up (file cache, bytecode cache)
        for kind, body in _IMPORT_CODE.items():
            t0 = perf_counter()
            out = subprocess.run([sys.executable, "-c", head + body + tail[kind]], env=env,
                                 cwd=str(ROOT), capture_output=True, text=True, check=True)
            elapsed = perf_counter() - t0
            if not r:
                continue
            values = [float(v) for v in out.stdout.split()]
            if kind == "autodiff_ref":
                times["autodiff_ref"].append(values[0])
                wall.append(elapsed)
            else:
                times["numpy"].append(values[0])
                times["own"].append(values[1])
    return times, wall


def bench_import(quick=False):
    import tempfile

    runs = 5 if quick else 9
    no_write = os.environ.get("PYTHONDONTWRITEBYTECODE")
    results = {}
    # (a) the environment exactly as this script got it
    results["as is"] = _import_times(dict(os.environ), runs)
    # (b) with a warm bytecode cache kept in a temporary directory (so nothing is
    #     written into the source tree), as for an installed package
    with tempfile.TemporaryDirectory(prefix="bench_pycache_") as cache:
        env = dict(os.environ, PYTHONPYCACHEPREFIX=cache)
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        results["cached"] = _import_times(env, runs)

    labels = {"as is": "environment as is" + (f" (PYTHONDONTWRITEBYTECODE={no_write})"
                                              if no_write else ""),
              "cached": "warm bytecode cache (temporary PYTHONPYCACHEPREFIX)"}
    rows = []
    for key, (times, wall) in results.items():
        rows.append((labels[key] + ":", "", "", ""))
        rows.append(("  import autodiff_ref (includes numpy)",
                     f"{median(times['autodiff_ref']):.3f}", spread(times["autodiff_ref"]),
                     "< 0.2"))
        rows.append(("  import numpy alone", f"{median(times['numpy']):.3f}",
                     spread(times["numpy"]), ""))
        rows.append(("  autodiff_ref on top of numpy (its own share)",
                     f"{median(times['own']):.3f}", spread(times["own"]), ""))
        rows.append(("  whole process running `import autodiff_ref`", f"{median(wall):.3f}",
                     spread(wall), ""))
    notes = [f"  median of {runs} fresh interpreters per row after one warm-up; imports are "
             "timed inside the subprocess (interpreter start-up excluded, except in the "
             "'whole process' rows)."]
    if no_write and not (ROOT / "autodiff_ref" / "__pycache__").is_dir():
        notes.append("  'as is': PYTHONDONTWRITEBYTECODE is set and autodiff_ref has no "
                     "__pycache__, so its modules are compiled from source at every import.")
    print_table("4. Import time in a fresh interpreter (seconds)",
                ("what", "median", "range", "target"), rows, notes)
    return {k: (median(t["autodiff_ref"]), median(t["numpy"]), median(t["own"]))
            for k, (t, _) in results.items()}


# ------------------------------------------------------------- profile


def profile_mlp(steps=300):
    import cProfile
    import pstats

    x, y, init = make_problem()
    m = AdMLP(init, x, y)
    for _ in range(20):
        m.step()
    prof = cProfile.Profile()
    prof.enable()
    for _ in range(steps):
        m.step()
    prof.disable()
    print(f"\ncProfile of {steps} autodiff_ref MLP steps (profiler overhead inflates "
          "Python-level costs)")
    stats = pstats.Stats(prof, stream=sys.stdout).strip_dirs()
    stats.sort_stats("tottime").print_stats(25)
    stats.sort_stats("cumulative").print_stats(25)


# ---------------------------------------------------------------- main


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="fewer repetitions (smoke test; figures are noisier)")
    parser.add_argument("--profile", action="store_true",
                        help="also print a cProfile of the autodiff_ref MLP step")
    args = parser.parse_args()

    start = perf_counter()
    blas = "unknown"
    try:
        cfg = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
        blas = f"{cfg.get('name')} {cfg.get('version')}"
    except Exception:
        pass
    print("autodiff_ref benchmark")
    print(f"  python {platform.python_version()}, numpy {np.__version__} (BLAS: {blas}), "
          f"autodiff_ref {getattr(ad, '__version__', '?')} from {Path(ad.__file__).parent}")
    print(f"  {TORCH_NOTE}")
    print(f"  machine: {platform.machine()}, {os.cpu_count()} CPUs, {platform.platform()}")
    print("  threads: " + ", ".join(f"{v}={os.environ[v]}" for v in _THREAD_VARS)
          + " set in os.environ before importing numpy"
          + ("; torch.set_num_threads(1)" if torch is not None else ""))
    if _NUMPY_WAS_LOADED:
        print("  WARNING: numpy was imported before this script set the thread variables; "
              "BLAS may use several threads.")
    print("  timing: time.perf_counter, warm-up, repeats, median (IQR = 25th-75th percentile "
          "of per-step samples; range = min-max of repeats)")
    print(f"  load average at start: {_load()} (other processes on the machine add noise)")

    ratio_rows, mlp = bench_mlp(args.quick)
    ad_fwd, ad_bwd = bench_chain(args.quick)
    fast_big, fast_small, full_small, gc_ratio = bench_gradcheck(args.quick)
    imports = bench_import(args.quick)

    rows = [
        ("MLP step, autodiff_ref (ms)", f"{mlp['autodiff_ref'] * 1e3:.3f}", ""),
        ("MLP step, NumPy by hand (ms)", f"{mlp['NumPy (by hand)'] * 1e3:.3f}", ""),
        ("MLP step, PyTorch (ms)",
         f"{mlp['PyTorch'] * 1e3:.3f}" if "PyTorch" in mlp else "skipped", ""),
    ] + [(f"ratio {name} (medians)", value, target)
         for name, value, _, target in ratio_rows] + [
        ("per-op forward, 0-d mul (us/op)", f"{ad_fwd * 1e6:.2f}", ""),
        ("per-op backward, 0-d mul (us/op)", f"{ad_bwd * 1e6:.2f}", ""),
        (f"gradcheck fast, {GC_BIG}x{GC_BIG} (ms)", f"{fast_big * 1e3:.1f}", ""),
        (f"gradcheck full, {GC_SMALL}x{GC_SMALL} (s)", f"{full_small:.2f}", ""),
        (f"gradcheck full/fast at {GC_SMALL}x{GC_SMALL}", f"{gc_ratio:,.0f}x", ""),
        ("import autodiff_ref, env as is (s)", f"{imports['as is'][0]:.3f}", "< 0.2"),
        ("import autodiff_ref, cached bytecode (s)", f"{imports['cached'][0]:.3f}", "< 0.2"),
        ("import numpy, env as is (s)", f"{imports['as is'][1]:.3f}", ""),
        ("import numpy, cached bytecode (s)", f"{imports['cached'][1]:.3f}", ""),
        ("autodiff_ref's own import share, env as is (s)", f"{imports['as is'][2]:.3f}", ""),
        ("autodiff_ref's own import share, cached (s)", f"{imports['cached'][2]:.3f}", ""),
    ]
    print_table("Summary (all measured in this run; targets are context, not pass/fail)",
                ("figure", "value", "target"), rows,
                f"  total benchmark time {perf_counter() - start:.1f} s; load average at "
                f"the end: {_load()}")

    if args.profile:
        profile_mlp()


if __name__ == "__main__":
    main()
