"""Button payloads: the one codec that builds and reads them, for every adapter and handler.

A payload is ``VERSION:kind:arg:arg`` (``1:faq:overstriding``, ``1:tri:duration:0``): short, stable across restarts,
at most ``MAX_PAYLOAD_BYTES`` (Telegram's 64-byte callback-data limit; Discord allows 100). Buttons sent before the
version prefix existed (``faq:overstriding``) read as version 0, the same layout. ``decode`` returns None for
anything the bot could not have issued (forged, another bot's, over the limit, a format this version does not read);
``Knowledge.still_has`` checks a decoded payload against the knowledge it must still match. The engine answers both
with "That button has expired" (``replies.EXPIRED``), never an error.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum
from typing import Literal

#: Telegram's callback-data limit; Discord allows 100 characters for a custom_id.
MAX_PAYLOAD_BYTES = 64
VERSION = 1
#: the versions this code reads (0: the layout before the prefix, on buttons already out in chats)
READABLE = frozenset({0, VERSION})
SEP = ":"
PREFIX = f"{VERSION}{SEP}"


class Kind(StrEnum):
    """What a button is for (the first field after the version)."""

    FAQ = "faq"  # an FAQ answer: faq:<entry id>
    TRIAGE = "tri"  # tri:start, or an answer to a step: tri:<step id>:<choice index>
    FOLLOWUP = "fu"  # fu:yes:<outcome id> / fu:no (the offer), fu:<check-in id>:<answer> (a check-in's answer)
    CHECK = "chk"  # a safety question's answer: chk:yes:<category> / chk:no
    COMMAND = "cmd"  # a command pressed as a button: cmd:<name>[:<argument>] (only BUTTON_COMMANDS)
    CONSENT = "consent"  # consent:yes:<text hash>:<action> / consent:no:<action>
    FORGET = "forget"  # /forget's confirmation: forget:yes / forget:no
    MODERATION = "mod"  # the moderators' review queue: mod:<action>:<fields> (bot.core.moderation builds them)


CheckinAnswer = Literal["better", "same", "worse"]
CHECKIN_ANSWERS: tuple[CheckinAnswer, ...] = ("better", "same", "worse")
ConsentAction = Literal["tri", "step", "fu", "none"]
#: what a consent button goes on to do: start the check, carry on with a step, accept a check-in, nothing
CONSENT_ACTIONS: tuple[ConsentAction, ...] = ("tri", "step", "fu", "none")
#: the commands a button may run, with their argument ("" for none). A command outside this list never comes from
#: a button (a forged ``cmd:forget:yes`` must not delete anything without the confirmation)
BUTTON_COMMANDS = frozenset({("triage", ""), ("help", ""), ("followups", "on"), ("followups", "off"),
                             ("consent", "withdraw")})

#: the moderators' button actions, with the positions of their numeric fields (review position, change id)
MODERATOR_ACTIONS: dict[str, tuple[int, ...]] = {
    "rv": (0,), "ph": (0,), "oth": (0,), "new": (0,), "ign": (0,), "undo": (0,), "ed": (), "cht": (),
    "fl": (),  # a step of the Telegram entry form (bot/adapters/telegram_faq_flow.py)
}

_ID = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")
_DIGITS = re.compile(r"[0-9]{1,18}")
_INDEX = re.compile(r"[0-9]{1,3}")
_STEP = re.compile(r"[^:]{1,60}")
_HASH = re.compile(r"[0-9a-f]{8}")
#: the longest red-flag category id a safety question's "Yes" button carries (the catalogue's checks refuse longer)
MAX_CATEGORY_ID = 50


class PayloadError(ValueError):
    """A payload the code tried to build is malformed or over ``MAX_PAYLOAD_BYTES`` (a bug or a knowledge file the
    checks should have refused)."""


@dataclass(frozen=True, slots=True)
class Payload:
    """A decoded button: its kind and fields (``version`` says which layout it came in)."""

    kind: Kind
    args: tuple[str, ...]
    version: int = VERSION


def size(raw: str) -> int:
    return len(raw.encode("utf-8", "surrogatepass"))


def fits(raw: str) -> bool:
    return size(raw) <= MAX_PAYLOAD_BYTES


def encode(kind: Kind, *args: str) -> str:
    """The payload for ``kind`` with ``args``; raises PayloadError when a field holds the separator or the payload
    is over the limit."""
    if any(SEP in a or not a for a in args):
        raise PayloadError(f"a payload field is empty or holds {SEP!r}: {args!r}")
    raw = SEP.join((str(VERSION), kind.value, *args))
    if not fits(raw):
        raise PayloadError(f"payload over {MAX_PAYLOAD_BYTES} bytes: {raw!r}")
    if decode(raw) is None:
        raise PayloadError(f"the bot could not read its own payload back: {raw!r}")
    return raw


def decode(raw: str | None) -> Payload | None:
    """The button ``raw`` carried, or None when the bot could not have issued it (see the module's docstring)."""
    if not raw or not fits(raw):
        return None
    parts = raw.split(SEP)
    version = 0
    if parts[0].isascii() and parts[0].isdigit():
        version = int(parts[0])
        parts = parts[1:]
    if version not in READABLE or not parts:
        return None
    try:
        kind = Kind(parts[0])
    except ValueError:
        return None
    args = tuple(parts[1:])
    return Payload(kind, args, version) if _well_formed(kind, args) else None


def _well_formed(kind: Kind, args: tuple[str, ...]) -> bool:
    match kind, args:
        case Kind.FAQ, (entry,):
            return _ID.fullmatch(entry) is not None
        case Kind.TRIAGE, ("start",):
            return True
        case Kind.TRIAGE, (step, index):
            return _STEP.fullmatch(step) is not None and _INDEX.fullmatch(index) is not None
        case Kind.FOLLOWUP, ("no",):
            return True
        case Kind.FOLLOWUP, ("yes", topic):
            return bool(topic)
        case Kind.FOLLOWUP, (number, answer):
            return _DIGITS.fullmatch(number) is not None and answer in CHECKIN_ANSWERS
        case Kind.CHECK, ("no",):
            return True
        case Kind.CHECK, ("yes", category):
            return _ID.fullmatch(category) is not None and len(category) <= MAX_CATEGORY_ID
        case Kind.COMMAND, (name,):
            return (name, "") in BUTTON_COMMANDS
        case Kind.COMMAND, (name, argument):
            return (name, argument) in BUTTON_COMMANDS
        case Kind.CONSENT, ("no", action):
            return action in CONSENT_ACTIONS
        case Kind.CONSENT, ("yes", short, action):
            return _HASH.fullmatch(short) is not None and action in CONSENT_ACTIONS
        case Kind.FORGET, (answer,):
            return answer in ("yes", "no")
        case Kind.MODERATION, (action, *fields):
            numbers = MODERATOR_ACTIONS.get(action)
            return numbers is not None and all(
                i < len(fields) and _DIGITS.fullmatch(fields[i]) is not None for i in numbers
            )
    return False


def kind_of(raw: str | None) -> Kind | None:
    """The kind of a payload (None when it does not decode)."""
    payload = decode(raw)
    return payload.kind if payload is not None else None


# ---------------------------------------------------------------------- builders (every payload the bot issues)
def faq(entry_id: str) -> str:
    return encode(Kind.FAQ, entry_id)


def faq_id_fits(entry_id: str) -> bool:
    """Whether an FAQ id is short enough for its button (the knowledge checks and ``runbot faq add`` ask)."""
    return fits(SEP.join((str(VERSION), Kind.FAQ.value, entry_id)))


#: the longest FAQ id a button can carry
MAX_FAQ_ID = MAX_PAYLOAD_BYTES - len(f"{VERSION}{SEP}{Kind.FAQ.value}{SEP}")


def triage_start() -> str:
    return encode(Kind.TRIAGE, "start")


def triage_answer(step_id: str, index: int) -> str:
    return encode(Kind.TRIAGE, step_id, str(index))


def followup_topic(outcome_id: str, version: int = VERSION) -> str:
    """The triage outcome id as the check-in offer carries it (cut to fit the payload limit)."""
    head = f"{Kind.FOLLOWUP.value}{SEP}yes{SEP}"
    if version == 0:  # cut by characters, as the offers made before the prefix were
        return f"{head}{outcome_id}"[:MAX_PAYLOAD_BYTES][len(head):]
    room = MAX_PAYLOAD_BYTES - size(f"{VERSION}{SEP}{head}")
    return outcome_id.encode("utf-8")[:room].decode("utf-8", "ignore")


def followup_offer(outcome_id: str) -> str:
    return encode(Kind.FOLLOWUP, "yes", followup_topic(outcome_id))


def followup_decline() -> str:
    return encode(Kind.FOLLOWUP, "no")


def checkin_answer(followup_id: int, answer: CheckinAnswer) -> str:
    return encode(Kind.FOLLOWUP, str(followup_id), answer)


def check_yes(category: str) -> str:
    return encode(Kind.CHECK, "yes", category)


def check_no() -> str:
    return encode(Kind.CHECK, "no")


def command(name: str, argument: str = "") -> str:
    """A command as a button; only the commands in BUTTON_COMMANDS."""
    if (name, argument) not in BUTTON_COMMANDS:
        raise PayloadError(f"/{name} {argument} is not a button command")
    return encode(Kind.COMMAND, name, *((argument,) if argument else ()))


def consent_yes(short_hash: str, action: ConsentAction) -> str:
    return encode(Kind.CONSENT, "yes", short_hash, action)


def consent_no(action: ConsentAction) -> str:
    return encode(Kind.CONSENT, "no", action)


def forget(confirm: bool) -> str:
    return encode(Kind.FORGET, "yes" if confirm else "no")


def moderation(action: str, *fields: object) -> str:
    """A button of the moderators' review queue (``MODERATOR_ACTIONS``)."""
    return encode(Kind.MODERATION, action, *map(str, fields))
