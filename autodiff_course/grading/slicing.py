"""Which of the instructor's cells the judge needs to run (a program slice).

The judge (``judge.py``) runs the instructor's cells for what the tests use:
names, and the state of the objects they name. A cell that only shows
something (draws a figure, prints a table, trains a demo network) costs the
judge as much as it costs the student's kernel, for nothing the grade
depends on. ``needed(cells)`` reads the sources (nothing runs) and keeps,
going backwards from the last cell, every test cell and every other cell
that

* binds a name a later kept cell reads (assignment, ``def``, ``import``, a
  ``for``/``with`` target, a name a function declares ``global``),
* may change what a later kept cell reads: it stores into, deletes from,
  calls a method of or passes to a call a name read later (or one bound
  from such a name), mentions an instructor function that changes a name
  read later, or calls a module function that changes the module's state
  (``STATEFUL``: seeds, print options, the engine's grad mode...),
* defines a class (objects of the notebook's classes cross the channel by
  the class's name), or
* cannot be analysed: it does not parse, or reaches names dynamically
  (``DYNAMIC``).

The analysis errs towards keeping. A cell left out still runs when its
outputs are needed (``submission.py``: the kernel lacks the engine that
cell uses). Build verification grades every solution through the judge,
so a cell wrongly left out is the instructor's build error, not a
student's lost point.
"""

from __future__ import annotations

import ast
import builtins
import functools
import types

DYNAMIC = frozenset({"exec", "eval", "globals", "vars", "locals", "setattr", "delattr",
                     "__import__", "compile", "importlib"})
STATEFUL = frozenset({"seed", "set_state", "set_printoptions", "seterr", "seterrcall",
                      "setbufsize", "rc", "rcdefaults", "rc_file", "rcParams", "use",
                      "set_grad_enabled", "filterwarnings", "simplefilter", "resetwarnings",
                      "chdir", "putenv", "environ", "setrecursionlimit", "shuffle",
                      "copyto", "put", "place", "putmask", "fill_diagonal", "at"})
FRESH_RANDOM = frozenset({"default_rng", "Generator", "SeedSequence", "PCG64", "PCG64DXSM",
                          "Philox", "SFC64", "MT19937", "BitGenerator", "Random"})
PARAMETER = "(a parameter)"
MODULE = "(a module)"
PURE_BUILTINS = frozenset({
    "abs", "all", "any", "bool", "callable", "complex", "dict", "divmod", "enumerate",
    "float", "format", "frozenset", "getattr", "hasattr", "hash", "id", "int", "isinstance",
    "issubclass", "len", "list", "map", "max", "min", "pow", "print", "range", "repr",
    "reversed", "round", "set", "slice", "sorted", "str", "sum", "tuple", "type", "zip"})


class _Cell:
    """What one cell's source does, as far as the slice needs to know."""

    def __init__(self, source):
        self.names, self.binds, self.modules = set(), set(), set()
        self.reads, self.definite, self.later, self.methods = set(), set(), {}, set()
        self.functions = {}  # top-level def name -> its node
        self.unknown = self.has_class = False
        try:
            self.tree = ast.parse(_python(source))
        except (SyntaxError, ValueError):
            self.tree, self.unknown = None, True
            return
        for node in ast.walk(self.tree):
            if isinstance(node, ast.Name):
                self.names.add(node.id)
                if node.id in DYNAMIC:
                    self.unknown = True
            elif isinstance(node, ast.ImportFrom) and node.names[0].name == "*":
                self.unknown = True
            elif isinstance(node, ast.ClassDef):
                self.has_class = True  # its objects cross by the class's name: kept
            elif isinstance(node, ast.Global):
                self.binds.update(node.names)
        self._bind_top(self.tree.body)
        self.reads = _free_reads(self.tree.body, set())
        # what its functions read when they are called, which may be later
        self.later, self.methods = _kept_functions(self.tree)
        self.definite = set().union(*(_definite(stmt) for stmt in self.tree.body))

    def _bind_top(self, body):
        """The names bound at the module level (not inside functions)."""
        for node in body:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                self.binds.add(node.name)
                self.functions[node.name] = node
                continue
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                self.binds |= _imported(node)
                self.modules |= _imported(node)
                continue
            for sub in _walk_scope(node):
                if isinstance(sub, ast.Name) and isinstance(sub.ctx, (ast.Store, ast.Del)):
                    self.binds.add(sub.id)
                elif isinstance(sub, ast.NamedExpr):
                    self.binds.add(sub.target.id)
                elif isinstance(sub, ast.ExceptHandler) and sub.name:
                    self.binds.add(sub.name)
                elif isinstance(sub, (ast.MatchAs, ast.MatchStar)) and sub.name:
                    self.binds.add(sub.name)
                elif isinstance(sub, ast.MatchMapping) and sub.rest:
                    self.binds.add(sub.rest)
            for sub in ast.walk(node):  # functions defined in a block (if/try)
                if isinstance(sub, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    self.binds.add(sub.name)
                    self.functions.setdefault(sub.name, sub)


@functools.lru_cache(maxsize=2048)
def _parsed(source):
    """``_Cell(source)``, parsed once per source (cells repeat across
    submissions: only the answers differ)."""
    return _Cell(source)


def _remembered(function):
    """``function(node, *sets of names)`` computed once per node and
    arguments (kept on the node: the parsed cells are cached, see ``_parsed``)."""
    @functools.wraps(function)
    def wrapper(node, *names):
        memo = node.__dict__.setdefault("_slicing_memo", {})
        key = (function.__name__, *(frozenset(n) for n in names))
        if key not in memo:
            memo[key] = _frozen(function(node, *names))
        return memo[key]
    return wrapper


def _frozen(value):
    """``value`` with its sets frozen (a remembered result is shared)."""
    if isinstance(value, (set, frozenset)):
        return frozenset(value)
    if isinstance(value, tuple):
        return tuple(_frozen(v) for v in value)
    if isinstance(value, dict):
        return types.MappingProxyType({k: _frozen(v) for k, v in value.items()})
    return value


@_remembered
def _changes(tree, modules, student=frozenset()):
    """(names whose objects the code may change, whether it changes a
    module's state). ``modules``: the notebook's imported module names. The
    names a function's body changes count if they are not its own (its
    parameters and locals: see ``_changes_arguments``)."""
    changed, stateful = _direct_changes(tree, modules, student)
    for function in _functions(tree):
        inner, state = _direct_changes(function, modules, student)
        changed |= inner - _locals(function)
        stateful = stateful or state
    return changed, stateful


def _changes_arguments(function, modules):
    """Whether a function may change an object it is given."""
    inner, _ = _direct_changes(function, modules)
    return bool(inner & _parameters(function))


def _functions(tree):
    return [n for n in ast.walk(tree)
            if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))]


def _kept_functions(tree):
    """({name: what its body reads} of the functions the code keeps for
    later: defined at the module level, also in a branch or a loop, or a
    lambda assigned there; what the methods of its classes read)."""
    named, methods = {}, set()
    for node in _walk_scope(tree):
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Lambda):
            for target in node.targets:
                if isinstance(target, ast.Name):
                    named.setdefault(target.id, set()).update(_body_reads(node.value))
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                named.setdefault(child.name, set()).update(_body_reads(child))
            elif isinstance(child, ast.ClassDef):
                for method in ast.walk(child):
                    if isinstance(method, (ast.FunctionDef, ast.AsyncFunctionDef)):
                        methods |= _body_reads(method)
    return named, methods


def _body_reads(function):
    """What a function's body reads from outside when it runs."""
    inner = _locals(function)
    body = function.body if isinstance(function.body, list) else [function.body]
    return {n for stmt in body for n in _scope_reads(stmt, inner)}


def _parameters(function):
    args = function.args
    return {a.arg for a in (*args.posonlyargs, *args.args, *args.kwonlyargs,
                            *filter(None, (args.vararg, args.kwarg)))}


def _locals(function):
    """A function's own names: parameters and what it binds, unless declared
    ``global``/``nonlocal``."""
    body = function.body if isinstance(function.body, list) else [function.body]
    declared = {n for stmt in body for g in ast.walk(stmt)
                if isinstance(g, (ast.Global, ast.Nonlocal)) for n in g.names}
    bound = {n.id for stmt in body for n in ast.walk(stmt)
             if isinstance(n, ast.Name) and isinstance(n.ctx, (ast.Store, ast.Del))}
    return (_parameters(function) | bound) - declared


def _direct_changes(node, modules, student=frozenset()):
    """``_changes`` of the code in ``node``'s own scope (not in the
    functions it defines). ``student``: the names the answers define; what a
    student's function does to the judge's values it is given (written back
    from the kernel) is not carried into the tests, which use the
    instructor's values as the instructor's cells made them."""
    changed, stateful = set(), False
    for node in _walk_scope(node, own=True):
        targets = []
        if isinstance(node, (ast.Assign, ast.Delete)):
            targets = node.targets
        elif isinstance(node, (ast.AugAssign, ast.AnnAssign, ast.For, ast.AsyncFor)):
            targets = [node.target]
        elif isinstance(node, ast.withitem) and node.optional_vars is not None:
            targets = [node.optional_vars]
        for target in targets:
            for part in _elements(target):
                if isinstance(part, (ast.Attribute, ast.Subscript)):
                    root, _ = _root(part.value)
                    if root in modules:
                        stateful = True
                    elif root:
                        changed.add(root)
        if not isinstance(node, ast.Call):
            continue
        func, arguments = node.func, [k.value for k in node.keywords if k.arg == "out"]
        if isinstance(func, ast.Attribute):
            root, chain = _root(func.value)
            if root in modules:
                stateful = stateful or _stateful(chain + [func.attr])
            elif root:
                changed.add(root)  # a method may change its object
        elif isinstance(func, ast.Name) and func.id == "next":
            arguments = node.args[:1]
        elif not (isinstance(func, ast.Name) and func.id in PURE_BUILTINS | student):
            # a function may change what it is given
            arguments = [*node.args, *(k.value for k in node.keywords)]
        for arg in arguments:
            changed |= _shared(arg, modules) - modules
    return changed, stateful


def _python(source):
    """The cell as Python (IPython's magics and shell lines transformed)."""
    from IPython.core.inputtransformer2 import TransformerManager

    return TransformerManager().transform_cell(source)


def _walk_scope(node, own=False):
    """The nodes of ``node`` in its own scope: not inside the functions,
    lambdas or classes it defines, nor (unless ``own``, for what the code
    does rather than what it binds) inside comprehensions, whose names are
    their own, except their named expressions, which bind outside."""
    todo = [node]
    while todo:
        current = todo.pop()
        yield current
        for child in ast.iter_child_nodes(current):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda,
                                  ast.ClassDef)):
                if own:  # its decorators and defaults run here
                    todo.extend(getattr(child, "decorator_list", []))
                    args = getattr(child, "args", None)
                    if args is not None:
                        todo.extend([*args.defaults, *filter(None, args.kw_defaults)])
                continue
            if not own and isinstance(child, (ast.ListComp, ast.SetComp, ast.DictComp,
                                              ast.GeneratorExp)):
                todo.extend(n for n in ast.walk(child) if isinstance(n, ast.NamedExpr))
                continue
            todo.append(child)


def _elements(target):
    if isinstance(target, (ast.Tuple, ast.List)):
        for element in target.elts:
            yield from _elements(element)
    elif isinstance(target, ast.Starred):
        yield from _elements(target.value)
    else:
        yield target


def _root(node):
    """(the name an attribute/subscript/call chain starts from, the
    attribute names on the way); (None, []) for a fresh value."""
    chain = []
    while True:
        if isinstance(node, ast.Attribute):
            chain.insert(0, node.attr)
            node = node.value
        elif isinstance(node, ast.Subscript):
            node = node.value
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            node = node.func  # d.get(k).append(...) changes what d holds
        elif isinstance(node, ast.Starred):
            node = node.value
        elif isinstance(node, ast.Name):
            return node.id, chain
        else:
            return None, chain


def _stateful(chain):
    if any(part in STATEFUL for part in chain):
        return True
    # the legacy global generators (np.random.rand, random.random) share state
    for i, part in enumerate(chain):
        if part == "random" and i + 1 < len(chain) and chain[i + 1] not in FRESH_RANDOM:
            return True
    return False


def _names(node):
    """The names an expression's value may share objects with (every name
    in it but those only called by name)."""
    called = {id(n.func) for n in ast.walk(node) if isinstance(n, ast.Call)
              and isinstance(n.func, ast.Name)}
    return {n.id for n in ast.walk(node) if isinstance(n, ast.Name) and id(n) not in called}


BUILTIN_NAMES = frozenset(dir(builtins))
FRESH_BUILTINS = frozenset({"abs", "bool", "callable", "complex", "float", "format", "hash",
                            "hasattr", "id", "int", "isinstance", "issubclass", "len", "repr",
                            "round", "str", "type"})


def _module_path(node, modules):
    """Whether ``node`` is a module or a module's attribute (no call on the way)."""
    while isinstance(node, ast.Attribute):
        node = node.value
    return isinstance(node, ast.Name) and node.id in modules


def _shared(node, modules):
    """The names whose objects the value of ``node`` may be, or hold, or be
    a view of. Arithmetic and comparisons make new objects; a call may
    return (a view of) its arguments or what its object holds."""
    if isinstance(node, ast.Name):
        return {node.id}
    if isinstance(node, (ast.Attribute, ast.Subscript, ast.Starred, ast.NamedExpr)):
        return _shared(node.value, modules)
    if isinstance(node, (ast.BinOp, ast.UnaryOp, ast.Compare, ast.JoinedStr, ast.Constant,
                         ast.Lambda)):
        return set()
    if isinstance(node, ast.Call):
        func, found = node.func, set()
        if isinstance(func, ast.Name) and func.id in FRESH_BUILTINS:
            return set()
        if isinstance(func, ast.Attribute) and not _module_path(func.value, modules):
            found |= _shared(func.value, modules)
        for arg in (*node.args, *(k.value for k in node.keywords)):
            found |= _shared(arg, modules)
        return found
    found = set()
    for child in ast.iter_child_nodes(node):
        if isinstance(child, ast.expr):
            found |= _shared(child, modules)
    return found


@_remembered
def _aliases(tree, modules):
    """{name: names its value may share objects with}, for the names the
    code binds anywhere (its functions' locals included); module names are
    not objects that get shared, unless bound as they are (``r = np.random``)."""
    links = {}
    for node in ast.walk(tree):
        pairs = []
        if isinstance(node, (ast.Assign, ast.AnnAssign)) and node.value is not None:
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            pairs = [(t, node.value) for t in targets]
        elif isinstance(node, ast.NamedExpr):
            pairs = [(node.target, node.value)]
        elif isinstance(node, (ast.For, ast.AsyncFor, ast.comprehension)):
            pairs = [(node.target, node.iter)]
        elif isinstance(node, ast.withitem) and node.optional_vars is not None:
            pairs = [(node.optional_vars, node.context_expr)]
        for target, value in pairs:
            bare = _module_path(value, modules)
            sources = _shared(value, modules) - (set() if bare else modules)
            for part in _elements(target):
                if isinstance(part, ast.Name):
                    links.setdefault(part.id, set()).update(sources)
                    if bare:
                        links[part.id].add(MODULE)
    return links


def _scope_reads(node, local):
    """Names an expression (or a nested function) reads from outside, its
    own comprehension targets, lambda and function parameters excluded."""
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
        args, outer = node.args, set()
        for default in (*args.defaults, *filter(None, args.kw_defaults)):
            outer |= _scope_reads(default, local)
        if isinstance(node, ast.Lambda):
            return outer | _scope_reads(node.body, set(local) | _parameters(node))
        for decorator in node.decorator_list:
            outer |= _scope_reads(decorator, local)
        inner = set(local) | _locals(node)
        return outer | {n for stmt in node.body for n in _scope_reads(stmt, inner)}
    if isinstance(node, (ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp)):
        inner, reads = set(local), set()
        for generator in node.generators:
            reads |= _scope_reads(generator.iter, inner)
            inner |= {n.id for n in ast.walk(generator.target) if isinstance(n, ast.Name)}
            for condition in generator.ifs:
                reads |= _scope_reads(condition, inner)
        parts = [node.key, node.value] if isinstance(node, ast.DictComp) else [node.elt]
        for part in parts:
            reads |= _scope_reads(part, inner)
        return reads
    if isinstance(node, ast.Name):
        return {node.id} if isinstance(node.ctx, ast.Load) and node.id not in local else set()
    reads = set()
    for child in ast.iter_child_nodes(node):
        reads |= _scope_reads(child, local)
    if isinstance(node, ast.AugAssign) and isinstance(node.target, ast.Name) \
            and node.target.id not in local:
        reads.add(node.target.id)  # x += 1 reads x
    return reads


def _free_reads(body, bound):
    """Names the statements read at the module level before the cell itself
    bound them (in order; a binding inside a branch or loop is not counted
    as made)."""
    reads, bound = set(), set(bound)
    for stmt in body:
        if isinstance(stmt, (ast.For, ast.AsyncFor)):
            reads |= _scope_reads(stmt.iter, bound)
            targets = {n.id for n in ast.walk(stmt.target) if isinstance(n, ast.Name)}
            reads |= _free_reads(stmt.body, bound | targets) | _free_reads(stmt.orelse, bound)
        elif isinstance(stmt, (ast.With, ast.AsyncWith)):
            names = set()
            for item in stmt.items:
                reads |= _scope_reads(item.context_expr, bound)
                if item.optional_vars is not None:
                    names |= {n.id for n in ast.walk(item.optional_vars)
                              if isinstance(n, ast.Name)}
            reads |= _free_reads(stmt.body, bound | names)
        elif isinstance(stmt, (ast.If, ast.While)):
            reads |= _scope_reads(stmt.test, bound)
            reads |= _free_reads(stmt.body, bound) | _free_reads(stmt.orelse, bound)
        elif isinstance(stmt, ast.Try) or type(stmt).__name__ == "TryStar":
            reads |= _free_reads(stmt.body, bound) | _free_reads(stmt.orelse, bound)
            reads |= _free_reads(stmt.finalbody, bound)
            for handler in stmt.handlers:
                if handler.type is not None:
                    reads |= _scope_reads(handler.type, bound)
                reads |= _free_reads(handler.body, bound | {handler.name} - {None})
        elif isinstance(stmt, ast.ClassDef):
            for part in (*stmt.bases, *(k.value for k in stmt.keywords), *stmt.decorator_list):
                reads |= _scope_reads(part, bound)
            for inner in stmt.body:  # methods see the module's names, not the class's
                reads |= _scope_reads(inner, bound)
        else:
            reads |= _scope_reads(stmt, bound)
        bound |= _definite(stmt)
    return reads


def _imported(stmt):
    """The names an import statement binds."""
    return {a.asname or a.name.split(".")[0] for a in stmt.names}


def _definite(stmt):
    """The names a module-level statement certainly binds once it has run."""
    if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        return {stmt.name}
    if isinstance(stmt, (ast.Import, ast.ImportFrom)):
        return _imported(stmt)
    if isinstance(stmt, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
        targets = stmt.targets if isinstance(stmt, ast.Assign) else [stmt.target]
        if isinstance(stmt, ast.AnnAssign) and stmt.value is None:
            return set()
        return {p.id for t in targets for p in _elements(t) if isinstance(p, ast.Name)}
    if isinstance(stmt, (ast.With, ast.AsyncWith)):
        names = {n.id for item in stmt.items if item.optional_vars is not None
                 for n in ast.walk(item.optional_vars) if isinstance(n, ast.Name)}
        return names.union(*(_definite(s) for s in stmt.body))
    return set()


@functools.lru_cache(maxsize=64)
def needed(cells):
    """``cells``: ``((kind, source), ...)`` in notebook order, kind "test",
    "answer" or "other". Returns the indices of the "other" cells the judge
    must run (every "test" cell runs; "answer" cells run only in the kernel)."""
    return frozenset(reasons(cells))


@functools.lru_cache(maxsize=64)
def constant(cells):
    """The indices of the "other" cells whose outputs cannot depend on the
    answers (as in ``needed``): nothing they read, also through the
    instructor's functions they read, is a name an answer cell binds or may
    change, or a name bound or changed by a cell that read one (followed
    down the notebook); none after a cell that cannot be analysed. The build
    keeps their outputs, which the grader shows instead of computing them
    again (``submission.py``)."""
    parsed = [(kind, _parsed(source)) for kind, source in cells]
    modules = set().union(*(cell.modules for _, cell in parsed))
    tainted = set().union(*(cell.binds for kind, cell in parsed if kind == "answer"))
    named, methods, found = {}, set(), set()
    for index, (kind, cell) in enumerate(parsed):
        if kind != "test" and cell.unknown:
            return frozenset(found)  # it may read and change anything: none after it
        if kind == "answer":  # what it may change (when run, or its functions called)
            tainted |= _changes(cell.tree, modules)[0]
            continue
        methods |= cell.methods
        for name, reads in cell.later.items():
            named[name] = named.get(name, set()) | reads
        if kind != "other":
            continue
        if _with_function_reads(cell.reads, named, methods) & tainted:
            tainted |= cell.binds | _changes(cell.tree, modules)[0]
        else:
            found.add(index)
    return frozenset(found)


@functools.lru_cache(maxsize=64)
def kernel_skips(cells, saved):
    """The indices of the "other" cells the student's kernel need not run
    (``cells`` as in ``needed``, with the student's answers; ``saved``: the
    indices whose outputs the build kept): cells whose outputs cannot depend
    on the answers (``constant``) and that nothing the kernel runs needs:
    not the answers (also when the judge calls their functions later), not
    the cells that do run there."""
    candidates = constant(cells) & frozenset(saved)
    readers = [("other", "") if kind == "test" else
               ("other", source) if index in candidates else ("test", source)
               for index, (kind, source) in enumerate(cells)]
    bound = set().union(*(_parsed(source).binds for kind, source in cells if kind == "answer"))
    # the judge calls what the answers define at any time after: read them all at the end
    readers.append(("test", "\n".join(sorted(bound))))
    return candidates - needed(tuple(readers))


def reasons(cells):
    """{index: why the judge runs it} of the "other" cells ``needed`` keeps."""
    parsed = [(kind, _parsed(source) if kind != "answer" else None) for kind, source in cells]
    student = frozenset().union(*(_parsed(source).binds for kind, source in cells
                                  if kind == "answer"))
    cells_ = [cell for _, cell in parsed if cell is not None and cell.tree is not None]
    modules = set().union(*(c.modules for c in cells_))
    effects = _function_effects(cells_, modules)
    links, shared = {}, []  # names that may share objects, up to each cell (both ways)
    for _, cell in parsed:
        if cell is not None and cell.tree is not None:
            links = {name: set(others) for name, others in links.items()}
            for name, sources in _aliases(cell.tree, modules).items():
                for source in sources - BUILTIN_NAMES - set(effects):  # not functions
                    links.setdefault(name, set()).add(source)
                    links.setdefault(source, set()).add(name)
        shared.append(links)
    # a function of a test or kept cell reads its names when it is called,
    # which may be after later cells: while its name is live, so are they
    keep, previous = {}, None
    while previous is None or set(keep) != set(previous):
        previous, before = keep, _functions_before(parsed, keep)
        live, keep = set(), {}
        for index in range(len(parsed) - 1, -1, -1):
            kind, cell = parsed[index]
            if kind == "answer":
                continue
            live = _with_function_reads(live, *before[index])
            if cell.unknown:
                if kind != "test":
                    keep[index] = "it cannot be analysed (it does not parse, or reaches " \
                                  "names dynamically)"
                live |= _everything(parsed, index)
                continue
            why = None if kind == "test" else \
                _changes_live(cell, live, modules, effects, shared[index], student)
            if kind == "test" or why:
                if why:
                    keep[index] = why
                live = (live - cell.definite) | cell.reads
    return keep


def _function_effects(cells, modules):
    """{instructor function name: (names it may change, whether it changes
    module state)}, including what the functions it names change."""
    effects, named = {}, {}
    for cell in cells:
        for name, node in cell.functions.items():
            changed, stateful = _changes(node, modules)
            changed |= {n for g in ast.walk(node) if isinstance(g, ast.Global) for n in g.names}
            if _changes_arguments(node, modules):
                changed |= {PARAMETER}
            before = effects.get(name, (set(), False))
            effects[name] = (before[0] | changed, before[1] or stateful)
            named.setdefault(name, set()).update(
                n.id for n in ast.walk(node) if isinstance(n, ast.Name))
    grew = True
    while grew:
        grew = False
        for name, others in named.items():
            changed, stateful = effects[name]
            for other in others & set(effects) - {name}:
                more_changed = effects[other][0] - changed
                more_state = effects[other][1] and not stateful
                if more_changed or more_state:
                    changed, stateful = changed | more_changed, stateful or more_state
                    effects[name] = (changed, stateful)
                    grew = True
    return effects


def _changes_live(cell, live, modules, effects, links, student):
    """Why running ``cell`` may change a name in ``live`` or its object
    (a sentence), or None."""
    if cell.has_class:
        return "it defines a class"
    if cell.binds & live:
        return f"it binds {', '.join(sorted(cell.binds & live))}, read later"
    changed, stateful = _changes(cell.tree, modules, student)
    for name in cell.names & set(effects):  # the instructor functions it may call
        changed |= effects[name][0]
        stateful = stateful or effects[name][1]
    if stateful:
        return "it may change a module's state"
    # a function that changes its arguments, given to other code: that code
    # may call it with the other arguments of the call it was given to
    changers = {name for name in cell.names & set(effects) if PARAMETER in effects[name][0]}
    changers |= {f.name for f in _functions(cell.tree)
                 if isinstance(f, ast.FunctionDef) and _changes_arguments(f, modules)}
    calls = [n for n in ast.walk(cell.tree) if isinstance(n, ast.Call)]
    given = {id(call.func) for call in calls}  # called, or given to a call (below)
    for call in calls:
        arguments = [*call.args, *(k.value for k in call.keywords)]
        if any(isinstance(a, ast.Name) and a.id in changers for a in arguments):
            given |= {id(a) for a in arguments if isinstance(a, ast.Name)}
            for arg in arguments:
                changed |= _shared(arg, modules) - modules - changers
    escaping = {n.id for n in ast.walk(cell.tree) if isinstance(n, ast.Name)
                and n.id in changers and isinstance(n.ctx, ast.Load) and id(n) not in given}
    if escaping:
        return f"it hands on {', '.join(sorted(escaping))}, which may change its arguments"
    tainted, todo = set(), list(live)
    while todo:  # live names and every name that may share an object with one
        name = todo.pop()
        if name not in tainted:
            tainted.add(name)
            todo.extend(links.get(name, ()))
    if MODULE in tainted:
        tainted |= {name for name, others in links.items() if MODULE in others}
    touched = (changed - set(effects) - BUILTIN_NAMES) & tainted
    if touched:
        return f"it may change {', '.join(sorted(touched))}, read later"
    return None


def _functions_before(parsed, keep):
    """[({function name: what it reads}, what methods read) of the tests
    and kept cells before each cell]."""
    result, named, methods = [], {}, set()
    for index, (kind, cell) in enumerate(parsed):
        result.append((dict(named), set(methods)))
        if cell is not None and (kind == "test" or index in keep):
            for name, reads in cell.later.items():
                named[name] = named.get(name, set()) | reads
            methods |= cell.methods
    return result


def _with_function_reads(live, named, methods):
    """``live`` with what the live functions (and every method) read."""
    live, todo = live | methods, list(live | methods)
    while todo:
        for name in named.get(todo.pop(), ()):
            if name not in live:
                live.add(name)
                todo.append(name)
    return live


def _everything(parsed, index):
    """Every name the cells before ``index`` bind or mention (a cell that
    reaches names dynamically may read any of them)."""
    names = set()
    for _, cell in parsed[:index]:
        if cell is not None:
            names |= cell.binds | cell.names
    return names
