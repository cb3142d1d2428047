"""The judge's channel to the student's kernel (trusted side).

``Channel.request`` sends one request to the kernel's agent (``agent.py``)
through ``jupyter.KernelLine`` and returns what came back, decoded and
validated by ``wire.py``: data, or ``remote.Remote`` proxies of the kernel's
objects. On the way it answers the kernel's callbacks (a judge function the
student's code calls), sends requests made during them over stdin, mirrors
objects of the notebook's own classes, writes back arguments changed in
place, and enforces a time and size limit per request. An exception of the
student's code comes back as data and is raised here as ``student_exception``.
"""

from __future__ import annotations

import builtins
import contextlib
import itertools
import json
import keyword
import sys
import time

import numpy as np

from ..jupyter import DeadKernelError, KernelLine
from . import graphs, wire
from .agent import CALLBACK_PROMPT, COMM_TARGET, FETCH_PROMPT, MIME, REPLY_PROMPT
from .remote import KernelClass, Remote, function_stand_in

CALL_TIMEOUT = 60.0  # seconds per request to the kernel
REPLY_LIMIT = 32 * 1024 ** 2  # characters of one reply (JSON)
OUTPUT_LIMIT = 16 * 1024 ** 2  # characters of other output the kernel may send during a request
AGENT = "__import__('autodiff_course.grading.agent', fromlist=['serve'])"
INLINE_LIMIT = 8 * 1024  # characters of a request sent as code; longer ones go over stdin
SAFE_BUILTINS = {  # kernel exception types re-raised here as subclasses of the built-in type
    "ArithmeticError", "AssertionError", "AttributeError", "BufferError", "EOFError",
    "FloatingPointError", "ImportError", "IndexError", "KeyError", "LookupError",
    "MemoryError", "ModuleNotFoundError", "NameError", "NotImplementedError", "OSError",
    "OverflowError", "RecursionError", "RuntimeError", "TypeError", "UnboundLocalError",
    "UnicodeError", "ValueError", "ZeroDivisionError"}
RESERVED_NAMES = {"GraderFault"}  # the grader's own error name
DEFERRABLE = {"add", "sub", "mul", "truediv", "floordiv", "mod", "pow", "matmul", "neg", "pos",
              "abs", "getitem"}  # operators grading.batch() may send later
DEFER_LIMIT = 20_000  # deferred requests sent in one message at most


class ChannelError(RuntimeError):
    """A request to the student's kernel failed: too large, malformed, too slow."""


class KernelFault(RuntimeError):
    """The student's kernel can no longer answer (dead, stuck, out of time):
    the rest of the notebook is not run."""


class StudentCodeError(Exception):
    """Base of the exceptions that the student's code raised in the kernel."""


def student_exception(info):
    """A judge-side exception standing for one the kernel described (data)."""
    info = info if isinstance(info, dict) else {}
    message = str(info.get("message", ""))[:4000]
    base_name = info.get("builtin")
    base = getattr(builtins, base_name) if base_name in SAFE_BUILTINS else RuntimeError
    name = info.get("type")
    from autodiff_ref import grading

    if not (isinstance(name, str) and name.isidentifier() and not keyword.iskeyword(name)) \
            or name in RESERVED_NAMES or name in {e.__name__ for e in grading.ERRORS}:
        name = base.__name__
    kind = type(name, (base, StudentCodeError), {"__module__": "student"})
    return kind(message)


def _raise_from(where, exc):
    """Raise ``exc`` from a frame named like the kernel's innermost function,
    so that ``grading.exercise`` names an unwritten exercise as it does when
    the test runs next to the code."""
    if isinstance(where, str) and where.isidentifier() and not keyword.iskeyword(where) \
            and len(where) <= 100:
        space = {}
        exec(compile(f"def {where}(e):\n    raise e\n", "<student code>", "exec"), space)  # noqa: S102
        space[where](exc)
    raise exc


# ------------------------------------------------------------ the channel


class Channel:
    """Requests to the agent in one kernel (``kc``: nbclient's client of it)."""

    def __init__(self, kc, km, deadline=None, call_timeout=CALL_TIMEOUT,
                 reply_limit=REPLY_LIMIT):
        self.line, self.deadline = KernelLine(kc, km), deadline
        self.call_timeout, self.reply_limit = call_timeout, reply_limit
        self.callbacks, self.remotes = {}, {}
        self.ids = itertools.count(1)
        self.depth, self.broken, self.pending, self.comm = 0, None, None, None
        self.notes = []  # things the student should know about the values (float32...)
        self.rebound = dict  # the student's names a test rebound (set by the Judge)
        self.instructor_class = lambda cls: False  # whose objects cross by value (Judge)
        self.notebook_class = lambda name: None  # the judge's class of that name (Judge)
        self.mirror_ids, self.mirrored, self.outgoing = {}, {}, {}
        self.requests, self.seconds = 0, 0.0
        self.graphs = graphs.Graphs("j", self._function_out, self._function_in)
        self.stand_ins, self.writable = {}, set()
        self.deferring, self.deferred = 0, []  # grading.batch(): requests sent together
        self.promises = itertools.count(-1, -1)
        self._kernel_base = None

    # -------------------------------------------------- encoding

    def _send_handle(self, obj):
        if isinstance(obj, Remote):
            if obj._channel is not self:
                raise TypeError("a value of the notebook's other kernel")
            return {"$h": [obj._id, obj._type]}
        if graphs.is_engine_object(obj):
            return self.graphs.mark(obj)
        if isinstance(obj, type) and graphs.engine() is not None:
            name = self.graphs.builtin_name(obj)
            if name:
                return {graphs.FUNCTION: name}
            if obj in self.stand_ins.values():
                return self._function_out(obj)
        if isinstance(obj, type) and self.instructor_class(obj):
            return {"$g": obj.__name__}  # the kernel ran the same cell: its class of that name
        if self.instructor_class(type(obj)) and hasattr(obj, "__dict__"):
            return {"$obj": [self._mirror(obj)]}
        if callable(obj):
            ident = len(self.callbacks) + 1
            self.callbacks[ident] = obj
            return {"$cb": ident}
        raise TypeError(f"the grader cannot pass a {type(obj).__name__} to student code")

    def _mirror(self, obj):
        """An object of a class the instructor's cells define: it crosses by
        value (its attributes), and its copy in the kernel stays linked to it."""
        mid = self.mirror_ids.get(id(obj))
        if mid is None or self.mirrored.get(mid) is not obj:
            mid = len(self.mirrored) + 1
            self.mirror_ids[id(obj)], self.mirrored[mid] = mid, obj
        if mid not in self.outgoing:
            self.outgoing[mid] = obj
        return mid

    def _objects(self):
        """The attributes of every mirrored object a request refers to (and of
        those they refer to), each once: a flat table, so deep graphs travel."""
        table, todo = {}, list(self.outgoing)
        while todo:
            mid = todo.pop()
            if str(mid) in table:
                continue
            obj, known = self.outgoing[mid], len(self.outgoing)
            attrs = {k: v for k, v in vars(obj).items() if isinstance(k, str)}
            table[str(mid)] = [type(obj).__name__, wire.encode(attrs, self._send_handle)]
            # the objects it refers to that were met for the first time (the newest keys)
            todo.extend(itertools.islice(reversed(self.outgoing), len(self.outgoing) - known))
        return table

    # -------------------------------------------------- the engine's objects

    def _function_out(self, cls):
        remote = getattr(cls, "_remote", None) if isinstance(cls, type) else None
        if self.stand_ins.get(getattr(remote, "_id", None)) is not cls:
            raise TypeError(f"the grader cannot send the Function {getattr(cls, '__name__', cls)}"
                            " to the student's kernel")
        return {"$h": [remote._id, remote._type]}

    def _function_in(self, value):
        if not isinstance(value, Remote) or value._channel is not self:
            raise wire.WireError("a node's Function must be the engine's or the student's class")
        return self.stand_in(value)

    def stand_in(self, remote):
        """The judge's stand-in for a student's ``ad.Function`` subclass: the
        judge's own ``apply`` and backward walk, the student's ``forward``,
        ``backward`` and ``jvp`` called in the kernel."""
        cls = self.stand_ins.get(remote._id)
        if cls is None:
            name = self.apply("class_name", remote)
            cls = function_stand_in(remote, name if isinstance(name, str) else "Function")
            self.stand_ins[remote._id] = cls
        return cls

    def kernel_base(self):
        if self._kernel_base is None:
            self._kernel_base = KernelClass("KernelClass", (), {"_channel": self})
        return self._kernel_base

    def kernel_class(self, name, namespace):
        """The kernel's class ``name``, for a class statement of the judge's
        that derives from a student's class (``remote.KernelClass``)."""
        found = self.request("global", name=name)
        if not (isinstance(found, Remote) and found._type == "type"):
            raise TypeError(
                f"class {name} derives from a class of the student's: the grader can define "
                "it only in a cell that runs in the student's kernel too (not in a test cell)")
        return found

    def is_function_class(self, remote):
        return self.apply("is_function_class", remote) is True

    def _resolve(self, marker, payload):
        if marker == graphs.MARK:
            return self.graphs.find(payload)
        if marker == graphs.FUNCTION:
            return self.graphs.builtin(payload)
        if marker == "$obj":
            if not (isinstance(payload, list) and payload and type(payload[0]) is int
                    and payload[0] in self.mirrored):
                raise wire.WireError("the kernel named an object the grader never sent")
            return self.mirrored[payload[0]]
        if marker != "$h" or not (isinstance(payload, list) and len(payload) == 2
                                  and type(payload[0]) is int and isinstance(payload[1], str)):
            raise wire.WireError(f"the kernel sent {marker!r} where only data or handles may be")
        ident, type_name = payload
        if ident not in self.remotes:
            self.remotes[ident] = Remote(self, ident, type_name[:100])
        return self.remotes[ident]

    # -------------------------------------------------- requests

    def request(self, op, **fields):
        """Send one request; returns its decoded value or raises the student's
        exception (``student_exception``), ``ChannelError`` or ``KernelFault``.

        Made while a student's function waits for a judge's function (a
        callback), the request travels through the kernel's stdin channel
        instead: the kernel's stub serves it and answers in its next prompt."""
        if self.broken:
            raise KernelFault(self.broken)
        deferrable = self.deferring and self.depth == 0 and (
            op in ("call", "getattr") or (op == "apply" and fields.get("name") in DEFERRABLE))
        if self.deferred and not deferrable:
            self.flush()
        arrays, outer, self.outgoing = [], self.outgoing, {}
        callbacks = len(self.callbacks)
        top = [*fields.get("args", ()), *fields.get("kwargs", {}).values()]
        try:
            for key in ("args", "kwargs", "globals"):
                if key in fields:
                    fields[key] = wire.encode(fields[key], self._send_handle, arrays=arrays)
            table = {}
            while True:  # engine objects and the notebook's objects may refer to each other
                table.update(self.graphs.table(self._send_handle))
                objects = self._objects()
                if not self.graphs.queue:
                    break
        finally:
            self.outgoing = outer
        rid = f"{next(self.ids)}-{time.monotonic_ns()}"
        message = {"id": rid, "op": op, **fields, **({"objects": objects} if objects else {}),
                   **({"graph": table} if table else {})}
        engine = sys.modules.get("autodiff_ref.engine")
        if op == "call" and engine is not None:
            message["grad"] = bool(engine.mode.grad_enabled)
        if deferrable and not arrays and not objects and not table \
                and len(self.callbacks) == callbacks and not fields.get("globals", {"$d": {}})["$d"]:
            # plain operands only (nothing to write back): the result is a promise
            pid = next(self.promises)
            message["promise"] = pid
            self.deferred.append(message)
            if len(self.deferred) >= DEFER_LIMIT:
                self.flush()
            return self._resolve("$h", [pid, "object"])
        # what the call may change of ours: the engine objects passed as arguments
        outer_writable = self.writable
        self.writable = {self.graphs.keys[id(a)] for a in top
                         if graphs.is_engine_object(a) and id(a) in self.graphs.keys}
        started = time.monotonic()
        nested = self.depth > 0
        self.depth += 1
        try:
            if nested:
                self.line.answer(json.dumps({"request": message}, allow_nan=True))
                reply = self._wait_stdin(rid)
            else:
                text = json.dumps(message, allow_nan=True)
                if self.comm is not None:  # a comm message (the agent asks for callbacks
                    # through the kernel's stdin channel, like input() in a cell)
                    reply = self._wait(self.line.comm_send(self.comm, {"request": text}), rid,
                                       shell_reply=False)
                elif len(text) <= INLINE_LIMIT:
                    reply = self._wait(self.line.execute(f"{AGENT}.serve({text!r})"), rid)
                else:
                    self.pending = text
                    reply = self._wait(self.line.execute(f"{AGENT}.fetch()"), rid)
        finally:
            self.depth -= 1
            self.writable = outer_writable
            if not nested:
                self.requests += 1
                self.seconds += time.monotonic() - started
        for item in reply.get("mutated", []) if isinstance(reply.get("mutated"), list) else []:
            self._write_back(item, arrays)
        for mid, attrs in reply.get("mirrors", {}).items():
            obj = self.mirrored.get(mid)
            if obj is not None and isinstance(attrs, dict):
                for name, value in attrs.items():
                    if name.isidentifier() and not name.startswith("__"):
                        setattr(obj, name, value)
        if "error" in reply:
            info = reply["error"]
            _raise_from(info.get("where") if isinstance(info, dict) else None,
                        student_exception(info))
        if "value" not in reply:
            raise ChannelError("the student's kernel sent a reply without a value")
        return reply["value"]

    @contextlib.contextmanager
    def batch(self):
        """Defer the calls and operators on the student's objects made in the
        block (``grading.batch``) and send them together at its end, or when a
        value is needed sooner."""
        self.deferring += 1
        try:
            yield
        finally:
            self.deferring -= 1
            if not self.deferring and self.deferred and not self.broken:
                self.flush()

    def flush(self):
        """Send the deferred requests as one; a student's error raises here."""
        items, self.deferred = self.deferred, []
        types = self.request("batch", items=items)
        for key, name in types.items() if isinstance(types, dict) else ():
            remote = self.remotes.get(int(key)) if key.lstrip("-").isdigit() else None
            if remote is not None and isinstance(name, str):
                object.__setattr__(remote, "_type", name[:100])

    def _widen(self, value):
        """Single (or half) precision from the student's code, as float64 for
        the checks, with a note: graded on the values, told about the type."""
        if (type(value) is np.ndarray or type(value).__module__ == "numpy") \
                and hasattr(value, "dtype") and value.dtype.kind in "fc" \
                and value.dtype.itemsize < (8 if value.dtype.kind == "f" else 16):
            note = (f"note: your code returned {value.dtype} values where float64 is "
                    "expected; the grader compared them as float64")
            if note not in self.notes:
                self.notes.append(note)
            return value.astype(np.complex128 if value.dtype.kind == "c" else np.float64)
        if type(value) is list:
            return [self._widen(v) for v in value]
        if type(value) is tuple:
            return tuple(self._widen(v) for v in value)
        if type(value) is dict:
            return {k: self._widen(v) for k, v in value.items()}
        return value

    def _write_back(self, item, arrays):
        """An argument array the call changed in place: change ours the same way."""
        try:
            index, data = item
            new = wire.decode(data, self._resolve)
            old = arrays[index]
        except (ValueError, TypeError, IndexError, wire.WireError):
            return
        if isinstance(old, np.random.Generator) and type(new) is type(old) and \
                type(new.bit_generator) is type(old.bit_generator):
            old.bit_generator.state = new.bit_generator.state
        elif isinstance(old, np.ndarray) and isinstance(new, np.ndarray) and \
                new.shape == old.shape and old.flags.writeable:
            old[...] = new.astype(old.dtype, copy=False)

    def _parse(self, text, rid):
        try:
            data = json.loads(text) if isinstance(text, str) else None
        except (ValueError, RecursionError):
            return None
        if not isinstance(data, dict) or data.get("id") != rid:
            return None
        reply = {}
        self.graphs.receive(data.get("graph"), self._resolve, self.writable)
        if "error" in data:
            reply["error"] = data["error"]
        elif "value" in data:
            reply["value"] = self._widen(wire.decode(data["value"], self._resolve))
        if isinstance(data.get("mutated"), list):
            reply["mutated"] = data["mutated"]
        if isinstance(data.get("mirrors"), dict):  # changed attributes of mirrored objects
            reply["mirrors"] = {}
            for key, attrs in data["mirrors"].items():
                if isinstance(key, str) and key.isdigit() and int(key) in self.mirrored:
                    value = wire.decode(attrs, self._resolve)
                    if isinstance(value, dict):
                        reply["mirrors"][int(key)] = value
        return reply

    def _deadline(self):
        limit = self.call_timeout
        if self.deadline is not None:
            limit = min(limit, self.deadline - time.monotonic())
        if limit <= 0:
            self.broken = "the notebook used up its time budget"
            raise KernelFault(self.broken)
        return limit, time.monotonic() + limit

    def _kernel_call(self, step, limit):
        """One step of the kernel line; its failures are faults."""
        try:
            return step()
        except TimeoutError:
            self.broken = f"the student's code ran for more than {limit:.0f} s (stopped)"
        except DeadKernelError:
            self.broken = "the kernel died (for example os._exit, a crash, or the memory limit)"
        raise KernelFault(self.broken)

    def open(self):
        """Open the comm to the agent (after a first request imported it)."""
        limit, deadline = self._deadline()
        self.comm = self._kernel_call(lambda: self.line.comm_open(COMM_TARGET, deadline),
                                      limit)

    def _wait(self, msg_id, rid, shell_reply=True):
        """The reply to the execute request ``msg_id``, answering the kernel's
        callbacks (``input_request``) on the way."""
        limit, deadline = self._deadline()
        state = {"found": None, "problem": None, "output": 0}
        while True:
            prompt = self._kernel_call(
                lambda: self.line.messages(msg_id, lambda m: self._take(m, rid, state),
                                           deadline), limit)
            if prompt is None:
                break
            self._answer(prompt)
        if shell_reply:
            self.line.finish(msg_id)
        if state["problem"]:
            raise ChannelError(state["problem"])
        if state["found"] is None:
            raise ChannelError("the student's kernel did not answer the grader's request "
                               "(was the grader's agent in the kernel changed?)")
        return state["found"]

    def _wait_stdin(self, rid):
        """The reply to a request made during a callback: the kernel's next
        prompt (deeper callbacks are answered on the way)."""
        limit, deadline = self._deadline()
        while True:
            prompt = self._kernel_call(lambda: self.line.prompt(deadline), limit)
            if isinstance(prompt, str) and prompt.startswith(REPLY_PROMPT):
                text = prompt[len(REPLY_PROMPT):]
                if len(text) > self.reply_limit:
                    raise ChannelError(f"the student's code returned more than "
                                       f"{self.reply_limit // 1024 ** 2} MB of data")
                try:
                    reply = self._parse(text, rid)
                except wire.WireError as exc:
                    raise ChannelError(f"the student's code returned data the grader "
                                       f"refuses: {exc}") from None
                if reply is None:
                    raise ChannelError("the student's kernel answered another request")
                return reply
            self._answer(prompt)

    def _take(self, msg, rid, state):
        kind, content = msg.get("msg_type"), msg.get("content", {})
        data = content.get("data", {}) if isinstance(content, dict) else {}
        key = MIME if kind in ("display_data", "execute_result") else \
            "reply" if kind == "comm_msg" else None
        if key is not None and isinstance(data, dict) and key in data:
            text = data[key]
            if not isinstance(text, str) or len(text) > self.reply_limit:
                state["problem"] = (f"the student's code returned more than "
                                    f"{self.reply_limit // 1024 ** 2} MB of data")
                return
            try:
                parsed = self._parse(text, rid)
            except wire.WireError as exc:
                state["problem"] = f"the student's code returned data the grader refuses: {exc}"
                return
            if parsed is not None:
                state["found"] = parsed  # the last one wins: the agent answers last
        else:
            state["output"] += len(json.dumps(content, default=str))
            if state["output"] > OUTPUT_LIMIT and state["problem"] is None:
                state["problem"] = (f"the student's code printed more than "
                                    f"{OUTPUT_LIMIT // 1024 ** 2} MB while the grader "
                                    "called it")

    def _answer(self, prompt):
        """A student's function called a judge-side function (or asked for input)."""
        if prompt == FETCH_PROMPT and self.pending is not None:
            text, self.pending = self.pending, None
            self.line.answer(text)
            return
        if not isinstance(prompt, str) or not prompt.startswith(CALLBACK_PROMPT):
            self.line.answer("")
            return
        try:
            text = prompt[len(CALLBACK_PROMPT):]
            if len(text) > self.reply_limit:
                raise wire.WireError("the callback's arguments are too large")
            call = json.loads(text)
            if not isinstance(call, dict):
                raise wire.WireError("a malformed callback")
            self.graphs.receive(call.pop("graph", None), self._resolve)
            grad = call.pop("grad", None)
            call = wire.decode({"$d": call}, self._resolve)
            function = self.callbacks[call["cb"]]
            engine = sys.modules.get("autodiff_ref.engine")
            with engine.set_grad_enabled(grad) if type(grad) is bool and engine is not None \
                    else contextlib.nullcontext():
                value = function(*call.get("args", ()), **call.get("kwargs", {}))
            answer = {"value": wire.encode(value, self._send_handle)}
            table = self.graphs.table(self._send_handle)
            if table:
                answer["graph"] = table
            answer = json.dumps(answer, allow_nan=True)
        except Exception as exc:  # noqa: BLE001  (goes back to the student's code)
            answer = json.dumps({"error": f"{type(exc).__name__}: {exc}"[:2000]})
        self.line.answer(answer)

    # -------------------------------------------------- the agent's services

    def mark(self):
        self.request("mark")

    def changed(self):
        """{name: value or Remote} of the names the last answer cell defined."""
        names = self.request("changed")
        if not isinstance(names, dict):
            raise ChannelError("the kernel's list of names is not a dict")
        return {k: v for k, v in names.items()
                if isinstance(k, str) and k.isidentifier() and not keyword.iskeyword(k)}

    def apply(self, name, *args):
        return self.request("apply", name=name, args=list(args))
