"""House rules that keep the core platform-independent."""

from __future__ import annotations

import ast
import functools
import subprocess
import sys

import pytest
from support import ROOT


def test_no_platform_imports_outside_adapters() -> None:
    offenders = []
    for path in (ROOT / "bot").rglob("*.py"):
        if "adapters" in path.relative_to(ROOT / "bot").parts:
            continue
        for node in ast.walk(_tree(path.read_text(encoding="utf-8"))):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module]
            for name in names:
                if name.split(".")[0] in ("discord", "telegram"):
                    offenders.append(f"{path.relative_to(ROOT)}: {name}")
    assert offenders == []


@functools.cache
def _tree(source: str) -> ast.Module:
    """A source file parsed once for all the checks here (they only read the tree)."""
    return ast.parse(source)


def _imports(source: str, package: str) -> list[str]:
    """Every module a source file imports, anywhere in it (absolute names; relative ones resolved in ``package``)."""
    found: list[str] = []
    for node in ast.walk(_tree(source)):
        if isinstance(node, ast.Import):
            found += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                parts = parts[: len(parts) - node.level + 1]
                base = ".".join([*parts, base] if base else parts)
            found += [base] + [f"{base}.{a.name}" for a in node.names]
    return found


#: what nothing under bot/core may import: the layers above it (settings files, wiring, platforms, operations),
#: a store implementation or a database driver
ABOVE_THE_CORE = ("bot.config", "bot.bootstrap", "bot.app", "bot.adapters", "bot.ops", "bot.__main__")
STORAGE = ("bot.storage", "sqlite3", "aiosqlite", "asyncpg")


def _forbidden_in_core(source: str, package: str = "bot.core", forbidden: tuple[str, ...] = STORAGE) -> list[str]:
    return [n for n in _imports(source, package) if any(n == f or n.startswith(f + ".") for f in forbidden)]


def _modules() -> dict[str, tuple[str, str]]:
    """Every module under bot/: name -> (source, the package its relative imports start from)."""
    found = {}
    for path in sorted((ROOT / "bot").rglob("*.py")):
        parts = path.relative_to(ROOT).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        package = name if parts[-1] == "__init__" else ".".join(parts[:-1])
        found[name] = (path.read_text(encoding="utf-8"), package)
    return found


def import_graph(modules: dict[str, tuple[str, str]]) -> dict[str, set[str]]:
    """Which bot module imports which, counting every import in the file: late ones inside functions and the ones
    only type checkers read (a design circle is a circle even when Python never runs into it)."""
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, (source, package) in modules.items():
        for target in _imports(source, package):
            while target and target not in modules:  # "from bot.core.x import Name" -> the module bot.core.x
                target = target.rpartition(".")[0]
            if target and target != name:
                graph[name].add(target)
    return graph


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The import circles (strongly connected groups of two or more modules), Tarjan's algorithm."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph[node]):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_no_import_circles_in_bot() -> None:
    assert circles(import_graph(_modules())) == []


def test_the_circle_check_finds_a_circle_through_a_late_or_type_only_import() -> None:
    modules = {
        "bot.core.engine": ("from bot.core.commands import Commands\n", "bot.core"),
        "bot.core.commands": ("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from .engine import Engine\n",
                              "bot.core"),
        "bot.core.text": ("def f():\n    from bot.core import engine\n", "bot.core"),
    }
    assert circles(import_graph(modules)) == [["bot.core.commands", "bot.core.engine"]]


def test_the_core_imports_nothing_above_it() -> None:
    """bot/core gets its settings, store, clock and platforms passed in; it never reaches up for them (nor for any
    other bot module outside bot/core)."""
    offenders = []
    for name, (source, package) in _modules().items():
        if name.startswith("bot.core"):
            offenders += [f"{name}: {n}" for n in _forbidden_in_core(source, package, ABOVE_THE_CORE)]
            offenders += [f"{name}: {n}" for n in _imports(source, package)
                          if n.startswith("bot.") and not n.startswith("bot.core")]
    assert offenders == []


def test_the_core_imports_no_concrete_store() -> None:
    """bot/core talks to the database only through the Store port (bot/core/store.py): no store implementation and
    no database driver, late imports included."""
    offenders = []
    for path in sorted((ROOT / "bot" / "core").rglob("*.py")):
        package = ".".join(path.relative_to(ROOT).parts[:-1])
        offenders += [f"{path.relative_to(ROOT)}: {name}" for name in _forbidden_in_core(path.read_text(), package)]
    assert offenders == []


def test_the_import_check_sees_late_and_relative_imports() -> None:
    source = "def f():\n    import sqlite3\n    from ..storage import sqlite\n    from .store import Store\n"
    assert _forbidden_in_core(source) == ["sqlite3", "bot.storage", "bot.storage.sqlite"]


@pytest.mark.slow
def test_one_shot_ask_does_not_import_platform_libraries() -> None:
    code = (
        "import sys, runpy; sys.argv=['runbot','ask','--json','hi'];\n"
        "try:\n    runpy.run_module('bot', run_name='__main__')\nexcept SystemExit:\n    pass\n"
        "print('LOADED', sorted(m for m in ('discord','telegram') if m in sys.modules), file=sys.stderr)"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert "LOADED []" in res.stderr, res.stderr


def _too_long(folder: str, limit: int) -> list[str]:
    paths = sorted((ROOT / folder).rglob("*.py"))
    assert paths, folder
    lengths = {p.relative_to(ROOT).as_posix(): len(p.read_text(encoding="utf-8").splitlines()) for p in paths}
    return [f"{name}: {n} lines" for name, n in lengths.items() if n > limit]


def test_no_module_in_bot_is_over_400_lines() -> None:
    assert _too_long("bot", 400) == []


def test_no_red_flag_module_is_over_350_lines() -> None:
    assert _too_long("bot/core/red_flags", 350) == []
