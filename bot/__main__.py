"""The `runbot` command: chat, ask, check, eval, run, report, followups, faq."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import sys
import threading
from collections.abc import Sequence
from importlib.util import find_spec
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from bot.config import Settings

#: what every command needs (pyproject's dependencies; the platform libraries are checked when a platform starts)
CORE_MODULES = {"yaml": "pyyaml", "rapidfuzz": "rapidfuzz", "aiosqlite": "aiosqlite"}

log = logging.getLogger("runbot")


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="runbot", description="A chat-bot for running clubs: back pain after running.")
    p.add_argument("--config", metavar="FILE", help="config file (default: ./config.yaml if it exists)")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")

    def knowledge_arg(sp: argparse.ArgumentParser) -> None:
        sp.add_argument("--knowledge", metavar="DIR", help="knowledge folder (default: from config)")

    sp = sub.add_parser("chat", help="talk to the bot in this terminal")
    knowledge_arg(sp)
    sp.add_argument("--db", metavar="FILE", help="database file (default: from config)")

    sp = sub.add_parser("ask", help="answer one message (or JSON lines from stdin) as JSON")
    knowledge_arg(sp)
    sp.add_argument("--db", metavar="FILE", help="use this database file instead of an in-memory one")
    mode = sp.add_mutually_exclusive_group(required=True)
    mode.add_argument("--json", metavar="TEXT", help="one message; prints one JSON object")
    mode.add_argument("--jsonl", action="store_true", help='read {"text": ...} lines from stdin, write one per line')
    sp.add_argument("--listen", action="store_true", help="treat each message as overheard in a listen channel")

    sp = sub.add_parser("check", help="validate a knowledge folder (exit 1 on problems)")
    sp.add_argument("dir", nargs="?", help="knowledge folder (default: from config)")
    sp.add_argument("--strict", action="store_true", help="treat warnings as failures")

    sp = sub.add_parser("explain", help="show how the red-flag check reads a message")
    knowledge_arg(sp)
    sp.add_argument("text", help="the message")

    sp = sub.add_parser("train-checks", help="fit the learned red-flag check on dev sets (never on a blind set)")
    knowledge_arg(sp)
    sp.add_argument("files", nargs="+", help="JSON lines with text, escalation and category (dev sets)")
    sp.add_argument("--out", help="where to write the model (default: KNOWLEDGE/red_flags/learned-check.json)")

    sp = sub.add_parser("eval", help="measure FAQ accuracy and red-flag recall on a JSONL file")
    knowledge_arg(sp)
    sp.add_argument("file", help="JSON lines with text and faq_id and/or escalation")
    sp.add_argument("--min-accuracy", type=float, metavar="X", help="fail below this FAQ top-1 accuracy (0-1)")
    sp.add_argument("--min-rejection", type=float, metavar="X", help="fail below this out-of-scope rejection (0-1)")
    sp.add_argument("--min-emergency-recall", type=float, metavar="X", help="fail below this emergency recall")
    sp.add_argument("--min-urgent-recall", type=float, metavar="X", help="fail below this urgent recall")
    sp.add_argument("--max-false-escalation", type=float, metavar="X", help="fail above this alarm rate on none lines")
    sp.add_argument("--max-check-rate", type=float, metavar="X", help="fail above this question rate on none lines")
    sp.add_argument("--listen", action="store_true", help="treat each line as overheard in a listen channel")
    sp.add_argument("--quiet", action="store_true", help="don't list the misses")

    sp = sub.add_parser("privacy-notice", help="print docs/privacy-notice.md filled in from the config")
    knowledge_arg(sp)

    sp = sub.add_parser("run", help="run the bot on the enabled platforms")
    sp.add_argument("--discord", action="store_true", help="start Discord only (with --telegram: both)")
    sp.add_argument("--telegram", action="store_true", help="start Telegram only (with --discord: both)")

    sp = sub.add_parser("report", help="moderator reports from the database")
    sp.add_argument("which", choices=["unanswered", "stats"])
    sp.add_argument("--since", default="30d", help="period, e.g. 7d, 24h (default 30d)")
    sp.add_argument("--db", metavar="FILE", help="database file (default: from config)")

    sp = sub.add_parser("faq", help="edit the FAQ from the terminal")
    faq_sub = sp.add_subparsers(dest="faq_command", metavar="ACTION", required=True)
    add = faq_sub.add_parser("add", help="add an entry interactively (asks for file, id, questions, answer, source)")
    knowledge_arg(add)

    sp = sub.add_parser("followups", help="list follow-ups or send the due ones")
    sp.add_argument("action", choices=["list", "run-due"])
    sp.add_argument("--db", metavar="FILE", help="database file (default: from config)")
    knowledge_arg(sp)
    # every command also takes --config after its name ("runbot run --config FILE"); SUPPRESS keeps the one given
    # before the command when there is none after it
    for command in sub.choices.values():
        command.add_argument("--config", metavar="FILE", default=argparse.SUPPRESS, help="config file")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command is None:
        _parser().print_help()
        return 2
    missing = [package for module, package in CORE_MODULES.items() if find_spec(module) is None]
    if missing:
        print(
            f"runbot: missing package(s) {', '.join(missing)} for {sys.executable}; install runbot into this "
            "Python first, e.g. `python3 -m venv .venv && .venv/bin/pip install -e .` (see the README)",
            file=sys.stderr,
        )
        return 2
    from bot.config import ConfigError, load_settings

    try:
        settings = load_settings(args.config)
    except ConfigError as exc:  # a wrong value or key: FILE:LINE: message, exit 1 (2 is for wrong command lines)
        print(f"runbot: {exc}", file=sys.stderr)
        return 1
    logging.basicConfig(
        level=getattr(logging, settings.logging.level),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    if args.command in ("ask", "eval", "check"):
        logging.getLogger().setLevel(logging.WARNING)
    # message texts are health data: the libraries that log them at DEBUG stay at INFO unless include_text is set
    from bot import logsafety

    logsafety.apply(settings.logging.include_text)
    for warning in settings.warnings:
        log.warning(warning)
    handler = {
        "chat": _chat,
        "ask": _ask,
        "check": _check,
        "eval": _eval,
        "explain": _explain,
        "privacy-notice": _privacy_notice,
        "train-checks": _train_checks,
        "run": _run,
        "report": _report,
        "followups": _followups,
        "faq": _faq,
    }[args.command]
    from bot.core.knowledge import KnowledgeError
    from bot.core.ports import StartupError

    try:
        return asyncio.run(handler(args, settings))
    except (KnowledgeError, StartupError) as exc:  # StartupError: e.g. a database file that cannot be used
        print(f"runbot: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # `runbot eval ... | head`: the reader left; say nothing more, as other tools do
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0


async def _chat(args: argparse.Namespace, settings: Settings) -> int:
    from bot.adapters.console import ConsoleAdapter
    from bot.bootstrap import build
    from bot.core.engine import EngineOptions

    # one local user at a keyboard (or a pasted script): flood control is for public chats
    options = EngineOptions(rate_limit=False)
    runtime = build(settings, knowledge_path=args.knowledge, db_path=args.db, options=options)
    async with runtime:
        console = ConsoleAdapter(runtime.engine)
        runtime.add_adapter(console)
        scheduler = asyncio.create_task(runtime.scheduler.run(), name="followups")
        try:
            await console.chat()
        finally:
            runtime.scheduler.stop()
            await scheduler
    return 0


def _ask_result(outcome: Any) -> dict[str, Any]:
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


async def _ask(args: argparse.Namespace, settings: Settings) -> int:
    from bot.bootstrap import build
    from bot.core.engine import EngineOptions

    options = EngineOptions(first_notice=False, rate_limit=False)
    runtime = build(settings, knowledge_path=args.knowledge, db_path=args.db or ":memory:", options=options)
    async with runtime:
        engine = runtime.engine
        if args.json is not None:
            outcome = await engine.handle(_cli_message(0, args.json, args.listen))
            print(json.dumps(_ask_result(outcome), ensure_ascii=False))
            return 0
        lines = _stdin_lines()
        n = 0
        out = sys.stdout
        while (line := await lines.get()) is not None:
            if not line.strip():
                continue
            n += 1
            out.write(json.dumps(await _ask_line(engine, n, line, args.listen), ensure_ascii=False) + "\n")
            if lines.empty():
                out.flush()  # a caller feeding one line at a time gets each answer at once
        out.flush()
    return 0


async def _ask_line(engine: Any, n: int, line: str, listen: bool) -> dict[str, Any]:
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
        outcome = await engine.handle(_cli_message(n, text, listen))
    except Exception as exc:
        log.error("line %d could not be answered", n, exc_info=True)
        return {"error": f"line {n}: could not be answered ({type(exc).__name__})"}
    return _ask_result(outcome)


def _cli_message(n: int, text: str, listen: bool) -> Any:
    from bot.core.messages import IncomingMessage

    if listen:  # overheard in a group's listen channel, not addressed to the bot
        return IncomingMessage("cli", f"cli-{n}", "cli-group", text=text, is_private=False, listen_only=True)
    return IncomingMessage("cli", f"cli-{n}", f"cli-{n}", text=text)


#: `ask --jsonl`: lines read ahead of the answers at most (the reader waits), and the longest line read whole
MAX_QUEUED_LINES = 1000
MAX_LINE_CHARS = 100_000
_TOO_LONG = "\0 line too long \0"


class _Lines:
    """Lines of stdin, read by a thread without a loop round trip per line, at most MAX_QUEUED_LINES ahead of the
    reader of ``get()`` (the thread waits for room: a fast producer cannot fill memory); None marks the end."""

    def __init__(self, loop: asyncio.AbstractEventLoop, limit: int = MAX_QUEUED_LINES) -> None:
        self._loop = loop
        self._queue: asyncio.Queue[str | None] = asyncio.Queue()
        self._room = threading.BoundedSemaphore(limit)

    def empty(self) -> bool:
        return self._queue.empty()

    async def get(self) -> str | None:
        item = await self._queue.get()
        if item is not None:
            self._room.release()
        return item

    def put(self, item: str | None) -> None:
        """From the reader thread: waits while MAX_QUEUED_LINES are unread."""
        if item is not None:
            self._room.acquire()
        try:
            self._loop.call_soon_threadsafe(self._queue.put_nowait, item)
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


def _stdin_lines(stream: Any = None) -> _Lines:
    lines = _Lines(asyncio.get_running_loop())
    source = sys.stdin if stream is None else stream
    threading.Thread(target=lines.read, args=(source,), name="stdin", daemon=True).start()
    return lines


async def _check(args: argparse.Namespace, settings: Settings) -> int:
    from bot.lint import check_folder

    folder = Path(args.dir or settings.knowledge.path)
    problems = await asyncio.to_thread(check_folder, folder, settings)
    errors = [p for p in problems if p.severity == "error"]
    warnings = [p for p in problems if p.severity != "error"]
    for p in problems:
        print(p)
    if errors or (args.strict and warnings):
        print(f"{folder}: {len(errors)} error(s), {len(warnings)} warning(s)", file=sys.stderr)
        return 1
    print(f"{folder}: OK ({len(warnings)} warning(s))")
    return 0


async def _privacy_notice(args: argparse.Namespace, settings: Settings) -> int:
    from bot.core.knowledge import load_knowledge
    from bot.privacy_notice import NoticeError, render

    k = await asyncio.to_thread(load_knowledge, args.knowledge or settings.knowledge.path)
    try:
        print(render(settings, k.consent))
    except NoticeError as exc:
        print(f"runbot: {exc}", file=sys.stderr)
        return 1
    if not (settings.privacy.operator_name and settings.privacy.operator_contact):
        print("runbot: set privacy.operator_name and privacy.operator_contact before publishing this", file=sys.stderr)
    return 0


async def _explain(args: argparse.Namespace, settings: Settings) -> int:
    from bot.core.knowledge import load_knowledge

    k = await asyncio.to_thread(load_knowledge, args.knowledge or settings.knowledge.path)
    ex = k.red_flags.explain(args.text)
    print("terms found:" if ex.terms else "terms found: none")
    for t in ex.terms:
        state = f"cancelled: {t.cancelled}" if t.cancelled else "counts"
        print(f"  {t.concept}: {t.words!r} ({state})")
    for tier, hits in (("alarm", ex.assessment.alarms), ("check", ex.assessment.checks)):
        for h in hits:
            why = f"rule at {h.file}:{h.rule_line}"
            if h.chance is not None and not h.rule_line:
                why = f"learned check ({h.file}), chance {h.chance}"
            elif h.chance is not None:
                why += f", asked instead: the learned check puts the chance at {h.chance}"
            print(f"{tier}: {h.category} ({h.level}), {why}, words {list(h.words)}")
    print(f"tier: {ex.tier}")
    return 0


async def _train_checks(args: argparse.Namespace, settings: Settings) -> int:
    from bot.core.knowledge import load_knowledge
    from bot.core.red_flags.learned import MODEL_FILE
    from bot.train_checks import summary, train, training_set, write_model

    root = Path(args.knowledge or settings.knowledge.path)
    k = await asyncio.to_thread(load_knowledge, root)
    try:
        data = await asyncio.to_thread(training_set, k, [Path(f) for f in args.files])
    except (OSError, ValueError) as exc:
        print(f"runbot: {exc}", file=sys.stderr)
        return 1
    model = await asyncio.to_thread(train, data)
    out = Path(args.out) if args.out else root / "red_flags" / MODEL_FILE
    await asyncio.to_thread(write_model, model, out)
    for line in summary(model, data):
        print(line)
    print(f"wrote {out}")
    return 0


async def _eval(args: argparse.Namespace, settings: Settings) -> int:
    from bot.bootstrap import build
    from bot.core.engine import EngineOptions
    from bot.evaluate import evaluate, read_jsonl

    try:
        rows = read_jsonl(Path(args.file))
    except (OSError, ValueError) as exc:
        print(f"runbot: {exc}", file=sys.stderr)
        return 2
    options = EngineOptions(first_notice=False, rate_limit=False, record_unanswered=False)
    runtime = build(settings, knowledge_path=args.knowledge, db_path=":memory:", options=options)
    async with runtime:
        report = await evaluate(runtime.engine, rows, listen=args.listen)
    lines = report.lines()
    if args.quiet:
        lines = [line for line in lines if not line.startswith("  ")]
    print("\n".join(lines))
    failed = []
    checks = [
        (args.min_accuracy, report.faq_accuracy, "FAQ accuracy", 1),
        (args.min_rejection, report.oos_rejection, "out-of-scope rejection", 1),
        (args.min_emergency_recall, report.recall("emergency"), "emergency recall", 1),
        (args.min_urgent_recall, report.recall("urgent"), "urgent recall", 1),
        (args.max_false_escalation, report.false_escalation, "false escalation rate", -1),
        (args.max_check_rate, report.check_rate, "safety question rate", -1),
    ]
    for limit, value, name, sign in checks:
        if limit is None or value is None:
            continue
        if (sign > 0 and value < limit) or (sign < 0 and value > limit):
            failed.append(f"{name} {value:.3f} {'<' if sign > 0 else '>'} {limit}")
    if failed:
        print("FAILED: " + "; ".join(failed), file=sys.stderr)
        return 1
    return 0


async def _run(args: argparse.Namespace, settings: Settings) -> int:
    from bot.app import App, StartupError

    platforms = {p for p in ("discord", "telegram") if getattr(args, p)} or None
    try:
        return await App(settings, platforms=platforms).run()
    except StartupError as exc:
        print(f"runbot: {exc}", file=sys.stderr)
        return 1


async def _report(args: argparse.Namespace, settings: Settings) -> int:
    from bot.core.ports import SystemClock
    from bot.core.reports import describe_period, parse_period, stats_report, unanswered_report
    from bot.storage import make_store

    try:
        period = parse_period(args.since)
    except ValueError as exc:
        print(f"runbot: {exc}", file=sys.stderr)
        return 2
    db = Path(args.db or settings.database.path)
    if not await asyncio.to_thread(db.exists):
        print(f"runbot: database {db} not found", file=sys.stderr)
        return 2
    since = SystemClock().now() - period
    async with make_store(db) as store:
        if args.which == "unanswered":
            print(unanswered_report(await store.unanswered(since=since), period=describe_period(args.since)))
        else:
            print(stats_report(await store.stats(since=since), describe_period(args.since)))
    return 0


async def _faq(args: argparse.Namespace, settings: Settings) -> int:
    from bot.faq_add import run_interactive

    folder = Path(args.knowledge or settings.knowledge.path)
    # the conversation blocks on stdin, so it runs in a thread and the loop stays free
    return await asyncio.to_thread(run_interactive, folder, settings)


async def _followups(args: argparse.Namespace, settings: Settings) -> int:
    from bot.core.followups import humanize_delta
    from bot.core.ports import SystemClock

    clock = SystemClock()
    if args.action == "list":
        from bot.storage import make_store

        async with make_store(args.db or settings.database.path) as store:
            rows = await store.list_followups()
            if not rows:
                print("No pending follow-ups.")
            for f in rows:
                when = humanize_delta(f.due_at - clock.now()) if f.due_at > clock.now() else "due now"
                print(f"#{f.id} {f.platform} user {f.platform_user_id} {f.state} {f.due_at:%Y-%m-%d %H:%M} UTC "
                      f"({when}), check-ins so far {f.checkins}, attempts {f.attempts}")
        return 0
    from bot.app import App, StartupError

    app = App(settings, platforms=None, db_path=args.db, knowledge_path=args.knowledge)
    try:
        sent = await app.run_due_once()
    except StartupError as exc:
        print(f"runbot: {exc}", file=sys.stderr)
        return 1
    print(f"Sent {sent} due check-in(s).")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
