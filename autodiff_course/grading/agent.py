"""The judge's agent inside the student's kernel (untrusted side).

Imported by the grader before any student code runs (the judge's first
request imports it), it serves the judge's requests. A request arrives as a
message on the comm ``COMM_TARGET``, or, when it may call back into the
judge, as one line of code, ``serve('<json>')`` (``fetch()`` for a long
one, whose JSON then comes through ``input()``); the reply goes back on the
comm or as a display message of type ``MIME``, carrying JSON (``wire.py``)
with the request's id. The agent keeps a table of the objects the judge
holds handles to, and

* reports the global names an answer cell created or rebound (``mark``
  before the cell, ``changed`` after it);
* calls a function or class, reads or sets an attribute, applies an
  operator or conversion (``OPERATIONS``) to handles and data;
* turns the judge's functions passed as arguments into stubs that call back
  through the kernel's stdin channel (``input()``: the judge answers the
  ``input_request`` with JSON, or with a request of its own, which the stub
  serves before it waits again);
* keeps copies of the judge's objects of the notebook's own classes
  (``receive``) and sends back the attributes a call changed, and sends back
  the arrays and random generators passed as arguments that a call changed;
* keeps the reference engine's tensors, nodes and contexts linked with the
  judge's (``graphs.py``), and runs a call in the judge's grad mode.

Everything here runs in the student's process and can be changed by the
student's code: the judge treats every reply as untrusted data, validated
by ``wire.decode``. The agent is a convenience, not a defence.
"""

from __future__ import annotations

import math
import operator

import numpy as np

from . import graphs, wire

MIME = "application/x-autodiff-reply"
CALLBACK_PROMPT = "\x00autodiff-callback "  # a student's function calls a judge's
REPLY_PROMPT = "\x00autodiff-reply "  # the reply to a request made during a callback
FETCH_PROMPT = "\x00autodiff-fetch"  # a large request is read from stdin, not from code
SMALL_VALUE = 64 * 1024  # a name's value is sent as data up to this size, else as a handle
HIDDEN_NAMES = {"In", "Out", "get_ipython", "exit", "quit", "open"}
LIST_LIMIT = 100_000  # items of an iterable turned into a list


def _as_array(obj):
    array = np.asarray(obj)
    if array.dtype.name not in wire.DTYPES:
        raise TypeError(f"a {type(obj).__name__} is not an array of numbers "
                        f"(dtype {array.dtype})")
    return np.array(array, copy=True)


def _as_list(obj):
    items = []
    for item in obj:
        items.append(item)
        if len(items) > LIST_LIMIT:
            raise ValueError(f"more than {LIST_LIMIT} items")
    return items


def _exact(kind):
    def convert(obj):
        value = kind(obj)
        return kind(value)  # a subclass (a float that lies to ==) becomes the plain type
    return convert


OPERATIONS = {
    **{name: getattr(operator, name) for name in (
        "add", "sub", "mul", "truediv", "floordiv", "mod", "pow", "matmul", "neg", "pos",
        "abs", "invert", "eq", "ne", "lt", "le", "gt", "ge", "getitem", "setitem", "delitem",
        "contains", "and_", "or_", "xor", "lshift", "rshift", "index")},
    "len": len, "bool": _exact(bool), "float": _exact(float), "int": _exact(int),
    "complex": _exact(complex), "str": _exact(str), "repr": lambda o: str(repr(o)),
    "format": lambda o, spec: str(format(o, str(spec))),
    "isinstance": isinstance, "issubclass": issubclass, "list": _as_list, "array": _as_array,
    "type_name": lambda o: type(o).__name__,
    "class_name": lambda o: str(o.__name__) if isinstance(o, type) else None,
    "is_function_class": lambda o: isinstance(o, type) and graphs.engine() is not None
    and issubclass(o, graphs.engine()[1].Function),
    "mro_names": lambda o: [str(c.__name__) for c in type(o).__mro__][:50],
    "round": round, "floor": math.floor, "ceil": math.ceil,
}


_MISSING = object()


class CallbackError(RuntimeError):
    """A judge-side function called from student code failed."""


class Agent:
    def __init__(self):
        self.objects = {}  # handle id -> object
        self.ids = {}  # id(object) -> handle id (one handle per object)
        self.before = {}
        self.mirrors, self.mirror_of = {}, {}  # copies of the judge's objects
        self.graphs = graphs.Graphs("k", self.handle, self._function_class,
                                    describe_theirs=False)

    @staticmethod
    def _function_class(value):
        if not isinstance(value, type):
            raise wire.WireError("a node's Function must be a class")
        return value

    # ------------------------------------------------ handles

    def handle(self, obj):
        if graphs.is_engine_object(obj):
            return self.graphs.mark(obj)
        if isinstance(obj, type) and graphs.engine() is not None:
            name = self.graphs.builtin_name(obj)
            if name:
                return {graphs.FUNCTION: name}
        key = id(obj)
        mid = self.mirror_of.get(key)
        if mid is not None and self.mirrors.get(mid) is obj:
            return {"$obj": [mid]}
        if key not in self.ids or self.objects.get(self.ids[key]) is not obj:
            self.ids[key] = len(self.objects) + 1
            self.objects[self.ids[key]] = obj
        try:
            name = type(obj).__name__
            name = name if isinstance(name, str) else "object"
        except Exception:  # noqa: BLE001
            name = "object"
        return {"$h": [self.ids[key], name[:100]]}

    def resolve(self, marker, payload):
        if marker == "$h":
            ident = payload[0] if isinstance(payload, list) and payload else payload
            if ident not in self.objects:
                raise wire.WireError(f"no object with handle {ident!r}")
            return self.objects[ident]
        if marker == "$obj":
            return self.mirrors[payload[0]]
        if marker == "$cb":
            return self.stub(payload)
        if marker == "$g":
            cls = self.namespace().get(payload) if isinstance(payload, str) else None
            if not isinstance(cls, type):
                raise wire.WireError(f"the notebook's class {str(payload)[:80]!r} is missing here")
            return cls
        if marker == graphs.MARK:
            return self.graphs.find(payload)
        if marker == graphs.FUNCTION:
            return self.graphs.builtin(payload)
        raise wire.WireError(f"unexpected {marker}")

    def stub(self, ident):
        agent = self

        def judge_function(*args, **kwargs):
            call = wire.encode({"cb": ident, "args": args, "kwargs": kwargs}, agent.handle)
            call = call["$d"]
            table = agent.graphs.table(agent.handle)
            if table:
                call["graph"] = table
            if graphs.engine() is not None:  # the judge's function runs in our grad mode
                call["grad"] = bool(graphs.engine()[0].engine.mode.grad_enabled)
            prompt = CALLBACK_PROMPT + wire.json.dumps(call, allow_nan=True)
            while True:
                answer = wire.json.loads(_ask(prompt))
                if isinstance(answer, dict) and "graph" in answer:
                    agent.graphs.receive(answer["graph"], agent.resolve, trusting=True)
                if isinstance(answer, dict) and isinstance(answer.get("request"), dict):
                    # the judge's function uses our objects: serve it, then wait again
                    prompt = REPLY_PROMPT + wire.json.dumps(agent.respond(answer["request"]),
                                                            allow_nan=True)
                    continue
                if not isinstance(answer, dict) or not ("error" in answer or "value" in answer):
                    raise CallbackError("the grader's function gave no answer")
                if "error" in answer:
                    raise CallbackError(str(answer["error"]))
                return wire.decode(answer["value"], agent.resolve)

        return judge_function

    # ------------------------------------------------ names

    def namespace(self):
        from IPython import get_ipython

        return get_ipython().user_ns

    def mark(self):
        self.before = {k: id(v) for k, v in self.namespace().items()}

    def changed(self):
        found = {}
        for name, value in list(self.namespace().items()):
            if not isinstance(name, str) or name.startswith("_") or name in HIDDEN_NAMES:
                continue
            if self.before.get(name) == id(value):
                continue
            data = wire.encode(value, self.handle)
            if len(wire.json.dumps(data, allow_nan=True)) > SMALL_VALUE:
                data = self.handle(value)
            found[name] = data
        return found

    # ------------------------------------------------ requests

    def perform(self, request, arrays, saved, sent, engine_args):
        op = request.get("op")
        if op == "mark":
            self.mark()
            return None
        if op == "changed":
            return {"$raw": self.changed()}
        if op == "batch":
            return {"$raw": self.batch(request.get("items"))}
        if op == "figures":
            _figures(request.get("draw") is True)
            return None
        self.graphs.receive(request.get("graph"), self.resolve, trusting=True)
        mirrored = self.receive(request.get("objects") or {})
        args = wire.decode(request.get("args", []), self.resolve, arrays=arrays)
        kwargs = wire.decode(request.get("kwargs", {"$d": {}}), self.resolve, arrays=arrays)
        engine_args += [a for a in [*args, *kwargs.values()] if graphs.is_engine_object(a)]
        saved.extend(wire.copy_state(a) for a in arrays)
        sent.update({mid: self.attributes(self.mirrors[mid]) for mid in mirrored})
        if op == "call":
            target = self.resolve("$h", request["target"])
            patch = wire.decode(request.get("globals", {"$d": {}}), self.resolve)
            if type(request.get("grad")) is bool and graphs.engine() is not None:
                # the judge's grad mode (off inside a Function's forward)
                mode = graphs.engine()[0].engine.mode
                before, mode.grad_enabled = mode.grad_enabled, request["grad"]
                try:
                    return self._call(target, args, kwargs, patch)
                finally:
                    mode.grad_enabled = before
            return self._call(target, args, kwargs, patch)
        if op == "getattr":
            return getattr(self.resolve("$h", request["target"]), request["name"])
        if op == "global":
            return self.namespace().get(str(request.get("name")))
        if op == "setattr":
            setattr(self.resolve("$h", request["target"]), request["name"], args[0])
            return None
        if op == "apply":
            return OPERATIONS[request["name"]](*args)
        raise wire.WireError(f"unknown request {op!r}")

    def batch(self, items):
        """Requests the judge deferred (``Channel.defer``), run in order; each
        result is kept under the (negative) handle the judge chose for it.
        Returns {handle: type name}; the first error stops the batch."""
        types = {}
        for item in items if isinstance(items, list) else []:
            pid = item.get("promise") if isinstance(item, dict) else None
            if type(pid) is not int or pid >= 0 or pid in self.objects:
                raise wire.WireError("a deferred request needs a new negative handle")
            result = self.perform(item, [], [], {}, [])
            self.objects[pid] = result
            self.ids.setdefault(id(result), pid)
            types[str(pid)] = type(result).__name__[:100]
        return types

    def _call(self, target, args, kwargs, patch):
        if not patch:
            return target(*args, **kwargs)
        # the judge rebound some of the student's names (a test that counts calls)
        space = self.namespace()
        saved = {name: space.get(name, _MISSING) for name in patch}
        space.update(patch)
        try:
            return target(*args, **kwargs)
        finally:
            for name, value in saved.items():
                if value is _MISSING:
                    space.pop(name, None)
                else:
                    space[name] = value

    def receive(self, objects):
        """Copies of the judge's objects (by value, linked by id): made or
        updated in two passes, so that they may refer to each other."""
        space = self.namespace()
        for key, (class_name, _) in objects.items():
            mid = int(key)
            if mid not in self.mirrors:
                cls = space.get(class_name)
                if not isinstance(cls, type):
                    raise TypeError(f"the notebook's class {class_name!r} is missing here")
                self.mirrors[mid] = obj = object.__new__(cls)
                self.mirror_of[id(obj)] = mid
        for key, (_, attrs) in objects.items():
            obj = self.mirrors[int(key)]
            vars(obj).clear()
            vars(obj).update(wire.decode(attrs, self.resolve))
        return [int(key) for key in objects]

    def attributes(self, obj):
        return wire.json.dumps(wire.encode(dict(vars(obj)), self.handle), allow_nan=True)

    def serve(self, text):
        try:
            request = wire.json.loads(text)
        except ValueError as exc:
            request = {"op": f"unreadable: {exc}"}
        _publish({MIME: wire.json.dumps(self.respond(request), allow_nan=True)})

    def respond(self, request):
        """The reply (a dict) to one request (a dict)."""
        reply, arrays, saved, sent, engine_args = {}, [], [], {}, []
        try:
            reply["id"] = request.get("id")
            result = self.perform(request, arrays, saved, sent, engine_args)
            if isinstance(result, dict) and "$raw" in result and len(result) == 1:
                reply["value"] = {"$d": result["$raw"]}
            else:
                reply["value"] = wire.encode(result, self.handle)
        except BaseException as exc:  # noqa: BLE001  (every failure goes back as data)
            reply["error"] = describe(exc)
        changed = []
        for i, a in enumerate(arrays):
            try:
                if i < len(saved) and not wire.same_state(a, saved[i]):
                    changed.append([i, wire.encode(a, self.handle)])
            except Exception:  # noqa: BLE001
                pass
        if changed:
            reply["mutated"] = changed
        mirrors = {}
        for mid, before in sent.items():
            try:
                now = self.attributes(self.mirrors[mid])
                if now != before:
                    mirrors[str(mid)] = wire.json.loads(now)
            except Exception:  # noqa: BLE001
                pass
        if mirrors:
            reply["mirrors"] = mirrors
        try:  # the engine objects the reply names, and the arguments' new contents
            for obj in engine_args:
                self.graphs.mark(obj, describe=True)
            table = self.graphs.table(self.handle)
            if table:
                reply["graph"] = table
        except Exception as exc:  # noqa: BLE001
            reply.pop("value", None)
            reply["error"] = describe(exc)
        return reply


def _ask(prompt):
    """One line from the judge through the kernel's stdin channel, also while
    the kernel serves a comm message (builtins.input only works inside an
    execute request that allows stdin)."""
    kernel = getattr(_shell(), "kernel", None)
    if kernel is None or not hasattr(kernel, "raw_input"):
        return input(prompt)
    allowed, kernel._allow_stdin = getattr(kernel, "_allow_stdin", False), True
    try:
        return kernel.raw_input(prompt)
    finally:
        kernel._allow_stdin = allowed


def _shell():
    from IPython import get_ipython

    return get_ipython()


def _figures(draw):
    """Whether figures shown from now on are drawn as images (IPython's
    image formatters), or only named (the grader has the image already)."""
    formatters = _shell().display_formatter.formatters
    for mime in wire.FIGURE_TYPES:
        if mime in formatters:
            formatters[mime].enabled = draw


def describe(exc):
    """An exception as data: its type's name, the nearest built-in exception
    type it derives from, its message and the innermost function it came from."""
    builtin = next((c.__name__ for c in type(exc).__mro__
                    if c.__module__ == "builtins" and issubclass(c, BaseException)),
                   "Exception")
    try:
        message = str(exc)
    except Exception:  # noqa: BLE001
        message = "(an exception whose message could not be read)"
    tb, where = exc.__traceback__, None
    while tb is not None:
        where = tb.tb_frame.f_code.co_name
        tb = tb.tb_next
    return {"type": type(exc).__name__[:100], "builtin": builtin, "message": message[:4000],
            "where": where}


COMM_TARGET = "autodiff-judge"  # requests that need no stdin come as comm messages


def _on_comm(comm, _open_msg):
    def answer(msg):
        try:
            request = wire.json.loads(msg["content"]["data"]["request"])
        except (KeyError, TypeError, ValueError) as exc:
            request = {"op": f"unreadable: {exc}"}
        comm.send({"reply": wire.json.dumps(_agent.respond(request), allow_nan=True)})

    comm.on_msg(answer)


_agent = Agent()
try:  # a comm message costs the kernel less than an execute request (no IPython cell)
    import comm as _comm

    _comm.get_comm_manager().register_target(COMM_TARGET, _on_comm)
except Exception:  # noqa: BLE001  (no comms: every request comes as code)
    pass
# taken when the agent is imported, before any student code runs: an answer
# that replaces IPython's display function later does not cut the agent off
# (an answer can still break its own kernel: it then loses its own points)
from IPython.display import publish_display_data as _publish  # noqa: E402


def serve(text):
    """One request from the judge (see the module docstring)."""
    _agent.serve(text)


def fetch():
    """One large request from the judge, read from stdin (a long line of code
    would cost IPython more to parse than the call itself)."""
    _agent.serve(input(FETCH_PROMPT))

