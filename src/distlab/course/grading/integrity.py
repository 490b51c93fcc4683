"""Is a grade what the student's code earned? Three checks that flag, never score.

Student code runs in the same Python process as the tests that grade it, so it can
forge its results from inside (an input transformer that turns test cells into ``pass``,
a wrapper that rewrites error replies). That cannot be prevented; it can be detected:

* :func:`scan_cells`, a static scan of the cells the student wrote (the AST after
  IPython's own syntax transforms) for what honest work never needs: the kernel or
  IPython machinery, the grading files, ``sys.modules``, frame and class-identity games,
  ``ctypes``, ``/proc``, new processes, code built at run time;
* :func:`canary_cells` / :func:`canary_verdict`: cells the grader adds after the
  student's, one that must print a number only the kernel can compute and one that must
  fail with a message only the kernel can compute; a kernel that rewrites input,
  outputs or replies gets one of them wrong;
* :func:`gradebook_fingerprint` / :func:`gradebook_changes`: the gradebook read before
  and after the student's code ran; any change (a ``manual_score`` set, a test cell's
  source rewritten) is tampering.

Each finding is a short reason; a report with reasons reads "needs review: ...".
"""

from __future__ import annotations

import ast
import builtins
import collections
import hashlib
import re
import secrets
import sqlite3
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nbformat

__all__ = [
    "Canary",
    "canary_cells",
    "canary_verdict",
    "gradebook_changes",
    "gradebook_fingerprint",
    "scan_cells",
    "scan_source",
]

# --- the static scan ------------------------------------------------------------------
_KERNEL = "reaches into the kernel or IPython"
_PROCESS = "starts or signals processes"
_LOWLEVEL = "uses low-level interpreter access"
_IDENTITY = "rewrites a class's or function's identity"
_DYNAMIC = "runs code built at run time"
_FILES = "touches grading or system files"
_MODULES = "changes loaded modules"
_PATCHES = "changes code the tests rely on"

# Names or attributes (any use) and the reason they are flagged.
_NAMES: dict[str, str] = {
    **dict.fromkeys(
        [
            "get_ipython",
            "__IPYTHON__",
            "InteractiveShell",
            "input_transformers_cleanup",
            "input_transformers_post",
            "input_transformer_manager",
            "ast_transformers",
            "register_magic_function",
            "register_magics",
            "run_cell",
            "run_cell_async",
            "run_line_magic",
            "run_cell_magic",
            "set_custom_exc",
            "custom_exceptions",
            "showtraceback",
            "_showtraceback",
            "display_pub",
            "display_formatter",
            "displayhook",
            "excepthook",
            "user_ns",
            "user_global_ns",
            "user_module",
            "iopub_socket",
            "iopub_thread",
            "shell_stream",
            "shell_streams",
            "control_stream",
            "send_response",
            "do_execute",
            "execute_request",
            "shell_handlers",
            "comm_manager",
            "pre_run_cell",
            "post_run_cell",
            "pre_execute",
            "post_execute",
        ],
        _KERNEL,
    ),
    **dict.fromkeys(
        [
            "create_subprocess_exec",
            "create_subprocess_shell",
            "ProcessPoolExecutor",
            "posix_spawn",
            "posix_spawnp",
            "forkpty",
            "pidfd_open",
        ],
        _PROCESS,
    ),
    **dict.fromkeys(
        [
            "_getframe",
            "_current_frames",
            "settrace",
            "setprofile",
            "addaudithook",
            "meta_path",
            "path_hooks",
            "path_importer_cache",
            "currentframe",
            "getouterframes",
            "getinnerframes",
            "f_back",
            "f_globals",
            "f_locals",
            "f_builtins",
            "f_code",
            "tb_frame",
            "gi_frame",
            "cr_frame",
            "ag_frame",
            "__globals__",
            "__code__",
            "__closure__",
            "__builtins__",
            "__subclasses__",
            "__getattribute__",
            "__loader__",
            "__spec__",
            "get_referrers",
            "get_referents",
            "get_objects",
            "FunctionType",
            "CodeType",
            "ModuleType",
            "LambdaType",
            "CellType",
            # Frames and test sources by other routes (traceback, inspect, a builtin's
            # module): a caller's frame is the kernel, its source a hidden test.
            "__self__",
            "walk_stack",
            "walk_tb",
            "extract_stack",
            "format_stack",
            "print_stack",
            "getsource",
            "getsourcelines",
            "getsourcefile",
            "findsource",
            "getframeinfo",
            "getclosurevars",
        ],
        _LOWLEVEL,
    ),
    **dict.fromkeys(["__module__", "__mro__", "__mro_entries__"], _IDENTITY),
}
# Bare names only (``re.compile`` is fine, ``compile(...)`` is not).
_BARE: dict[str, str] = {
    **dict.fromkeys(["exec", "eval", "compile", "__import__", "breakpoint"], _DYNAMIC),
    **dict.fromkeys(["_ih", "_oh", "_dh", "In", "Out"], _KERNEL),
}
# Attributes of a module only (``os.kill``; a breaker's own ``.kill()`` is fine).
_OF_MODULE: dict[tuple[str, str], str] = {
    **{
        ("os", name): _PROCESS
        for name in (
            "system",
            "popen",
            "fork",
            "kill",
            "killpg",
            "setsid",
            "setpgid",
            "setuid",
            "setgid",
            "setresuid",
            "execv",
            "execve",
            "execl",
            "execle",
            "execlp",
            "execlpe",
            "execvp",
            "execvpe",
            "spawnv",
            "spawnve",
            "spawnl",
            "spawnle",
            "spawnlp",
            "spawnvp",
        )
    },
    ("sys", "modules"): _MODULES,
    ("sys", "path"): _MODULES,
    ("inspect", "stack"): _LOWLEVEL,
    ("inspect", "trace"): _LOWLEVEL,
}
# Attributes flagged only when assigned to (reading them is ordinary).
_STORED: dict[str, str] = dict.fromkeys(
    ["__class__", "__qualname__", "__name__", "__bases__", "__dict__", "__doc__"], _IDENTITY
) | dict.fromkeys(["stdout", "stderr", "stdin", "__stdout__", "__stderr__"], _KERNEL)
# Modules whose import is flagged (the top-level name, or a dotted prefix).
_MODULES_FLAGGED: dict[str, str] = {
    **dict.fromkeys(
        [
            "IPython",
            "ipykernel",
            "jupyter_client",
            "jupyter_core",
            "zmq",
            "tornado",
            "comm",
            "__main__",
        ],
        _KERNEL,
    ),
    **dict.fromkeys(
        ["nbgrader", "nbformat", "nbclient", "nbconvert", "sqlalchemy", "alembic"], _FILES
    ),
    **dict.fromkeys(["subprocess", "multiprocessing", "pty", "signal", "pexpect"], _PROCESS),
    **dict.fromkeys(["unittest.mock", "mock"], _PATCHES),
    **dict.fromkeys(
        [
            "ctypes",
            "_ctypes",
            "cffi",
            "importlib",
            "imp",
            "pkgutil",
            "marshal",
            "builtins",
            "code",
            "codeop",
            "pdb",
            "bdb",
            "site",
            "resource",
            "linecache",
            "dis",
            "distlab.course",
        ],
        _LOWLEVEL,
    ),
}
# Parts of a string constant that point at grading or system files.
_PATH_MARKERS = (
    "/proc",
    "/sys/",
    "/dev/",
    "/etc/",
    "gradebook",
    "nbgrader",
    "_grading",
    "solutions/",
    ".ipynb",
    "ipykernel",
    "jupyter",
    "sitecustomize",
    "usercustomize",
    "site-packages",
    "distlab-sbx",
    "kernel.json",
)
_PATH_SUFFIXES = (".py", ".pyc", ".pth", ".so")
# Builtins (print, getattr...): an attribute of one looked up by a computed name
# (getattr(print, "__se" + "lf__") is the builtins module) is as suspect as a module's.
_BUILTINS = frozenset(dir(builtins))
# Source the scan reads, per cell and per notebook: parsing costs the grader seconds and
# hundreds of MiB per MiB of source (IPython's transforms far more), and honest cells
# are a few KiB.
_SCAN_CELL = 64 << 10
_SCAN_NOTEBOOK = 256 << 10
# IPython's input history: _i, _ii, _iii (the last inputs) and _i<N> (input N).
_HISTORY = re.compile(r"_i{1,3}|_i\d+")
# An attribute looked up by a format string: "{0.__init__.__globals__}".format(x).
_FORMAT_DUNDER = re.compile(r"\{[^{}]*\.__\w+__")
# What honest code does with sys.stdout and sys.stderr: the rest is the kernel's.
_STREAM_API = {
    "write",
    "writelines",
    "flush",
    "isatty",
    "encoding",
    "errors",
    "fileno",
    "name",
    "closed",
    "writable",
    "readable",
}
# IPython line and cell magics that only time or show things.
_HARMLESS_MAGICS = {"time", "timeit", "matplotlib", "pprint", "precision", "who", "whos"}
_MAGIC = re.compile(r"^\s*(%%?|!)\s*([A-Za-z_]\w*)?")


def _magics(source: str) -> tuple[list[str], str]:
    """Find IPython magics and shell escapes in ``source``.

    Returns the reasons, and the source with the harmless magics (``%timeit``...)
    taken out, so that IPython's translation of them (``get_ipython()...``) is not
    flagged in turn.
    """
    reasons = []
    lines = []
    for line in source.splitlines():
        match = _MAGIC.match(line)
        if match:
            kind, name = match.group(1), match.group(2) or ""
            if kind == "!":
                reasons.append(f"{_PROCESS} (shell escape !{name})")
            elif name not in _HARMLESS_MAGICS:
                reasons.append(f"{_KERNEL} (magic {kind}{name})")
            elif kind == "%%":
                continue  # the cell's body is Python
            else:
                indent = line[: len(line) - len(line.lstrip())]
                line = f"{indent}pass"
        lines.append(line)
    return reasons, "\n".join(lines)


def _python_source(source: str) -> str:
    """``source`` as Python, after IPython's own transforms (magics, ``?``, ``!``)."""
    try:
        from IPython.core.inputtransformer2 import TransformerManager

        return str(TransformerManager().transform_cell(source))
    except Exception:
        return source


class _Scanner(ast.NodeVisitor):
    def __init__(
        self, imported: frozenset[str] = frozenset(), bound: frozenset[str] = frozenset()
    ) -> None:
        self.reasons: list[str] = []
        # Names the cell binds by importing (or to an imported name): an attribute of
        # one of them looked up by a computed name (getattr(module, "get_" + "ipython"))
        # or through its namespace (vars(sys)[...]) gets round the name lists.
        self.imported = imported
        # Names the cell assigns itself (a loop's `_i` is not IPython's history).
        self.bound = bound

    def flag(self, reason: str, what: str) -> None:
        text = f"{reason} ({what})"
        if text not in self.reasons:
            self.reasons.append(text)

    def visit_Name(self, node: ast.Name) -> None:
        if node.id in _NAMES:
            self.flag(_NAMES[node.id], node.id)
        elif node.id in _BARE:
            self.flag(_BARE[node.id], node.id)
        elif _HISTORY.fullmatch(node.id) and node.id not in self.bound:
            self.flag(_KERNEL, node.id)
        self.generic_visit(node)

    def visit_Attribute(self, node: ast.Attribute) -> None:
        name = node.attr
        owner = node.value.id if isinstance(node.value, ast.Name) else ""
        if name in _NAMES:
            self.flag(_NAMES[name], name)
        elif (owner, name) in _OF_MODULE:
            self.flag(_OF_MODULE[owner, name], f"{owner}.{name}")
        elif isinstance(node.ctx, ast.Store | ast.Del) and name in _STORED:
            self.flag(_STORED[name], f"assigns {name}")
        root = _root_name(node)
        if isinstance(node.ctx, ast.Store | ast.Del) and root in self.imported:
            self.flag(_PATCHES, f"patches {ast.unparse(node)}")
        if name == "__dict__" and isinstance(node.ctx, ast.Load):
            if isinstance(node.value, ast.Name) and node.value.id in self.imported:
                self.flag(_LOWLEVEL, f"{node.value.id}.__dict__")
            elif _is_type_call(node.value):
                self.flag(_LOWLEVEL, "type(...).__dict__")
        stream = node.value
        if (
            isinstance(stream, ast.Attribute | ast.Name)
            and (stream.attr if isinstance(stream, ast.Attribute) else stream.id)
            in ("stdout", "stderr", "__stdout__", "__stderr__")
            and name not in _STREAM_API
        ):
            self.flag(_KERNEL, ast.unparse(node))
        if name in ("register", "unregister", "callbacks") and _attr_named(node.value, "events"):
            self.flag(_KERNEL, f"events.{name}")
        self.generic_visit(node)

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            self._module(alias.name)
        self.generic_visit(node)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        if node.module and node.level == 0:
            self._module(node.module)
            for alias in node.names:
                self._module(f"{node.module}.{alias.name}")
                if alias.name in _NAMES:
                    self.flag(_NAMES[alias.name], f"imports {alias.name}")
                elif (node.module, alias.name) in _OF_MODULE:
                    self.flag(_OF_MODULE[node.module, alias.name], f"{node.module}.{alias.name}")
        self.generic_visit(node)

    def _module(self, name: str) -> None:
        parts = name.split(".")
        for i in range(len(parts), 0, -1):
            prefix = ".".join(parts[:i])
            if prefix in _MODULES_FLAGGED:
                self.flag(_MODULES_FLAGGED[prefix], f"imports {prefix}")
                return

    def visit_Call(self, node: ast.Call) -> None:
        func = node.func
        name = _call_name(func)
        if name == "type" and isinstance(func, ast.Name) and len(node.args) == 3:
            self.flag(_IDENTITY, "builds a class with type(name, bases, namespace)")
        if name in ("setattr", "__setattr__", "delattr", "getattr") and len(node.args) >= 2:
            attribute, owner = node.args[1], node.args[0]
            computed = not (
                isinstance(attribute, ast.Constant) and isinstance(attribute.value, str)
            )
            module_like = isinstance(owner, ast.Name) and (
                owner.id in self.imported or (owner.id in _BUILTINS and owner.id not in self.bound)
            )
            if computed and module_like:
                self.flag(_DYNAMIC, f"{name}({ast.unparse(owner)}, <computed name>)")
            if isinstance(attribute, ast.Constant) and isinstance(attribute.value, str):
                value = attribute.value
                reason = _STORED.get(value) or _NAMES.get(value)
                if reason is not None and not (name == "getattr" and value in _STORED):
                    self.flag(reason, f"{name}(..., {value!r})")
        if name in ("globals", "vars", "locals") and isinstance(func, ast.Name) and not node.args:
            self.flag(_LOWLEVEL, f"{name}()")
        if name == "vars" and isinstance(func, ast.Name) and len(node.args) == 1:
            target = node.args[0]
            if isinstance(target, ast.Name) and target.id in self.imported:
                self.flag(_LOWLEVEL, f"vars({target.id})")
            elif _is_type_call(target):
                self.flag(_LOWLEVEL, "vars(type(...))")
        if name in ("setattr", "delattr", "__setattr__", "__delattr__") and node.args:
            owner_name = _root_name(node.args[0])
            if owner_name in self.imported:
                self.flag(_PATCHES, f"patches {ast.unparse(node.args[0])} with {name}")
        if name in ("attrgetter", "methodcaller") and node.args:
            first = node.args[0]
            if not (isinstance(first, ast.Constant) and isinstance(first.value, str)):
                self.flag(_DYNAMIC, f"{name}(<computed name>)")
        self.generic_visit(node)

    def visit_Constant(self, node: ast.Constant) -> None:
        value = node.value
        if not isinstance(value, str):
            return
        lowered = value.strip().lower()
        marker = next((m for m in _PATH_MARKERS if m in lowered), None)
        if marker is not None:
            self.flag(_FILES, f"{marker!r} in a string")
        elif lowered.endswith(_PATH_SUFFIXES) and not any(ch.isspace() for ch in lowered):
            self.flag(_FILES, f"the file name {value.strip()!r}")
        elif value in _NAMES or value in _BARE:
            self.flag(_NAMES.get(value) or _BARE[value], f"{value!r} in a string")
        elif value in ("__class__", "__qualname__", "__bases__"):
            self.flag(_IDENTITY, f"{value!r} in a string")
        elif _FORMAT_DUNDER.search(value):
            self.flag(_LOWLEVEL, "attribute lookup in a format string")


def _call_name(func: ast.AST) -> str:
    if isinstance(func, ast.Name):
        return func.id
    if isinstance(func, ast.Attribute):
        return func.attr
    return ""


def _attr_named(node: ast.AST, name: str) -> bool:
    return (isinstance(node, ast.Attribute) and node.attr == name) or (
        isinstance(node, ast.Name) and node.id == name
    )


def _root_name(node: ast.AST) -> str:
    """The name an attribute chain starts from (``a`` for ``a.b.c``), or ""."""
    while isinstance(node, ast.Attribute):
        node = node.value
    return node.id if isinstance(node, ast.Name) else ""


def _is_type_call(node: ast.AST) -> bool:
    return (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name)
        and node.func.id == "type"
        and len(node.args) == 1
    )


def _imported_names(tree: ast.AST) -> frozenset[str]:
    """The names ``tree``'s import statements bind (``import a.b as c`` binds ``c``).

    A name assigned one of them (``m = sys``) counts too.
    """
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import | ast.ImportFrom):
            for alias in node.names:
                names.add(alias.asname or alias.name.split(".")[0])
    aliases = [
        (node.targets, node.value.id)
        for node in ast.walk(tree)
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Name)
    ]
    for _ in range(3):  # a = sys; b = a
        for targets, source in aliases:
            if source in names:
                names.update(t.id for t in targets if isinstance(t, ast.Name))
    return frozenset(names)


def _assigned_names(tree: ast.AST) -> frozenset[str]:
    """Every name ``tree`` stores to (assignments, loop targets, parameters...)."""
    names = {
        node.id
        for node in ast.walk(tree)
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store | ast.Del)
    }
    names.update(node.arg for node in ast.walk(tree) if isinstance(node, ast.arg))
    return frozenset(names)


def _definitions(tree: ast.AST) -> dict[str, str]:
    """Names a cell's top level defines, with what: ``def``/``class`` or the import."""
    defined: dict[str, str] = {}
    for node in getattr(tree, "body", []):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            defined[node.name] = "def"
        elif isinstance(node, ast.Import | ast.ImportFrom):
            module = node.module if isinstance(node, ast.ImportFrom) else ""
            for alias in node.names:
                name = alias.asname or alias.name.split(".")[0]
                defined[name] = f"import {module}:{alias.name}"
    return defined


def _rebindings(tree: ast.AST, used: dict[str, str]) -> list[str]:
    """Names of ``used`` (instructor definitions) that ``tree`` binds to something else.

    Only bindings of the cell's own scope count (a function's local of that name is
    not the test helper; one declared ``global`` is caught by :func:`_globals_declared`).
    Importing the same thing again is fine; a function, a class, an assignment or
    another import under that name is not.
    """
    names: list[str] = []
    mine = _definitions(tree)
    scopes = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda)
    comprehensions = (ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp)
    pending: collections.deque[ast.AST] = collections.deque(ast.iter_child_nodes(tree))
    while pending:
        node = pending.popleft()
        bound: list[str] = []
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            bound = [node.name]
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store | ast.Del):
            bound = [node.id]
        elif isinstance(node, ast.Import | ast.ImportFrom):
            bound = [a.asname or a.name.split(".")[0] for a in node.names]
            bound = [n for n in bound if mine.get(n) != used.get(n)]
        names += [n for n in bound if n in used and n not in names]
        if isinstance(node, scopes):
            # Decorators and defaults run in the cell's scope; the body does not.
            pending += [*getattr(node, "decorator_list", [])]
            arguments = getattr(node, "args", None)
            if isinstance(arguments, ast.arguments):
                pending += [d for d in [*arguments.defaults, *arguments.kw_defaults] if d]
            continue
        if isinstance(node, comprehensions):
            # A walrus in a comprehension binds in the enclosing scope; the loop names do not.
            pending += [
                n.target
                for n in ast.walk(node)
                if isinstance(n, ast.NamedExpr) and isinstance(n.target, ast.Name)
            ]
            continue
        pending += list(ast.iter_child_nodes(node))
    return names


def scan_source(source: str, known: Iterable[str] = ()) -> list[str]:
    """Return why the code cell ``source`` needs review (empty: nothing found).

    A cell that does not parse (even after IPython's transforms) is not flagged: it
    cannot run either.

    Args:
        source: the cell's source.
        known: names earlier cells imported or defined for the tests (``httpx``,
            ``SpyBreaker``): patching one of them (``httpx.Response.json = f``) is
            flagged like patching what the cell imports itself.
    """
    return _scan(source, known)[0]


def _scan(source: str, known: Iterable[str] = ()) -> tuple[list[str], ast.AST | None]:
    """:func:`scan_source`, and the cell's syntax tree (None: it does not parse)."""
    reasons, source = _magics(source)
    try:
        tree = ast.parse(source)  # plain Python: IPython's transforms leave it as it is
    except (SyntaxError, ValueError):
        try:
            tree = ast.parse(_python_source(source))
        except (SyntaxError, ValueError):
            return reasons, None
    assigned = _assigned_names(tree)
    imported = _imported_names(tree) | (frozenset(known) - assigned)
    scanner = _Scanner(imported, assigned)
    scanner.visit(tree)
    return reasons + [r for r in scanner.reasons if r not in reasons], tree


def _parsed(source: str) -> ast.AST | None:
    try:
        return ast.parse(_python_source(_magics(source)[1]))
    except (SyntaxError, ValueError):
        return None


def scan_cells(nb: Any, instructor: Mapping[str, str]) -> list[str]:
    """Return the reasons to review the student's cells of notebook ``nb``.

    Args:
        nb: the notebook as graded.
        instructor: the source of each instructor cell by ``grade_id`` (locked cells
            and tests, as recorded in the gradebook). A cell counts as the
            instructor's only when its id is there and its source is that source;
            every other code cell is the student's and is scanned.

    Returns:
        One reason per finding, naming the cell (``cell impl_circuit_breaker: ...``).
    """
    reasons: list[str] = []
    # What the instructor cells run so far define (test helpers, imports): a student
    # cell after them that rebinds one (def check_state(*a): pass) forges the tests, and
    # so does a function anywhere that declares one global (a thread runs it later).
    used: dict[str, str] = {}
    cells = [c for c in nb.cells if c.get("cell_type") == "code"]
    everything: dict[str, str] = {}
    for cell in cells:
        if _instructors(cell, instructor):
            tree = _parsed(cell.source)
            everything.update(_definitions(tree) if tree is not None else {})
    budget = _SCAN_NOTEBOOK
    for index, cell in enumerate(nb.cells):
        if cell.get("cell_type") != "code":
            continue
        grade_id = cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")
        if _instructors(cell, instructor):
            tree = _parsed(cell.source)
            used.update(_definitions(tree) if tree is not None else {})
            continue
        name = f"cell {grade_id}" if grade_id else f"cell {index + 1} (added)"
        size = len(cell.source.encode(errors="replace"))
        if size > _SCAN_CELL:
            reasons.append(f"{name} is too large to scan ({size >> 10} KiB): read it yourself")
            continue
        if size > budget:
            reasons.append(
                f"{name} is too large to scan (the notebook's {_SCAN_NOTEBOOK >> 10} KiB "
                "are used up)"
            )
            continue
        budget -= size
        found, tree = _scan(cell.source, everything)
        reasons += [f"{name} {reason}" for reason in found]
        if tree is not None:
            rebound = _rebindings(tree, used)
            rebound += [n for n in _globals_declared(tree) if n in everything and n not in rebound]
            reasons += [f"{name} redefines what the tests use ({n})" for n in rebound]
    return reasons


def _instructors(cell: Any, instructor: Mapping[str, str]) -> bool:
    grade_id = cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")
    return grade_id in instructor and instructor[grade_id] == cell.source


def _globals_declared(tree: ast.AST) -> list[str]:
    return [n for node in ast.walk(tree) if isinstance(node, ast.Global) for n in node.names]


# --- the runtime canary -------------------------------------------------------------
@dataclass(frozen=True)
class Canary:
    """Two cells run after the student's, and what each must produce.

    Attributes:
        cells: the code cells to append (no nbgrader metadata: never graded).
        printed: text the first cell must print.
        failure: text the second cell's AssertionError must carry.
    """

    cells: tuple[Any, ...]
    printed: str
    failure: str


def canary_cells(last_test_docstring: str = "") -> Canary:
    """Make the canary cells: random numbers only a kernel that runs them can combine.

    The failing cell looks like a test cell (a docstring, a hidden-test region, an
    assert), so a forgery aimed at test cells hits it too.
    """
    a, b, c = (secrets.randbelow(10**6) + 10**5 for _ in range(3))
    x, y = (secrets.randbelow(10**4) + 1000 for _ in range(2))
    doc = (last_test_docstring or "The grader's own check.").replace('"""', "'''")
    printing = nbformat.v4.new_code_cell(f'"""{doc}"""\nprint({a} * {b} + {c})')
    failing = nbformat.v4.new_code_cell(
        f'"""{doc}"""\n'
        "### BEGIN HIDDEN TESTS\n"
        f'assert {x} * {y} == {x * y + 1}, f"{{{x} * {y}}} is not {x * y + 1}"\n'
        "### END HIDDEN TESTS"
    )
    return Canary((printing, failing), str(a * b + c), f"{x * y} is not {x * y + 1}")


def canary_verdict(canary: Canary, executed: Iterable[Any]) -> list[str]:
    """Return what the executed canary cells got wrong (empty: both as expected).

    A canary cell the grader could not run (the notebook's time budget was spent) is
    not a finding.
    """
    printing, failing = list(executed)
    reasons = []

    def outputs(cell: Any) -> list[Any]:
        return list(cell.get("outputs", []))

    def skipped(cell: Any) -> bool:
        return any(o.get("ename") == "GradingBudgetExceeded" for o in outputs(cell))

    if not skipped(printing):
        text = "".join(
            str(o.get("text", "")) for o in outputs(printing) if o.get("output_type") == "stream"
        )
        if canary.printed not in text.split():
            reasons.append(
                "a check cell the grader added did not print what it computes "
                "(the kernel's input or output is being rewritten)"
            )
    if not skipped(failing):
        errors = [o for o in outputs(failing) if o.get("output_type") == "error"]
        if not any(
            o.get("ename") == "AssertionError" and canary.failure in str(o.get("evalue", ""))
            for o in errors
        ):
            reasons.append(
                "a failing check cell the grader added did not report its failure "
                "(failed tests are being hidden)"
            )
    return reasons


# --- the gradebook ------------------------------------------------------------------
_MANUAL = ("manual_score", "extra_credit", "manual_comment", "flagged")


def _sqlite_path(db_url: str) -> Path | None:
    prefix = "sqlite:///"
    if not db_url.startswith(prefix):
        return None
    path = Path(db_url[len(prefix) :])
    return path if path.is_file() else None


def gradebook_fingerprint(db_url: str) -> dict[str, Any] | None:
    """Read the whole gradebook: a digest per table and the manual fields set.

    Returns None when the gradebook is not an SQLite file (nothing is checked).
    """
    path = _sqlite_path(db_url)
    if path is None:
        return None
    connection = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30)
    try:
        tables = [
            row[0]
            for row in connection.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name"
            )
        ]
        digests: dict[str, str] = {}
        manual: dict[str, int] = {}
        for table in tables:
            quoted = '"' + table.replace('"', '""') + '"'
            digest = hashlib.sha256()
            cursor = connection.execute(f"SELECT * FROM {quoted} ORDER BY rowid")
            columns = [d[0] for d in cursor.description]
            for row in cursor:
                digest.update(repr(row).encode())
                for column, value in zip(columns, row, strict=True):
                    if column in _MANUAL and value not in (None, 0, ""):
                        manual[f"{table}.{column}"] = manual.get(f"{table}.{column}", 0) + 1
            digests[table] = digest.hexdigest()
    finally:
        connection.close()
    return {"tables": digests, "manual": manual}


def gradebook_changes(
    before: Mapping[str, Any] | None, after: Mapping[str, Any] | None
) -> list[str]:
    """Return what changed in the gradebook between two fingerprints (empty: nothing)."""
    if before is None or after is None:
        return []
    reasons = []
    for field, count in sorted(after["manual"].items()):
        if count > before["manual"].get(field, 0):
            reasons.append(f"tampering: {field} was set in the gradebook while the code ran")
    changed = sorted(
        t
        for t in set(before["tables"]) | set(after["tables"])
        if before["tables"].get(t) != after["tables"].get(t)
    )
    if changed and not reasons:
        reasons.append(
            "tampering: the gradebook changed while the code ran (tables: "
            + ", ".join(changed)
            + ")"
        )
    return reasons
