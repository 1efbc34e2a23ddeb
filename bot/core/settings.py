"""The settings the core runs on (matching, safety, follow-ups, flood control, privacy), as frozen dataclasses with
their defaults and allowed ranges. ``bot.config`` reads them from the YAML file (with the line of a bad value); the
core never reads a file or the environment."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from bot.core.placeholders import NAMES, PRESETS, REGIONS


class ConfigError(Exception):
    """A config problem, said in one line that names the key; ``path`` is the key's place in the file (for its line)."""

    def __init__(self, message: str, path: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.path = path


def _num(default: float | int, lo: float | None = None, hi: float | None = None, *, above: bool = False) -> Any:
    """A number setting with its allowed range (``above``: strictly greater than ``lo``)."""
    return field(default=default, metadata={"lo": lo, "hi": hi, "above": above})


@dataclass(frozen=True)
class MatchingSettings:
    confident: float = _num(56.0, 0, 100)
    likely: float = _num(50.0, 0, 100)
    margin: float = _num(15.0, 0, 100)
    suggest: float = _num(35.0, 0, 100)
    max_suggestions: int = _num(3, 1, 10)
    #: with the embeddings extra installed: re-rank the candidates within ``rerank_window`` points of the best by
    #: meaning, each 0.01 of embedding similarity worth ``rerank_weight`` points (bot/core/decision.py ``rerank``)
    embeddings: bool = True
    rerank_window: float = _num(10.0, 0, 100)
    rerank_weight: float = _num(0.3, 0, 10)
    #: an answer whose runners-up came within this many points also offers them as "did you mean" buttons (0: never)
    runner_up_window: float = _num(15.0, 0, 100)
    #: the FAQ model (knowledge/faq-model.json) names the entry when its chance is at least ``model_answer``; when
    #: unsure, the lexical matcher decides, and the model's entries of at least ``model_suggest`` are the buttons;
    #: its "not for this FAQ" silences a confident lexical answer only from ``model_reject``; with an answer, the
    #: next entries of at least ``model_related`` are offered too (a tap away when the answer is the wrong one)
    model: bool = True
    model_answer: float = _num(0.5, 0, 1)
    model_suggest: float = _num(0.1, 0, 1)
    model_reject: float = _num(0.9, 0, 1)
    model_related: float = _num(0.03, 0, 1)

    def __post_init__(self) -> None:
        if not self.suggest <= self.likely <= self.confident:
            raise ConfigError(
                f"matching: needs suggest <= likely <= confident, got {self.suggest:g}, {self.likely:g}, "
                f"{self.confident:g}",
                ("matching",),
            )


Region = Literal["uk", "ie", "us", "ca", "au", "eu"]


@dataclass(frozen=True)
class SafetySettings:
    """Where to send people: ``region`` picks a preset (bot/core/placeholders.py) for every placeholder; a key set
    here (not empty) wins over the preset. After construction every placeholder field holds its effective value."""

    region: Region = "uk"
    emergency_number: str = ""
    crisis_line: str = ""
    emergency_department: str = ""
    urgent_care: str = ""
    family_doctor: str = ""
    physio_register: str = ""
    repeat_escalation_seconds: int = _num(60, 0, 86400)

    def __post_init__(self) -> None:
        preset = PRESETS.get(self.region)
        if preset is None:
            raise ConfigError(
                f"safety.region: must be one of {', '.join(REGIONS)}, got {self.region!r}", ("safety", "region")
            )
        for name in NAMES:
            if not str(getattr(self, name)).strip():
                object.__setattr__(self, name, preset[name])


@dataclass(frozen=True)
class FollowupSettings:
    enabled: bool = True
    first_after_days: float = _num(3.0, 0, 365, above=True)
    interval_days: float = _num(7.0, 0, 365, above=True)
    max_checkins: int = _num(3, 0, 52)
    drop_overdue_days: float = _num(7.0, 0, 365, above=True)
    max_attempts: int = _num(4, 1, 20)
    retry_backoff_seconds: tuple[int, ...] = field(default=(60, 600, 3600), metadata={"lo": 0, "hi": 86400})


@dataclass(frozen=True)
class RateLimitSettings:
    enabled: bool = True
    messages: int = _num(5, 1, 10000)
    per_seconds: float = _num(10.0, 0, 86400, above=True)
    burst: int = _num(10, 1, 10000)


@dataclass(frozen=True)
class PrivacySettings:
    #: unanswered questions and the safety (escalation) log are deleted after this many days
    retention_days: int = _num(180, 1, 3650)
    #: answers of a back-pain check left unfinished are deleted after this many days (a finished one at once)
    triage_days: int = _num(30, 1, 365)
    #: who runs the bot and answers privacy requests: named in the consent text and docs/privacy-notice.md
    operator_name: str = ""
    operator_contact: str = ""


@dataclass(frozen=True)
class CoreSettings:
    """Everything the engine and its handlers read; ``bot.config.Settings`` adds the platforms, storage and files."""

    matching: MatchingSettings = field(default_factory=MatchingSettings)
    safety: SafetySettings = field(default_factory=SafetySettings)
    followups: FollowupSettings = field(default_factory=FollowupSettings)
    rate_limit: RateLimitSettings = field(default_factory=RateLimitSettings)
    privacy: PrivacySettings = field(default_factory=PrivacySettings)
