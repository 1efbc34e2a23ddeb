"""The bot's own words (not the moderators' knowledge): notices, help, fallbacks, escalation wrappers."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence

from bot.core import payloads
from bot.core.commands_parse import Command
from bot.core.knowledge import FaqEntry, Knowledge
from bot.core.messages import Choice, Escalation, Reply
from bot.core.placeholders import SOURCE_HOME_REGIONS, fill
from bot.core.settings import SafetySettings
from bot.core.triage import TriageOutcome, plan_paragraphs

DISCLAIMER = "ℹ️ General information, not medical advice."
EXPIRED = "That button has expired. Send me your question again, or /help to see what I can do."
SORRY = "Sorry, something went wrong on my side. Please try again in a moment."
EMPTY = "I didn't catch a question there. Ask me about lower back pain after running, or send /help."
SLOW_DOWN = "You're sending messages faster than I can keep up. Please slow down; I'll answer again in a few seconds."


#: characters never repeated from a display name: controls, format characters (zero-width, right-to-left
#: overrides that would flip the rest of the reply), private-use, unassigned, surrogates and line breaks
_NAME_DROP = frozenset({"Cc", "Cf", "Co", "Cn", "Cs", "Zl", "Zp"})
NAME_LIMIT = 64


def clean_name(name: str, limit: int = NAME_LIMIT) -> str:
    """A display name safe to put in a plain-text reply: one line, no control or direction characters, at most two
    combining marks in a row, at most ``limit`` characters. Platform escaping (markdown) is the adapter's job."""
    out: list[str] = []
    marks = 0
    for ch in unicodedata.normalize("NFC", name[: limit * 4]):
        cat = unicodedata.category(ch)
        if cat in _NAME_DROP:
            ch, cat = " ", "Zs"
        marks = marks + 1 if cat.startswith("M") else 0
        if marks <= 2:
            out.append(ch)
    return " ".join("".join(out).split())[:limit].strip()


def unknown_command(knowledge: Knowledge, command: Command) -> str:
    """The one reply to a command the bot does not have; the name is repeated only when it is plain text."""
    said = f"the command /{command.name[:30]}" if command.echoable else "that command"
    return f"I don't know {said}.\n\n" + help_text(knowledge)


def first_notice(safety: SafetySettings) -> str:
    return fill(
        "Hi, I'm runbot 👋 I share general information about lower back pain after running: not medical advice "
        "and never a diagnosis — I'm not a doctor. I'm not for emergencies: if you're seriously unwell, call "
        "{emergency_number}. Answering questions needs nothing stored about you (and I never keep your messages). "
        "Your answers in a back-pain check, check-ins and your safety log are stored only if you agree: I'll ask "
        "first. /consent, /mydata and /forget manage it.",
        safety,
    )


def help_text(knowledge: Knowledge) -> str:
    topics = ", ".join(e.title for e in list(knowledge.entries.values())[:12])
    return (
        "I can help with lower back pain after running.\n\n"
        '• Ask a question in your own words, e.g. "why does my lower back hurt after running?"\n'
        f"• /triage – a short guided check (up to {knowledge.triage.max_questions} questions) with a personal plan\n"
        "• /cancel – leave the check\n"
        "• /followups on|off – allow or stop check-ins a few days later\n"
        "• /consent – see or withdraw your agreement to storing your check answers\n"
        "• /mydata – see what I store about you (with a JSON file)\n"
        "• /forget – delete everything I store about you\n"
        "• /help – this message\n\n"
        f"Topics include: {topics}.\n\n"
        "I give general information, not medical advice. In an emergency call your local emergency number."
    )


def answer(
    entry: FaqEntry, knowledge: Knowledge, safety: SafetySettings, runners_up: Sequence[FaqEntry] = ()
) -> Reply:
    """An FAQ answer with buttons: the close runners-up of a close call first ("did you mean"), then the entry's
    related entries, three at most."""
    parts = [entry.title, "", fill(entry.answer.strip(), safety)]
    if entry.source:
        parts += ["", source_line(entry.source, safety.region)]
    parts += ["", DISCLAIMER]
    if runners_up:
        parts += ["", "Not what you asked? Did you mean " + " or ".join(f'"{e.title}"' for e in runners_up) + "?"]
    related = [knowledge.entries[r] for r in entry.related if r in knowledge.entries]
    shown = list({e.id: e for e in (*runners_up, *related) if e.id != entry.id}.values())[:3]
    choices = tuple(Choice(r.title, payloads.faq(r.id)) for r in shown)
    return Reply("\n".join(parts), choices=choices)


_URL_RE = re.compile(r"https?://(?:www\.)?([^\s()]+?)/?(?=[\s();]|$)")


def source_line(source: str, region: str) -> str:
    """The "Source:" line of an FAQ answer for this region."""
    if region in SOURCE_HOME_REGIONS:
        return f"Source: {source}"
    cited = []
    for part in (p.strip() for p in source.split("; ")):  # "2011;43(2)" in a journal reference is not a break
        url = _URL_RE.search(part)
        cited.append(url.group(1) if url else part)
    return f"Source: {'; '.join(c for c in cited if c)}"


def did_you_mean(entries: list[FaqEntry]) -> Reply:
    choices = tuple(Choice(e.title, payloads.faq(e.id)) for e in entries)
    return Reply("I'm not quite sure what you mean. Did you mean one of these?", choices=choices)


def _topics(knowledge: Knowledge) -> str:
    titles = [e.title for e in knowledge.entries.values() if e.id not in ("about-bot", "privacy")][:10]
    return "; ".join(titles)


_NEXT_STEPS = (Choice("Start a back-pain check", payloads.command("triage")), Choice("Help", payloads.command("help")))


def fallback(knowledge: Knowledge, *, noted: bool = True) -> Reply:
    head = "Sorry, I don't have an answer for that yet"
    head += " — I've noted the question for the moderators." if noted else "."
    text = (
        f"{head}\n\nI can help with lower back pain after running, for example: {_topics(knowledge)}.\n"
        "Try asking in other words, send /triage for a short guided check, or /help."
    )
    return Reply(text, choices=_NEXT_STEPS)


def out_of_scope(knowledge: Knowledge, part: str) -> Reply:
    """A question about another body part: say so plainly instead of a back-pain answer that shares its words."""
    where = f"{part} " if part else ""
    text = (
        f"Sorry, I only cover lower back pain, so I can't help with {where}problems — a physio or your "
        f"doctor can.\n\nWhat I can help with, for runners with lower back pain: {_topics(knowledge)}.\n"
        "Send /triage for a short guided back-pain check, or /help."
    )
    return Reply(text, choices=_NEXT_STEPS)


def greeting(knowledge: Knowledge) -> Reply:
    text = (
        "Hi! 👋 Ask me anything about lower back pain after running, in your own words — for example: "
        f"{_topics(knowledge)}. Or send /triage for a short guided check."
    )
    return Reply(text, choices=_NEXT_STEPS)


EMERGENCY_HEADER = "🚨 Please get help now — call {emergency_number}."
URGENT_HEADER = "⚠️ Please see a doctor today."
NOT_A_DIAGNOSIS = "I'm a bot and can't examine you; this is general safety information, not a diagnosis."


def escalation_text(
    message: str, escalation: Escalation, safety: SafetySettings, *, header: bool = True, footer: bool = True
) -> str:
    """The full escalation reply: header, the category's message, the "not a diagnosis" note; a category can drop
    the header (its message then opens the reply) or the note (``header``/``footer`` in its YAML)."""
    parts = [fill(message, safety).strip()]
    if header:
        parts.insert(0, fill(EMERGENCY_HEADER if escalation.level == "emergency" else URGENT_HEADER, safety))
    if footer:
        parts.append(NOT_A_DIAGNOSIS)
    return "\n\n".join(p for p in parts if p)


def escalation_public(escalation: Escalation, safety: SafetySettings, name: str, *, header: bool = True) -> str:
    """What a group sees: no symptoms, the emergency number, and that the details come privately. Without the alarm
    header (self-harm) the note is support, not "you may need emergency care" in front of everyone."""
    name = clean_name(name)
    who = f"{name}, " if name else ""
    if not header:
        text = (
            "💙 {who}thank you for saying something. I'll send you a private message. If you are in danger now, "
            "call {emergency_number}."
        )
    elif escalation.level == "emergency":
        text = (
            "⚠️ {who}what you describe may need emergency care. If you are in danger now, call "
            "{emergency_number}. I'll send you the details in a private message."
        )
    else:
        text = (
            "⚠️ {who}what you describe should be checked by a doctor today. "
            "I'll send you the details in a private message."
        )
    return fill(text, safety).replace("{who}", who)


def escalation_reminder(escalation: Escalation, safety: SafetySettings, *, header: bool = True) -> str:
    if not header:
        text = (
            "You don't have to cope with this alone — please talk to {crisis_line} now, or call {emergency_number} "
            "if you are in danger."
        )
    elif escalation.level == "emergency":
        text = "Please act on the safety advice I just sent: call {emergency_number} now."
    else:
        text = "Please act on the safety advice I just sent: see a doctor today."
    return fill(text, safety)


def safety_line(safety: SafetySettings) -> str:
    """Added to any reply when the red-flag check itself failed: fail closed, never silent."""
    return fill("⚠️ If you think this is an emergency, call {emergency_number} now.", safety)


def safety_check_text(question: str) -> str:
    return f"Before I answer, one quick safety question:\n\n{question}"


def safety_check_after_answer(question: str) -> str:
    return f"One more safety question, because these signs are easy to miss:\n\n{question}"


SAFETY_CHECK_CARRY_ON = "Thanks — glad to hear it."
SAFETY_CHECK_ANSWERED_NO = "Thanks. The advice above still stands; if that changes, call for help straight away."
SAFETY_CHECK_ASK_AGAIN = "Thanks. What would you like to ask about your back?"


def triage_plan(
    knowledge: Knowledge,
    outcome: TriageOutcome,
    safety: SafetySettings,
    escalation: Escalation | None,
    *,
    private: bool = False,
) -> Reply:
    """The plan at the end of a triage: an emergency or urgent plan opens with the same header as a free-text alarm;
    an emergency plan offers nothing to read (the runner should be getting help, not reading)."""
    parts = [fill(p, safety) for p in plan_paragraphs(knowledge.triage, outcome)]
    if escalation is not None:
        parts.insert(0, fill(EMERGENCY_HEADER if escalation.level == "emergency" else URGENT_HEADER, safety))
    linked = (
        []
        if outcome.disposition == "emergency"
        else [knowledge.entries[f] for f in outcome.faq if f in knowledge.entries]
    )
    if linked:
        parts.append("Worth reading: " + "; ".join(e.title for e in linked) + ".")
    parts.append(DISCLAIMER)
    choices = tuple(Choice(e.title, payloads.faq(e.id)) for e in linked[:4])
    return Reply("\n\n".join(parts), choices=choices, escalation=escalation, private=private)
