"""The safety gate in front of everything else: red-flag tiers, the pending safety questions, failing closed.

Detection is pure and in memory. A detector error is logged and counted, and the message then gets the cautious
safety line on top of its normal answer. A possible red flag (the check tier) gets one yes/no question; the
question and the message it was about are kept in memory only (safety never waits for storage), for
``PENDING_SECONDS``, at most ``PENDING_LIMIT`` users at a time.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from bot.core import payloads, replies
from bot.core.knowledge import Knowledge
from bot.core.messages import Choice, Reply, SafetyCheck
from bot.core.red_flags import Assessment, RuleHit
from bot.core.settings import SafetySettings
from bot.core.text import normalize

log = logging.getLogger(__name__)

PENDING_SECONDS = 30 * 60
PENDING_LIMIT = 10_000
_YES = frozenset({"yes", "y", "yeah", "yep", "yup", "ya", "yh", "aye", "yes i am", "i am", "yes it is", "sadly yes"})
_NO = frozenset({"no", "n", "nope", "nah", "na", "no im not", "im not", "not really", "no it isnt", "no its not"})


@dataclass(frozen=True, slots=True)
class Pending:
    """A safety question waiting for its answer: the category asked about and the message that raised it."""

    check: SafetyCheck
    text: str
    asked_at: float
    #: asked after a reply that answered the message (an alarm, or an FAQ answer): "no" adds nothing more
    answered: bool = False


class SafetyGate:
    """Assesses each message (failing closed) and remembers the safety questions it asked."""

    def __init__(self, monotonic: Callable[[], float]) -> None:
        self._monotonic = monotonic
        self._pending: OrderedDict[str, Pending] = OrderedDict()
        self.detector_errors = 0

    def assess(self, k: Knowledge, text: str) -> tuple[Assessment, bool]:
        """The red-flag tiers for ``text`` and whether detection failed (then the caller adds the safety line)."""
        try:
            return k.red_flags.assess(text), False
        except Exception:
            self.detector_errors += 1
            log.exception("red-flag detection failed (%d so far): answering with the safety line", self.detector_errors)
            return Assessment(), True

    @staticmethod
    def choices(check: SafetyCheck) -> tuple[Choice, ...]:
        return (Choice("Yes", payloads.check_yes(check.category)), Choice("No", payloads.check_no()))

    def question(
        self,
        k: Knowledge,
        who: str,
        hit: RuleHit,
        safety: SafetySettings,
        text: str,
        *,
        private: bool,
        answered: bool = False,
    ) -> tuple[Reply, SafetyCheck]:
        """The yes/no question for a possible red flag (``answered``: after a reply that answered the message),
        remembered as ``who``'s open question."""
        check = k.red_flags.safety_check(hit, safety)
        self.ask(who, check, text, answered=answered)
        words = replies.safety_check_after_answer if answered else replies.safety_check_text
        return Reply(words(check.question), self.choices(check), private=private), check

    def ask(self, who: str, check: SafetyCheck, text: str, *, answered: bool = False) -> None:
        self._pending.pop(who, None)
        self._pending[who] = Pending(check, text, self._monotonic(), answered)
        while len(self._pending) > PENDING_LIMIT:
            self._pending.popitem(last=False)

    def take(self, who: str) -> Pending | None:
        """The user's open question (removed), or None when there is none or it is too old."""
        pending = self._pending.pop(who, None)
        if pending is None or self._monotonic() - pending.asked_at > PENDING_SECONDS:
            return None
        return pending

    def waiting(self, who: str) -> bool:
        pending = self._pending.get(who)
        return pending is not None and self._monotonic() - pending.asked_at <= PENDING_SECONDS

    @staticmethod
    def typed_answer(text: str) -> bool | None:
        """A typed yes (True) or no (False) to a safety question, or None for anything else."""
        words = normalize(text)
        if words in _YES:
            return True
        if words in _NO:
            return False
        return None
