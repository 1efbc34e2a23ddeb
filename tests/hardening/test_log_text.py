"""Minimisation in logs (issue 16): no message text in any log line, at any level, unless logging.include_text is
set. The real python-telegram-bot client against the fake Bot API logs its calls at DEBUG; runbot keeps it quiet."""

# ruff: noqa: F811  (the Telegram adapter tests' fixtures are imported by name, as pytest finds them)

from __future__ import annotations

import ast
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bot import logsafety
from tests.adapters.fake_telegram import FakeBotAPI
from tests.adapters.test_telegram import (  # noqa: F401  (fixtures)
    USER,
    RecordingEngine,
    _private_turn,
    adapter,
    clock,
    engine,
    knowledge,
    runtime,
)

ROOT = Path(__file__).resolve().parents[2]
#: a question nobody else sends, so finding it in a log line means the text leaked
SECRET = "why does my zyxwv lower back hurt after the quokka hill runs"
LOG_CALLS = {"debug", "info", "warning", "error", "exception", "critical", "log"}
TEXT_NAMES = {"text", "stripped", "question", "norm", "chunk", "payload", "body", "content"}


@pytest.fixture
def restore_levels() -> Iterator[None]:
    saved = {name: logging.getLogger(name).level for name in logsafety.TEXT_AT_DEBUG}
    yield
    for name, level in saved.items():
        logging.getLogger(name).setLevel(level)


async def _converse(api: FakeBotAPI, engine: RecordingEngine) -> None:
    await _private_turn(api, engine, USER, SECRET)


async def test_no_message_text_at_debug_without_include_text(
    api: FakeBotAPI, adapter: Any, engine: RecordingEngine, caplog: pytest.LogCaptureFixture, restore_levels: None
) -> None:
    caplog.set_level(logging.DEBUG)
    logsafety.apply(include_text=False)
    await _converse(api, engine)
    assert engine.texts() == [SECRET]
    assert caplog.records, "the run logs something"
    leaked = [r.name for r in caplog.records if "zyxwv" in r.getMessage()]
    assert leaked == []


async def test_include_text_lets_the_libraries_log_it(
    api: FakeBotAPI, adapter: Any, engine: RecordingEngine, caplog: pytest.LogCaptureFixture, restore_levels: None
) -> None:
    """The control: the same conversation with include_text does log the text (so the test above can fail)."""
    caplog.set_level(logging.DEBUG)
    logsafety.apply(include_text=True)
    await _converse(api, engine)
    assert any("zyxwv" in r.getMessage() for r in caplog.records)


def test_runbots_own_log_calls_pass_no_message_text() -> None:
    """Every log call under bot/: no argument is a message text (``msg.text``, ``text``, ``stripped`` ...)."""
    found = []
    for path in sorted((ROOT / "bot").rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
                continue
            if node.func.attr not in LOG_CALLS or not isinstance(node.func.value, ast.Name):
                continue
            if node.func.value.id not in ("log", "logger", "logging", "_LOGGER"):
                continue
            for arg in node.args[1:]:
                for sub in ast.walk(arg):
                    name = sub.attr if isinstance(sub, ast.Attribute) else sub.id if isinstance(sub, ast.Name) else ""
                    if name in TEXT_NAMES:
                        found.append(f"{path.relative_to(ROOT)}:{node.lineno}: {name}")
    assert found == []
