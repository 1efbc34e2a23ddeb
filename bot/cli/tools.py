"""The `runbot` commands other than `ask`: chat, check, privacy-notice, explain, train-checks, train-faq, eval, run,
report, faq, followups, db. Each imports what it needs when it runs (a one-shot command loads no platform library)."""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from bot.config import Settings


async def chat(args: argparse.Namespace, settings: Settings) -> int:
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


def embeddings_line(settings: Settings) -> str:
    """Whether the FAQ matcher re-ranks with the embeddings here, and why not when it doesn't."""
    from bot.core.embedding import availability

    found = availability()
    if not found.ok:
        return f"embeddings: off, the lexical matcher alone ({found.reason})"
    if not settings.matching.embeddings:
        return "embeddings: installed but off (matching.embeddings: false)"
    return f"embeddings: on ({found.reason}); phrasings and examples were checked with and without them"


async def check(args: argparse.Namespace, settings: Settings) -> int:
    from bot.lint import check_folder

    folder = Path(args.dir or settings.knowledge.path)
    problems = await asyncio.to_thread(check_folder, folder, settings)
    errors = [p for p in problems if p.severity == "error"]
    warnings = [p for p in problems if p.severity != "error"]
    for p in problems:
        print(p)
    print(embeddings_line(settings))
    if errors or (args.strict and warnings):
        print(f"{folder}: {len(errors)} error(s), {len(warnings)} warning(s)", file=sys.stderr)
        return 1
    print(f"{folder}: OK ({len(warnings)} warning(s))")
    return 0


async def privacy_notice(args: argparse.Namespace, settings: Settings) -> int:
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


async def explain(args: argparse.Namespace, settings: Settings) -> int:
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
    also = ex.assessment.also_ask
    if also is not None:
        print(f"then asks: {also.category} ({also.level}), after the alarm ({also.file}:{also.rule_line})")
    print(f"tier: {ex.tier}")
    return 0


async def train_checks(args: argparse.Namespace, settings: Settings) -> int:
    from bot import train_checks as trainer
    from bot.core.red_flags.learned import MODEL_FILE

    return await _train(args, settings, trainer, Path("red_flags") / MODEL_FILE)


async def train_faq(args: argparse.Namespace, settings: Settings) -> int:
    from bot import train_faq as trainer
    from bot.core.faq_model import MODEL_FILE

    return await _train(args, settings, trainer, Path(MODEL_FILE))


async def _train(args: argparse.Namespace, settings: Settings, trainer: Any, default_out: Path) -> int:
    """A learned model (``trainer``: training_set, train, write_model, summary) fitted to the knowledge and files."""
    from bot.core.knowledge import load_knowledge

    root = Path(args.knowledge or settings.knowledge.path)
    k = await asyncio.to_thread(load_knowledge, root)
    try:
        data = await asyncio.to_thread(trainer.training_set, k, [Path(f) for f in args.files])
    except (OSError, ValueError) as exc:
        print(f"runbot: {exc}", file=sys.stderr)
        return 1
    model = await asyncio.to_thread(trainer.train, data)
    out = Path(args.out) if args.out else root / default_out
    await asyncio.to_thread(trainer.write_model, model, out)
    for line in trainer.summary(model, data):
        print(line)
    print(f"wrote {out}")
    return 0


async def evaluation(args: argparse.Namespace, settings: Settings) -> int:
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


async def run(args: argparse.Namespace, settings: Settings) -> int:
    from bot.app import App, StartupError

    platforms = {p for p in ("discord", "telegram") if getattr(args, p)} or None
    try:
        return await App(settings, platforms=platforms).run()
    except StartupError as exc:
        print(f"runbot: {exc}", file=sys.stderr)
        return 1


async def report(args: argparse.Namespace, settings: Settings) -> int:
    from bot.core.ports import SystemClock
    from bot.core.reports import describe_period, parse_period, stats_report, unanswered_report
    from bot.storage import is_postgres, make_store, sqlite_file

    try:
        period = parse_period(args.since)
    except ValueError as exc:
        print(f"runbot: {exc}", file=sys.stderr)
        return 2
    db = args.db or settings.database.url
    if not is_postgres(db) and not await asyncio.to_thread(Path(sqlite_file(db)).exists):
        print(f"runbot: database {sqlite_file(db)} not found", file=sys.stderr)
        return 2
    since = SystemClock().now() - period
    async with make_store(db) as store:
        if args.which == "unanswered":
            print(unanswered_report(await store.unanswered(since=since), period=describe_period(args.since)))
        else:
            print(stats_report(await store.stats(since=since), describe_period(args.since)))
    return 0


async def faq(args: argparse.Namespace, settings: Settings) -> int:
    from bot.faq_add import run_interactive

    folder = Path(args.knowledge or settings.knowledge.path)
    # the conversation blocks on stdin, so it runs in a thread and the loop stays free
    return await asyncio.to_thread(run_interactive, folder, settings)


async def followups(args: argparse.Namespace, settings: Settings) -> int:
    from bot.core.followups import humanize_delta
    from bot.core.ports import SystemClock

    clock = SystemClock()
    if args.action == "list":
        from bot.storage import make_store

        async with make_store(args.db or settings.database.url) as store:
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


async def db(args: argparse.Namespace, settings: Settings) -> int:
    from bot.storage.upgrade import upgrade

    print(await upgrade(args.db or settings.database.url))
    return 0
