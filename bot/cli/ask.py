"""`runbot ask`: one message (--json) or JSON lines from stdin (--jsonl), answered as JSON in input order."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
import threading
from collections import deque
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from bot.config import Settings

log = logging.getLogger("runbot")


def ask_result(outcome: Any) -> dict[str, Any]:
    return {
        "faq_id": outcome.faq_id,
        "escalation": outcome.escalation.level if outcome.escalation else "none",
        "category": outcome.escalation.category if outcome.escalation else None,
        "reply": "\n\n".join(r.text for r in outcome.replies),
        "confidence": round(float(outcome.confidence), 1),
        "alternatives": list(outcome.alternatives),
        "kind": outcome.kind,
        "safety_check": (
            None
            if outcome.safety_check is None
            else {
                "level": outcome.safety_check.level,
                "category": outcome.safety_check.category,
                "question": outcome.safety_check.question,
            }
        ),
        "choices": [{"label": c.label, "payload": c.payload} for r in outcome.replies for c in r.choices],
    }


async def ask(args: argparse.Namespace, settings: Settings) -> int:
    from bot.bootstrap import build
    from bot.core.engine import EngineOptions

    options = EngineOptions(first_notice=False, rate_limit=False)
    runtime = build(
        settings, knowledge_path=args.knowledge, db_path=args.db or ":memory:", options=options, lazy_embeddings=True
    )
    async with runtime:
        engine = runtime.engine
        if args.json is not None:
            outcome = await engine.handle(cli_message(0, args.json, args.listen))
            print(json.dumps(ask_result(outcome), ensure_ascii=False))
            return 0
        lines = stdin_lines()
        n = 0
        out = sys.stdout
        while (line := await lines.get()) is not None:
            if not line.strip():
                continue
            n += 1
            out.write(json.dumps(await ask_line(engine, n, line, args.listen), ensure_ascii=False) + "\n")
            if lines.empty():
                out.flush()  # a caller feeding one line at a time gets each answer at once
        out.flush()
    return 0


async def ask_line(engine: Any, n: int, line: str, listen: bool) -> dict[str, Any]:
    """One `ask --jsonl` line: its answer, or a one-line error for this line alone (the batch goes on)."""
    if line is _TOO_LONG:
        return {"error": f"line {n}: longer than {MAX_LINE_CHARS} characters"}
    try:
        row = json.loads(line)
        text = row["text"] if isinstance(row, dict) else None
        if not isinstance(text, str):
            raise ValueError
    except (ValueError, KeyError, RecursionError):  # RecursionError: thousands of nested brackets
        return {"error": f"line {n}: expected a JSON object with a \"text\" string"}
    try:
        outcome = await engine.handle(cli_message(n, text, listen))
    except Exception as exc:
        log.error("line %d could not be answered", n, exc_info=True)
        return {"error": f"line {n}: could not be answered ({type(exc).__name__})"}
    return ask_result(outcome)


def cli_message(n: int, text: str, listen: bool) -> Any:
    from bot.core.messages import IncomingMessage

    if listen:  # overheard in a group's listen channel, not addressed to the bot
        return IncomingMessage("cli", f"cli-{n}", "cli-group", text=text, is_private=False, listen_only=True)
    return IncomingMessage("cli", f"cli-{n}", f"cli-{n}", text=text)


#: `ask --jsonl`: lines read ahead of the answers at most (the reader waits), and the longest line read whole
MAX_QUEUED_LINES = 1000
MAX_LINE_CHARS = 100_000
_TOO_LONG = "\0 line too long \0"


class Lines:
    """Lines of stdin, read by a thread, at most MAX_QUEUED_LINES ahead of the reader of ``get()`` (the thread waits
    for room: a fast producer cannot fill memory); None marks the end. The thread wakes the event loop only when it
    was waiting on an empty queue, and once full it waits until half is read before reading on: a thread round trip
    per line cost about a fifth of a batch's time."""

    def __init__(self, loop: asyncio.AbstractEventLoop, limit: int = MAX_QUEUED_LINES) -> None:
        self._loop = loop
        self._limit = limit
        self._items: deque[str | None] = deque()
        self._lock = threading.Condition()
        self._ready = asyncio.Event()  # set (from the thread, through the loop) when an item arrives in an empty queue

    def empty(self) -> bool:
        return not self._items

    async def get(self) -> str | None:
        while True:
            with self._lock:
                if self._items:
                    item = self._items.popleft()
                    if len(self._items) <= self._limit // 2:
                        self._lock.notify()
                    return item
                self._ready.clear()
            await self._ready.wait()

    def put(self, item: str | None) -> None:
        """From the reader thread: waits while MAX_QUEUED_LINES are unread, until half of them are."""
        with self._lock:
            if item is not None and len(self._items) >= self._limit:
                self._lock.wait_for(lambda: len(self._items) <= self._limit // 2)
            was_empty = not self._items
            self._items.append(item)
        if was_empty:
            try:
                self._loop.call_soon_threadsafe(self._ready.set)
            except RuntimeError:  # the loop is gone: nobody is reading any more
                pass

    def read(self, stream: Any) -> None:
        try:
            if hasattr(stream, "reconfigure"):
                stream.reconfigure(errors="replace")  # a stray invalid byte is one bad line, not the end
            while line := stream.readline(MAX_LINE_CHARS + 1):
                if len(line) > MAX_LINE_CHARS and not line.endswith("\n"):
                    while (rest := stream.readline(MAX_LINE_CHARS)) and not rest.endswith("\n"):
                        pass  # skip the rest of the over-long line without keeping it
                    line = _TOO_LONG
                self.put(line)
        except (OSError, ValueError, UnicodeDecodeError) as exc:
            self.put(json.dumps({"unreadable": str(exc)}))
        finally:
            self.put(None)


def stdin_lines(stream: Any = None) -> Lines:
    lines = Lines(asyncio.get_running_loop())
    source = sys.stdin if stream is None else stream
    threading.Thread(target=lines.read, args=(source,), name="stdin", daemon=True).start()
    return lines
