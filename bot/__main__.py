"""The `runbot` command: chat, ask, check, eval, run, report, followups, faq, db."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from collections.abc import Sequence
from importlib.util import find_spec
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    pass

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

    sp = sub.add_parser("train-faq", help="fit the FAQ model on the FAQ and dev sets (never on a blind set)")
    knowledge_arg(sp)
    sp.add_argument("files", nargs="+", help="JSON lines with text and faq_id (dev sets)")
    sp.add_argument("--out", help="where to write the model (default: KNOWLEDGE/faq-model.json)")

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

    sp = sub.add_parser("db", help="the database: upgrade its schema to this version of runbot")
    sp.add_argument("action", choices=["upgrade"])
    sp.add_argument("--db", metavar="URL", help="database file or url (default: database.url from config)")

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
    from bot.cli import ask, tools

    handler = {
        "chat": tools.chat,
        "ask": ask.ask,
        "check": tools.check,
        "eval": tools.evaluation,
        "explain": tools.explain,
        "privacy-notice": tools.privacy_notice,
        "train-checks": tools.train_checks,
        "train-faq": tools.train_faq,
        "run": tools.run,
        "report": tools.report,
        "followups": tools.followups,
        "faq": tools.faq,
        "db": tools.db,
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


if __name__ == "__main__":
    raise SystemExit(main())
