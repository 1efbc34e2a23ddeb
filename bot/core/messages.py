"""The small frozen types that cross the boundary between adapters and the core."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Literal

from bot.core.payloads import MAX_PAYLOAD_BYTES, fits

EscalationLevel = Literal["emergency", "urgent"]
#: what the engine did with a message (``Outcome.kind``); counted per kind in the stats
OutcomeKind = Literal[
    "answer",  # a confident FAQ match
    "did-you-mean",  # suggestions to pick from
    "fallback",  # no answer (the question may be kept for the moderators), a greeting, chatter, another body part
    "escalation",  # a red flag (or a triage outcome that is one)
    "safety-check",  # a possible red flag: one yes/no question
    "triage",  # a step or the plan of the back-pain check
    "consent",  # the question about storing health data, or what follows the answer to it
    "command",  # a slash command's answer
    "followup",  # a check-in offer or answer
    "expired",  # a button the bot no longer recognises
    "throttled",  # flood control: "slow down" once, then quiet
    "empty",  # nothing to answer
    "silent",  # a listen channel: nothing to say
    "unavailable",  # needs stored data while storage is down
    "error",  # handling failed ("Sorry, something went wrong")
]


@dataclass(frozen=True, slots=True)
class Choice:
    """A button (or numbered option) offered to the user."""

    label: str
    payload: str

    def __post_init__(self) -> None:
        if not fits(self.payload):  # the codec builds payloads that fit; this catches one built by hand
            raise ValueError(f"choice payload over {MAX_PAYLOAD_BYTES} bytes: {self.payload!r}")


@dataclass(frozen=True, slots=True)
class Escalation:
    """A red flag that was found: how urgent, and which catalogue category."""

    level: EscalationLevel
    category: str


@dataclass(frozen=True, slots=True)
class SafetyCheck:
    """A possible red flag: the one yes/no question the bot asks instead of escalating (the check tier)."""

    level: EscalationLevel
    category: str
    question: str


@dataclass(frozen=True, slots=True)
class Attachment:
    """A file sent with a reply (the /mydata JSON export): a Discord attachment, a Telegram document."""

    filename: str
    data: bytes
    mime: str = "application/octet-stream"


@dataclass(frozen=True, slots=True)
class Reply:
    """One message for the user.

    ``private`` asks the adapter to deliver it where only the user sees it (a DM, an ephemeral
    response). In a group the engine pairs a private escalation with a short public reply that
    carries no health details; adapters route each reply by this flag.
    """

    text: str
    choices: tuple[Choice, ...] = ()
    escalation: Escalation | None = None
    private: bool = False
    #: a file delivered with the text (adapters without files show the text only; it says what the file holds)
    attachment: Attachment | None = None


@dataclass(frozen=True, slots=True)
class IncomingMessage:
    """A message (or a pressed button, when ``choice`` is set) from a user on some platform."""

    platform: str
    user_id: str
    chat_id: str
    text: str = ""
    choice: str | None = None
    is_private: bool = True
    display_name: str = ""
    #: the adapter checked the platform's permissions and this user may run moderator commands (/faq ...)
    is_moderator: bool = False
    #: overheard in a "listen" channel, not addressed to the bot: answer only confident matches and red flags,
    #: record nothing about it
    listen_only: bool = False


@dataclass(frozen=True, slots=True)
class ChatRef:
    """Where a message can reach a user later (the scheduler uses it for follow-ups)."""

    platform: str
    user_id: str
    chat_id: str


@dataclass(frozen=True, slots=True)
class Outcome:
    """What the engine decided for one message: the replies plus the facts behind them (``kind``: ``OutcomeKind``)."""

    replies: tuple[Reply, ...]
    kind: OutcomeKind
    faq_id: str | None = None
    escalation: Escalation | None = None
    confidence: float = 0.0
    alternatives: tuple[str, ...] = field(default=())
    #: set when the bot asked a safety question: about a possible red flag instead of escalating, or about a graver
    #: one right after an urgent alarm
    safety_check: SafetyCheck | None = None

    def plus(self, *more: Reply, first: bool = False) -> Outcome:
        """This outcome with more replies (before the others when ``first``)."""
        return replace(self, replies=(*more, *self.replies) if first else (*self.replies, *more))
