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


def test_one_shot_ask_does_not_import_platform_libraries() -> None:
    code = (
        "import sys, runpy; sys.argv=['runbot','ask','--json','hi'];\n"
        "try:\n    runpy.run_module('bot', run_name='__main__')\nexcept SystemExit:\n    pass\n"
        "print('LOADED', sorted(m for m in ('discord','telegram') if m in sys.modules), file=sys.stderr)"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert "LOADED []" in res.stderr, res.stderr
