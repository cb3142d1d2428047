"""The channel between the judge and a student's kernel: data only, handles
for everything else, callbacks, limits, and a kernel that lies."""

from __future__ import annotations

import base64
import json
import os
import signal
import time

import nbformat
import numpy as np
import pytest
from jupyter_core.utils import run_sync

import autodiff_ref as ad
from autodiff_course.grading import wire
from autodiff_course.grading.channel import (Channel, ChannelError, KernelFault,
                                             StudentCodeError)
from autodiff_course.grading.judge import Judge
from autodiff_course.grading.remote import Remote
from autodiff_course.jupyter import NotebookRunner, kernel_manager

STUDENT = '''
import numpy as np

def double(x):
    return 2 * x

def fill(x):
    x[0] = 7.0
    return None

def apply_twice(g, x):
    return g(g(x))

def helper(x):
    return x + 1

def uses_helper(x):
    return 2 * helper(x)

def visit(node):
    order, todo = [], [node]
    while todo:
        n = todo.pop()
        n.grad = n.grad + 1.0
        order.append(n)
        todo.extend(n.parents)
    return order

def unwritten(x):
    raise NotImplementedError()

def slow():
    while True:
        pass

class Dual:
    def __init__(self, value, tangent=0.0):
        self.value, self.tangent = value, tangent
    def __add__(self, other):
        other = other if isinstance(other, Dual) else Dual(other)
        return Dual(self.value + other.value, self.tangent + other.tangent)
    __radd__ = __add__
    def __mul__(self, other):
        other = other if isinstance(other, Dual) else Dual(other)
        return Dual(self.value * other.value,
                    self.value * other.tangent + self.tangent * other.value)
    __rmul__ = __mul__
    def __len__(self):
        return 2
    def __iter__(self):
        return iter([self.value, self.tangent])
    def __repr__(self):
        return f"Dual({self.value}, {self.tangent})"

class Liar(float):
    def __eq__(self, other):
        return True
    __hash__ = float.__hash__

liar = Liar(1.0)
objects = np.array([object(), 1], dtype=object)

import autodiff_ref as ad

class Square(ad.Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        ctx.note = "saved x"
        return x.data ** 2
    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return 2 * x * g

def inputs_of(y):
    return list(y.grad_fn.next)

def vandal(y):
    y.grad_fn.next.clear()
    y.grad_fn = None
    y.data = y.data * 0
    return None

def grad_of(f, x):
    (g,) = ad.grad(f(x), x)
    return g
'''


def _run(runner, source, index=0):
    cell = nbformat.v4.new_code_cell(source)
    runner.nb.cells = [cell]
    runner.run_cell(cell, 0)
    return cell


@pytest.fixture(scope="module")
def kernel(tmp_path_factory):
    folder = tmp_path_factory.mktemp("channel")
    runner = NotebookRunner(nbformat.v4.new_notebook(), folder, km=kernel_manager(folder),
                            timeout=30)
    with runner.setup_kernel():
        _run(runner, "import autodiff_course.grading.agent")
        channel = Channel(runner.kc, runner.km)
        channel.mark()
        channel.open()
        _run(runner, STUDENT)
        judge = Judge(channel)
        judge.bind(channel.changed())
        yield runner, channel, judge


# ------------------------------------------------------------ data


@pytest.mark.parametrize("value", [None, True, 3, -2.5, float("inf"), 1 + 2j, "text",
                                   [1, [2.0, "x"]], (1, (2, 3)), {"a": 1, "b": (None,)},
                                   np.float32(1.5), np.int64(-3), np.complex128(1j)])
def test_plain_values_cross_unchanged(value):
    back = wire.loads(wire.dumps(value, lambda o: pytest.fail("not data")), None)
    assert back == value and type(back) is type(value)


@pytest.mark.parametrize("array", [np.arange(6.0).reshape(2, 3), np.zeros((0, 4), np.int32),
                                   np.array([True, False]), np.array(3 + 1j),
                                   np.ones((2, 2), np.float32).T])
def test_arrays_cross_with_dtype_and_shape(array):
    back = wire.loads(wire.dumps(array, None), None)
    assert back.dtype == array.dtype and back.shape == array.shape
    assert np.array_equal(back, array)


def _nd(dtype, shape, raw):
    return json.dumps({"$nd": [dtype, shape, base64.b64encode(raw).decode()]})


@pytest.mark.parametrize("text, why", [
    (_nd("float64", [3], b"\0" * 16), "needs 24 bytes"),
    (_nd("object", [1], b"\0" * 8), "not accepted"),
    (_nd("<U3", [1], b"\0" * 12), "not accepted"),
    (_nd("float64", [-1], b""), "not an array shape"),
    (json.dumps({"$nd": ["float64", [1], "!!!"]}), "base64"),
    (json.dumps({"$pickle": "gASVAAAAAAAAAAB9lC4="}), "unknown marker"),
    (json.dumps({"$cb": 1}), "only data"),
    ("[" * 5000 + "]" * 5000, "JSON|deeply"),
])
def test_malformed_data_is_refused(text, why):
    def resolve(marker, payload):
        raise wire.WireError("only data")
    with pytest.raises(wire.WireError, match=why):
        wire.loads(text, resolve)


def test_a_large_value_is_refused_before_parsing():
    with pytest.raises(wire.WireError, match="larger than"):
        wire.loads("[" + "1," * 10000 + "1]", None, limit=1000)


# ------------------------------------------------------------ a real kernel


def test_functions_are_called_with_data_and_return_data(kernel):
    _, _, judge = kernel
    double = judge.ns["double"]
    assert isinstance(double, Remote)
    got = double(np.arange(3.0))
    assert type(got) is np.ndarray and got.tolist() == [0.0, 2.0, 4.0]
    assert double(2) == 4 and double("ab") == "abab"


def test_arrays_changed_in_place_are_changed_on_the_judge_side(kernel):
    _, _, judge = kernel
    x = np.zeros(3)
    judge.ns["fill"](x)
    nested = [np.zeros(2), np.ones(1)]
    judge.ns["fill"](nested[0])
    assert nested[0].tolist() == [7.0, 0.0]
    assert x.tolist() == [7.0, 0.0, 0.0]


def test_handles_support_operators_attributes_and_isinstance(kernel):
    _, _, judge = kernel
    Dual = judge.ns["Dual"]
    d = Dual(3.0, 1.0)
    e = 2 * d * d + 1
    assert isinstance(e, Remote) and isinstance(e, Dual) and not isinstance(3.0, Dual)
    assert (e.value, e.tangent) == (19.0, 12.0)
    assert len(e) == 2 and list(e) == [19.0, 12.0]
    e.value = 5.0
    assert e.value == 5.0 and repr(e) == "Dual(5.0, 12.0)"
    with pytest.raises(AttributeError):
        e.missing


def test_judge_functions_are_called_back_with_data(kernel):
    _, _, judge = kernel
    seen = []

    def g(x):
        seen.append(type(x))
        return x * 3
    assert judge.ns["apply_twice"](g, np.ones(2)).tolist() == [9.0, 9.0]
    assert seen == [np.ndarray, np.ndarray]
    with pytest.raises(StudentCodeError, match="ZeroDivisionError"):
        judge.ns["apply_twice"](lambda x: 1 / 0, 1.0)


def test_judge_functions_may_use_the_students_objects(kernel):
    """A callback that operates on a student's object makes requests of its
    own while the student's code waits for it (they travel over stdin)."""
    _, _, judge = kernel
    Dual, apply_twice = judge.ns["Dual"], judge.ns["apply_twice"]
    got = apply_twice(lambda d: d * d + 1, Dual(2.0, 1.0))  # (x^2 + 1)^2 + 1 at x = 2
    assert isinstance(got, Remote) and (got.value, got.tangent) == (26.0, 40.0)
    # a list of fresh handles as an argument (encoding one asks nothing of the kernel)
    pair = judge.ns["double"]([Dual(1.0), Dual(2.0)])
    assert len(pair) == 4 and [d.value for d in pair] == [1.0, 2.0, 1.0, 2.0]


def test_a_name_the_test_rebinds_is_seen_by_the_students_code(kernel):
    """A test that counts how often one answer calls another rebinds the name."""
    _, _, judge = kernel
    outputs, exc = judge.run(
        "calls = []\n"
        "def counted(x):\n"
        "    calls.append(x)\n"
        "    return original(x)\n"
        "original, helper = helper, counted\n"
        "try:\n"
        "    assert uses_helper(3) == 8\n"
        "finally:\n"
        "    helper = original\n"
        "assert calls == [3], calls\n"
        "assert uses_helper(1) == 4 and calls == [3]\n")
    assert exc is None, outputs


NODE = """
class Node:
    def __init__(self, data, parents=()):
        self.data, self.parents, self.grad = data, tuple(parents), 0.0
"""


def test_objects_of_the_notebooks_classes_cross_by_value_and_come_back(kernel):
    """A graph of the instructor's Nodes: the student's code gets copies, its
    changes come back to the originals, and what it returns are the originals."""
    runner, _, judge = kernel
    _run(runner, NODE)
    outputs, exc = judge.run(NODE + "a = Node(1.0)\nb = Node(2.0, [a])\nc = Node(3.0, [b, a])\n")
    assert exc is None, outputs
    ns = judge.ns
    order = ns["visit"](ns["c"])
    assert [n.data for n in order] == [3.0, 1.0, 2.0, 1.0]
    assert order[0] is ns["c"] and order[1] is ns["a"] and order[2] is ns["b"]
    assert (ns["a"].grad, ns["b"].grad, ns["c"].grad) == (2.0, 1.0, 1.0)
    judge.channels[0].mark()
    _run(runner, "class Leaf(Node):\n    pass\n")
    judge.bind(judge.channels[0].changed())
    leaf = ns["Leaf"](4.0)
    assert isinstance(leaf, Remote) and isinstance(leaf, ns["Node"])  # a student's subclass
    assert not isinstance(ns["double"], ns["Node"]) and type(leaf) is Remote
    chain = ns["Node"](0.0)
    for i in range(2000):  # deeper than any nesting limit: sent as a flat table
        chain = ns["Node"](float(i), [chain])
    assert len(ns["visit"](chain)) == 2001 and chain.grad == 1.0


def test_engine_graphs_cross_by_value_and_keep_their_identity(kernel):
    """The judge's graph goes to the kernel as its contents; the nodes the
    student's code returns are the judge's own nodes; the kernel cannot
    rewrite the judge's graph (only an argument's data)."""
    _, _, judge = kernel
    outputs, exc = judge.run("import autodiff_ref as ad\n"
                             "x = ad.tensor([1.0, 2.0], requires_grad=True)\n"
                             "y = ad.exp(x) * x\n")
    assert exc is None, outputs
    ns = judge.ns
    x, y = ns["x"], ns["y"]
    found = ns["inputs_of"](y)
    assert len(found) == 2 and found[0] is y.grad_fn.next[0] and found[1] is x
    node, inputs = y.grad_fn, list(y.grad_fn.next)
    ns["vandal"](y)
    assert y.grad_fn is node and list(node.next) == inputs  # the graph is the judge's
    assert np.array_equal(y.data, [0.0, 0.0])  # the argument changed in place comes back
    # a judge function called back with the kernel's tensor, in the kernel's grad mode
    g = ns["grad_of"](lambda t: (t * t * t).sum(), ad.tensor([2.0, -1.0], requires_grad=True))
    assert isinstance(g, ad.Tensor) and np.allclose(g.data, [12.0, 3.0])


def test_a_students_function_is_a_stand_in_with_the_judges_apply(kernel):
    """Square.apply runs the judge's apply (the graph is the judge's) and the
    student's rules in the kernel, first and second derivatives."""
    _, _, judge = kernel
    ns = judge.ns
    square = ns["Square"]
    assert isinstance(square, type) and issubclass(square, ad.Function)
    x = ad.tensor([1.5, -2.0], requires_grad=True)
    y = square.apply(x)
    assert np.allclose(y.data, [2.25, 4.0]) and y.grad_fn.function is square
    assert y.grad_fn.ctx.saved_tensors[0] is x and y.grad_fn.ctx.note == "saved x"
    (g,) = ad.grad(y.sum(), x, create_graph=True)
    assert np.allclose(g.data, [3.0, -4.0])
    (h,) = ad.grad(g.sum(), x)  # through the student's backward, by the judge's engine
    assert np.allclose(h.data, [2.0, 2.0])
    assert ad.gradcheck(square.apply, (ad.tensor([0.3, 0.7], requires_grad=True),))


def test_a_batch_sends_many_operations_as_one_request(kernel):
    _, channel, judge = kernel
    ns = judge.ns
    before = channel.requests
    with judge.batch():
        d = ns["Dual"](0.5, 1.0)
        for _ in range(500):
            d = d * 1.01 + 0.001
    assert channel.requests - before == 1  # the batch, sent at the end of the block
    assert isinstance(d, Remote) and d._type == "Dual"
    value = 0.5
    for _ in range(500):
        value = value * 1.01 + 0.001
    assert abs(d.value - value) < 1e-12
    with pytest.raises(StudentCodeError):  # the student's error surfaces when it is sent
        with judge.batch():
            ns["unwritten"](1.0)


def test_a_class_derived_from_a_students_class_is_the_kernels(kernel):
    runner, channel, judge = kernel
    channel.mark()
    _run(runner, "class Base:\n    pass\n")
    judge.bind(channel.changed())
    source = "class Derived(Base):\n    kind = 'instructor'\n"
    _run(runner, source)  # an instructor's cell: the kernel runs it too
    outputs, exc = judge.run(source)
    assert exc is None, outputs
    derived = judge.ns["Derived"]
    assert isinstance(derived, Remote) and derived.kind == "instructor"
    _, exc = judge.run("class OnlyInTheJudge(Base):\n    pass\n")  # a test cell's class
    assert isinstance(exc, TypeError) and "not in a test cell" in str(exc)


def test_student_exceptions_keep_their_type_and_function(kernel):
    _, _, judge = kernel
    from autodiff_ref import grading

    with pytest.raises(NotImplementedError):
        judge.ns["unwritten"](1)
    with pytest.raises(grading.ExerciseNotWritten, match="exercise 1 .`unwritten`."):
        with grading.exercise(2, "uses", needs=[(1, "unwritten")]):
            judge.ns["unwritten"](1)


def test_objects_that_lie_are_handles_not_numbers(kernel):
    _, _, judge = kernel
    liar, objects = judge.ns["liar"], judge.ns["objects"]
    assert isinstance(liar, Remote) and isinstance(objects, Remote)
    assert float(liar) == 1.0 and type(float(liar)) is float
    with pytest.raises(TypeError, match="not an array of numbers"):
        np.asarray(objects)


def test_a_lying_agent_gets_an_error_for_that_call_only(kernel):
    runner, channel, judge = kernel
    _run(runner, "import autodiff_course.grading.agent as a, autodiff_course.grading.wire as w\n"
                 "real = w.encode\n"
                 "def forged(value, handle, depth=0, arrays=None):\n"
                 "    if type(value) is float and value == 99.0:\n"
                 "        return {'$nd': ['float64', [1000], 'AAAA']}\n"
                 "    if type(value) is float and value == 98.0:\n"
                 "        return {'$nd': ['object', [1], 'AAAAAAAAAAA=']}\n"
                 "    return real(value, handle, depth, arrays)\n"
                 "w.encode = forged\n")
    for bad in (99.0, 98.0):
        with pytest.raises(ChannelError, match="refuses"):
            judge.ns["double"](bad / 2)
    assert judge.ns["double"](1.5) == 3.0
    _run(runner, "w.encode = real")


@pytest.mark.parametrize("table", [
    {"k9001": ["N", {"$fn": "os.system"}, None, [], [], {"$t": []}, None]},  # not the engine's
    {"k9002": ["T", {"$nd": ["float64", [1], "AAAAAAAAAAA="]}, True, {"$ad": "k404"}, None,
               None]},  # names an object never described
    {"j999999": ["T", {"$nd": ["float64", [1], "AAAAAAAAAAA="]}, True, None, None, None]},
    {"k9003": ["X"]}])
def test_a_forged_table_of_engine_objects_is_refused(kernel, table):
    """A kernel that describes engine objects the judge cannot trust (a
    Function that is not the engine's, a dangling key, one of the judge's own
    objects it never received, an unknown kind) gets an error for that call."""
    runner, channel, judge = kernel
    _run(runner, "import autodiff_course.grading.agent as a\n"
                 "real_table = a._agent.graphs.table\n"
                 f"a._agent.graphs.table = lambda handle: {table!r}\n")
    try:
        with pytest.raises(ChannelError, match="refuses"):
            judge.ns["double"](2.0)
    finally:
        _run(runner, "a._agent.graphs.table = real_table\n")
    assert judge.ns["double"](1.5) == 3.0


def test_huge_replies_and_floods_are_errors_of_that_call(kernel):
    runner, channel, judge = kernel
    limit = channel.reply_limit
    channel.reply_limit = 1000
    try:
        with pytest.raises(ChannelError, match="MB of data"):
            judge.ns["double"](np.ones(1000))
    finally:
        channel.reply_limit = limit
    assert judge.ns["double"](2.0) == 4.0


def test_kernel_never_receives_test_source(kernel):
    runner, channel, judge = kernel
    sent = []
    execute, comm_send = channel.line.execute, channel.line.comm_send

    def spy(code):
        sent.append(code)
        return execute(code)

    def spy_comm(comm_id, data):
        sent.append(json.dumps(data))
        return comm_send(comm_id, data)
    channel.line.execute, channel.line.comm_send = spy, spy_comm
    try:
        outputs, exc = judge.run("SECRET_EXPECTED = 1234.5\nassert double(2.0) == 4.0\n"
                                 "assert apply_twice(lambda x: x + 1234.5, 0.5) == 2469.5\n")
    finally:
        channel.line.execute, channel.line.comm_send = execute, comm_send
    assert exc is None and sent and not any("SECRET" in s or "1234.5" in s for s in sent)


def test_a_call_past_its_time_limit_is_a_fault(tmp_path):
    runner = NotebookRunner(nbformat.v4.new_notebook(), tmp_path, km=kernel_manager(tmp_path),
                            timeout=30)
    with runner.setup_kernel():
        _run(runner, "import autodiff_course.grading.agent")
        channel = Channel(runner.kc, runner.km, call_timeout=2)
        channel.mark()
        _run(runner, STUDENT)
        judge = Judge(channel)
        judge.bind(channel.changed())
        with pytest.raises(KernelFault, match="more than 2 s"):
            judge.ns["slow"]()
        with pytest.raises(KernelFault):
            judge.ns["double"](1)


def test_stopping_a_kernel_that_died_signals_no_process_group(tmp_path, monkeypatch):
    """A kernel that died on its own is reaped when it is found dead; its
    number is free from then on, so stopping it must not kill that process
    group (by then it may be another program's: a student's JupyterLab)."""
    from autodiff_course import jupyter

    runner = NotebookRunner(nbformat.v4.new_notebook(), tmp_path, km=kernel_manager(tmp_path),
                            timeout=30)
    killed = []
    real_killpg = os.killpg
    monkeypatch.setattr(jupyter.os, "killpg",
                        lambda pgid, sig: (killed.append(pgid), real_killpg(pgid, sig)))
    with runner.setup_kernel():
        process = runner.km.provisioner.process
        real_killpg(process.pid, signal.SIGKILL)  # the kernel dies by itself
        deadline = time.monotonic() + 20
        while run_sync(runner.km.is_alive)():  # found dead, and reaped
            assert time.monotonic() < deadline, "the killed kernel still runs"
            time.sleep(0.05)
        assert process.returncode is not None
        runner.stop()
    assert killed == []
    # a kernel still running is stopped through its process group
    (tmp_path / "live").mkdir()
    live = NotebookRunner(nbformat.v4.new_notebook(), tmp_path / "live",
                          km=kernel_manager(tmp_path / "live"), timeout=30)
    with live.setup_kernel():
        pid = live.km.provisioner.process.pid
        live.stop()
    assert killed == [pid]
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
