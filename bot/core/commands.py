"""Slash commands, the same on every platform: /start /help /ask /triage /cancel /followups /mydata /forget /faq."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from bot.core import payloads, replies
from bot.core.commands_parse import Command
from bot.core.messages import Attachment, Choice, Outcome, Reply
from bot.core.moderation import SUBCOMMANDS
from bot.core.moderation import USAGE as MODERATION_USAGE

if TYPE_CHECKING:
    from bot.core.answers import FaqAnswers
    from bot.core.consent import ConsentGate
    from bot.core.context import Context
    from bot.core.followups import FollowupFlow
    from bot.core.moderation import ModeratorDesk
    from bot.core.ports import Clock
    from bot.core.store import Store
    from bot.core.triage_flow import TriageConversation


def export_json(data: dict[str, Any]) -> bytes:
    """The /mydata file: UTF-8 JSON, one document."""
    return (json.dumps(data, indent=2, ensure_ascii=False) + "\n").encode("utf-8")


class Commands:
    """Command handlers; each returns an Outcome."""

    def __init__(
        self,
        store: Store,
        clock: Clock,
        answers: FaqAnswers,
        triage: TriageConversation,
        consent: ConsentGate,
        followups: FollowupFlow,
    ) -> None:
        self.store = store
        self.clock = clock
        self.answers = answers
        self.triage_flow = triage
        self.consent_gate = consent
        self.followup_flow = followups
        #: the moderators' /faq reload (set when a knowledge watcher runs; None: not available in this mode)
        self.reloader: Callable[[], Awaitable[str]] | None = None
        #: the moderators' review queue and in-chat editing (set by bootstrap; None: /faq review etc. unavailable)
        self.moderation: ModeratorDesk | None = None

    async def dispatch(self, ctx: Context, command: Command) -> Outcome:
        handler = {
            "start": self.start,
            "help": self.help,
            "ask": self.ask,
            "triage": self.triage,
            "check": self.triage,
            "cancel": self.cancel,
            "stop": self.cancel,
            "followups": self.followups,
            "mydata": self.mydata,
            "forget": self.forget,
            "consent": self.consent,
            "faq": self.faq,
        }.get(command.name)
        if handler is None:
            return Outcome((Reply(replies.unknown_command(ctx.k, command)),), "command")
        return await handler(ctx, command.args)

    async def start(self, ctx: Context, args: str) -> Outcome:
        if args.strip().lower() == "triage":
            return await self.triage_flow.start(ctx)
        greeting = (
            "Hi! I'm runbot, your running club's helper for lower back pain after running.\n\n"
            + replies.help_text(ctx.k)
        )
        about = "about-bot" if "about-bot" in ctx.k.entries else None
        choices = (Choice("Start a back-pain check", payloads.triage_start()),)
        return Outcome((Reply(greeting, choices=choices),), "command", faq_id=about, confidence=100.0)

    async def help(self, ctx: Context, args: str) -> Outcome:
        about = ctx.k.entries.get("about-bot")
        text = replies.help_text(ctx.k)
        return Outcome((Reply(text),), "command", faq_id=about.id if about else None, confidence=100.0)

    async def ask(self, ctx: Context, args: str) -> Outcome:
        if not args.strip():
            example = "Ask me a question after /ask, e.g. /ask why does my back hurt after runs?"
            return Outcome((Reply(example),), "empty")
        return await self.answers.answer(ctx, args)

    async def triage(self, ctx: Context, args: str) -> Outcome:
        return await self.triage_flow.start(ctx)

    async def cancel(self, ctx: Context, args: str) -> Outcome:
        stopped = await self.consent_gate.clear_triage(ctx)
        text = "OK, I've stopped the back-pain check." if stopped else "There's nothing to cancel."
        return Outcome((Reply(text + " Ask me anything, or /triage to start again."),), "command")

    async def followups(self, ctx: Context, args: str) -> Outcome:
        store = self.store
        word = args.strip().lower()
        if word in ("off", "stop", "no", "disable"):  # a setting to remember: the row is created for it
            await store.set_followups_enabled(await ctx.stored_user(store), False)
            cancelled = await store.cancel_followups(ctx.user)
            extra = f" I've cancelled {cancelled} planned check-in(s)." if cancelled else ""
            text = "Check-ins are off: I won't message you later." + extra + " Send /followups on to allow them."
            return Outcome((Reply(text, private=ctx.private),), "command")
        if word in ("on", "start", "yes", "enable"):
            if ctx.user.stored:  # no row: on is what a new one would say anyway
                await store.set_followups_enabled(ctx.user, True)
            text = "Check-ins are on: after a back-pain check I'll offer to ask how you're doing a few days later."
            return Outcome((Reply(text, private=ctx.private),), "command")
        user = await store.user_by_id(ctx.user.id) or ctx.user
        active = await store.user_followups(user, active_only=True)
        status = "on" if user.followups_enabled else "off"
        lines = [f"Check-ins are {status}."]
        for f in active:
            lines.append(f"• a check-in about your back {self.followup_flow.when(f.due_at)}")
        lines.append("Send /followups off to stop them, /followups on to allow them.")
        choices = (Choice("Turn off", payloads.command("followups", "off")),) if user.followups_enabled else (
            Choice("Turn on", payloads.command("followups", "on")),
        )
        return Outcome((Reply("\n".join(lines), choices=choices, private=ctx.private),), "command")

    async def consent(self, ctx: Context, args: str) -> Outcome:
        return await self.consent_gate.status(ctx, args)

    async def mydata(self, ctx: Context, args: str) -> Outcome:
        store = self.store
        if not ctx.user.stored:
            empty = {"user": None, "triage": None, "escalations": [], "followups": [], "unanswered": [],
                     "consent": None}
            text = ("I don't store anything about you: no check progress, check-ins, consent or questions linked to "
                    "you. Answers to questions and safety advice need no stored data. The attached file "
                    "runbot-mydata.json says the same as JSON.")
            attachment = Attachment("runbot-mydata.json", export_json(empty), "application/json")
            return Outcome((Reply(text, private=ctx.private, attachment=attachment),), "command")
        data = await store.export_user(ctx.user)
        u = data["user"]
        lines = [
            "Here is everything I store about you:",
            f"• who: your {u['platform']} user id {u['platform_user_id']}, first seen {u['first_seen'][:10]}",
            f"• check-ins: {'on' if u['followups_enabled'] else 'off'}; {len(data['followups'])} check-in series",
            f"• back-pain check in progress: {'yes' if data['triage'] else 'no'}",
            "• consent to store health data: "
            + (f"version {data['consent']['version']}, {data['consent']['given_at'][:10]}" if data["consent"]
               else "not given"),
            f"• safety warnings given: {len(data['escalations'])} (level and time only, never your words)",
            f"• questions I couldn't answer, kept for the moderators: {len(data['unanswered'])}",
            *(f"    “{q['question']}” ({q['count']}×, last {q['last_seen'][:10]})" for q in data["unanswered"][:20]),
            "I don't keep your messages. Questions I couldn't answer are kept with names, @handles, emails, links "
            "and numbers masked; moderators see them without your id.",
            "/forget deletes all of this. The attached file runbot-mydata.json holds all of it as JSON.",
        ]
        attachment = Attachment("runbot-mydata.json", export_json(data), "application/json")
        reply = Reply("\n".join(lines), private=ctx.private, attachment=attachment)
        return Outcome((reply,), "command")

    async def forget(self, ctx: Context, args: str) -> Outcome:
        if args.strip().lower() in ("confirm", "yes"):
            return await self.forget_choice(ctx, "yes")
        text = (
            "This deletes everything I store about you: your check progress, planned check-ins, the safety log and "
            "the questions I couldn't answer. It can't be undone. Are you sure?"
        )
        choices = (
            Choice("Yes, delete everything", payloads.forget(True)), Choice("No, keep it", payloads.forget(False))
        )
        return Outcome((Reply(text, choices=choices, private=ctx.private),), "command")

    async def forget_choice(self, ctx: Context, answer: str) -> Outcome:
        if answer != "yes":
            return Outcome((Reply("OK, nothing was deleted.", private=ctx.private),), "command")
        await self.store.forget_user(ctx.user)
        self.consent_gate.forget_session(ctx.msg)
        text = "Done: I've deleted everything I stored about you and cancelled any check-ins."
        return Outcome((Reply(text, private=ctx.private),), "command")

    async def faq(self, ctx: Context, args: str) -> Outcome:
        """Moderators only (the adapter checked the role / admin status): reload, unanswered [7d], stats [7d]."""
        if not ctx.msg.is_moderator:
            text = "Sorry, the /faq commands are for the club's moderators."
            return Outcome((Reply(text, private=ctx.private),), "command")
        # moderators asked where they want the answer (their channel or chat): reply there
        from bot.core.reports import DEFAULT_PERIOD, describe_period, parse_period, stats_report, unanswered_report

        words = args.split()
        sub = words[0].lower() if words else ""
        store = self.store
        if sub in SUBCOMMANDS:  # editing and the review queue (issue 17)
            if self.moderation is None:
                text = "Editing the FAQ from the chat isn't available here."
                return Outcome((Reply(text, private=ctx.private),), "command")
            return await self.moderation.command(ctx.msg, sub, args.strip().partition(" ")[2])
        if sub == "reload":
            if self.reloader is None:
                return Outcome((Reply("Reloading isn't available in this mode."),), "command")
            return Outcome((Reply(await self.reloader()),), "command")
        if sub in ("unanswered", "stats"):
            period = words[1] if len(words) > 1 else DEFAULT_PERIOD
            try:
                since = self.clock.now() - parse_period(period)
            except ValueError as exc:
                return Outcome((Reply(f"{exc}."),), "command")
            if sub == "unanswered":
                text = unanswered_report(await store.unanswered(since=since), period=describe_period(period))
            else:
                text = stats_report(await store.stats(since=since), describe_period(period))
            return Outcome((Reply(text),), "command")
        usage = (
            "Moderator commands:\n"
            "/faq reload – reload the knowledge files now (errors are listed with file:line)\n"
            "/faq unanswered [7d] – most asked questions I couldn't answer\n"
            "/faq stats [7d] – counts of what I did\n" + MODERATION_USAGE
        )
        return Outcome((Reply(usage),), "command")

