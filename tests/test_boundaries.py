"""House rules that keep the core platform-independent."""

from __future__ import annotations

import ast
import subprocess
import sys

from support import ROOT


def test_no_platform_imports_outside_adapters() -> None:
    offenders = []
    for path in (ROOT / "bot").rglob("*.py"):
        if "adapters" in path.relative_to(ROOT / "bot").parts:
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module]
            for name in names:
                if name.split(".")[0] in ("discord", "telegram"):
                    offenders.append(f"{path.relative_to(ROOT)}: {name}")
    assert offenders == []


def _imports(source: str, package: str) -> list[str]:
    """Every module a source file imports, anywhere in it (absolute names; relative ones resolved in ``package``)."""
    found: list[str] = []
    for node in ast.walk(ast.parse(source)):
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


def _forbidden_in_core(source: str, package: str = "bot.core") -> list[str]:
    forbidden = ("bot.storage", "sqlite3", "aiosqlite", "asyncpg")
    return [n for n in _imports(source, package) if any(n == f or n.startswith(f + ".") for f in forbidden)]


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


def test_one_shot_ask_does_not_import_platform_libraries() -> None:
    code = (
        "import sys, runpy; sys.argv=['runbot','ask','--json','hi'];\n"
        "try:\n    runpy.run_module('bot', run_name='__main__')\nexcept SystemExit:\n    pass\n"
        "print('LOADED', sorted(m for m in ('discord','telegram') if m in sys.modules), file=sys.stderr)"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert "LOADED []" in res.stderr, res.stderr
