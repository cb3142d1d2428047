"""The judge: the trusted side of grading.

The judge runs in the grading process, outside the sandbox, and runs only
the instructor's code: the notebook's setup cells and every test cell
(visible and hidden, from the instructor's source notebook), with the
grading process's own NumPy and ``autodiff_ref``. The names an answer cell
defines in the student's kernel are bound here to ``Remote`` proxies:
calling one, reading its attributes or applying an operator to it is a
request over the ``channel.Channel`` to the kernel's agent (``agent.py``);
what comes back is data (``wire.py``), validated before use, or another
proxy (``remote.py``). The
student's process never sees a test, an expected value or a random input
before the call that uses it.

A test cell passes iff the judge ran it to its end without an exception.
"""

from __future__ import annotations

import builtins
import contextlib
import io

import nbformat

from .channel import KernelFault
from .remote import Remote


class _Shell:
    """What ``get_ipython()`` gives the instructor's cells here: magics
    (``%matplotlib inline``) do nothing."""

    def run_line_magic(self, *args, **kwargs):
        return None

    def run_cell_magic(self, *args, **kwargs):
        return None

    def system(self, *args, **kwargs):
        return None


def _error_output(exc):
    ename = type(exc).__name__
    evalue = str(exc)
    return nbformat.v4.new_output("error", ename=ename, evalue=evalue,
                                  traceback=[f"{ename}: {evalue}"])


class Judge:
    """One notebook's namespace on the trusted side."""

    def __init__(self, *channels):
        import matplotlib

        matplotlib.use("Agg")
        from IPython.core.inputtransformer2 import TransformerManager
        from IPython.display import display

        self.channels = channels
        self.transform = TransformerManager().transform_cell
        self.ns = {"__name__": "__main__", "__builtins__": builtins,
                   "get_ipython": _Shell, "display": display}
        self.instructor_names = set()
        self.bound = {}  # the student's names as the kernel reported them
        self.skipped = []  # (name, why) of answer names not bound
        for channel in channels:
            channel.rebound = (lambda c: lambda: self.rebound(c))(channel)
            channel.instructor_class = self.instructor_class
            channel.notebook_class = self.notebook_class

    def notebook_class(self, name):
        cls = self.ns.get(name) if isinstance(name, str) else None
        return cls if isinstance(cls, type) and self.instructor_class(cls) else None

    def instructor_class(self, cls):
        """A class the instructor's cells defined here (its objects cross by value)."""
        name = getattr(cls, "__name__", None)
        return getattr(cls, "__module__", None) == "__main__" and \
            name in self.instructor_names and self.ns.get(name) is cls

    @contextlib.contextmanager
    def batch(self):
        """``grading.batch()`` here: every kernel defers (``Channel.batch``)."""
        with contextlib.ExitStack() as stack:
            for channel in self.channels:
                stack.enter_context(channel.batch())
            yield

    def rebound(self, channel):
        """The student's names that test code has rebound (e.g. to count the
        calls of one exercise made by another): they are rebound in the kernel
        (``channel``'s, where the name was defined) for the duration of each call."""
        return {name: self.ns[name] for name, value in self.bound.items()
                if name in self.ns and self.ns[name] is not value
                and getattr(value, "_channel", channel) is channel
                and getattr(self.ns[name], "_channel", channel) is channel}

    def bind(self, names):
        """Bind the names an answer cell defined (``Channel.changed``)."""
        for name, value in names.items():
            if name in self.instructor_names:
                self.skipped.append((name, "the notebook's own name"))
                continue
            if isinstance(value, Remote) and value._type == "module":
                self.skipped.append((name, "a module"))
                continue
            if isinstance(value, Remote) and value._type == "type" and \
                    value._channel.is_function_class(value):
                value = value._channel.stand_in(value)  # the judge's apply, the student's rules
            self.ns[name] = self.bound[name] = value

    def run(self, source, batch=False, figures=False):
        """Run one cell of the instructor's here; returns ``(outputs, exception)``.
        With ``batch`` the whole cell runs as in ``grading.batch()`` (the
        instructor's other cells: only the names they define matter here);
        with ``figures`` the figures it drew are among the outputs (PNG)."""
        import matplotlib.pyplot as plt
        import warnings

        from autodiff_ref import grading

        before = {k: id(v) for k, v in self.ns.items()}
        out, err, exc = io.StringIO(), io.StringIO(), None
        grading.batching = self.batch
        try:
            code = compile(self.transform(source), "<grader cell>", "exec")
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err), \
                    warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)  # Agg cannot show figures
                with self.batch() if batch else contextlib.nullcontext():
                    exec(code, self.ns)  # noqa: S102  (the instructor's code)
                for channel in self.channels:
                    if channel.deferred:
                        channel.flush()
        except KernelFault:
            raise
        except Exception as error:  # noqa: BLE001  (a failed check)
            exc = error
        finally:
            grading.batching = contextlib.nullcontext
            for channel in self.channels:
                channel.deferred.clear()
            drawn = [_png(plt.figure(n)) for n in plt.get_fignums()] if figures else []
            plt.close("all")
            self.instructor_names |= {k for k, v in self.ns.items() if before.get(k) != id(v)}
        for channel in self.channels:
            out.write("".join(f"\n{note}\n" for note in channel.notes))
            channel.notes.clear()
        outputs = []
        for name, stream in (("stdout", out), ("stderr", err)):
            if stream.getvalue():
                outputs.append(nbformat.v4.new_output("stream", name=name,
                                                      text=stream.getvalue()))
        outputs += drawn
        if exc is not None:
            outputs.append(_error_output(exc))
        return outputs, exc


def _png(figure):
    import base64

    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", bbox_inches="tight")
    return nbformat.v4.new_output("display_data", data={
        "image/png": base64.b64encode(buffer.getvalue()).decode("ascii"),
        "text/plain": "<Figure>"})


def warm_up():
    """Import what a ``Judge`` needs, once per grading process."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot  # noqa: F401
    from IPython.core.inputtransformer2 import TransformerManager  # noqa: F401

    import autodiff_ref.grading  # noqa: F401
