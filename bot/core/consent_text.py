"""The consent text (knowledge/consent.yaml): loaded and validated with the knowledge, versioned, hashed."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import Any

from bot.core.schema import Checker

CONSENT_FILE = "consent.yaml"
PLACEHOLDERS = ("operator", "retention_days", "triage_days")
_VERSION = re.compile(r"[A-Za-z0-9._-]{1,16}")
_PLACEHOLDER = re.compile(r"\{([^{}]*)\}")
#: what a consent text must mention so a runner can act on it
_MUST_NAME = ("/consent", "/forget", "/mydata")


@dataclass(frozen=True, slots=True)
class ConsentText:
    """One version of the consent question; ``sha256`` is of the text as written (placeholders unfilled)."""

    version: str
    text: str
    yes: str = "Yes, I agree"
    no: str = "No thanks"

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.text.encode("utf-8")).hexdigest()

    @property
    def short(self) -> str:
        """The first 8 hex digits of the hash: put on the buttons so a "yes" to an older text is not taken."""
        return self.sha256[:8]

    def render(self, *, operator: str, retention_days: int, triage_days: int) -> str:
        values = {"operator": operator, "retention_days": str(retention_days), "triage_days": str(triage_days)}
        return _PLACEHOLDER.sub(lambda m: values.get(m.group(1), m.group(0)), self.text)


#: used when a knowledge folder has no consent.yaml (tests' small folders); the shipped folder has one
DEFAULT_CONSENT = ConsentText(
    "builtin-1",
    "Before we start: may I store your answers to this back-pain check, the check-ins you ask for and a log of "
    "safety warnings (level and time only)? Check answers are deleted when the check ends (at the latest after "
    "{triage_days} days), the safety log after {retention_days} days; only {operator} can see them. Saying no is "
    "fine: the check still works from memory and I won't offer check-ins. /consent shows or withdraws this, /mydata "
    "gives you a copy, /forget deletes everything.",
)


def parse_consent(data: Any, ck: Checker) -> ConsentText | None:
    """Validate consent.yaml: version (short text), text (naming the commands a runner needs), the agree/decline
    button labels (not yes/no: YAML reads those keys as true/false)."""
    root = ck.mapping(data, "the consent file", 1)
    if root is None:
        return None
    ck.keys(root, "the consent file", {"version", "text"}, {"agree", "decline"})
    version = ck.text(root, "version", "the consent file")
    text = ck.text(root, "text", "the consent file")
    yes = ck.text(root, "agree", "the consent file") or "Yes, I agree"
    no = ck.text(root, "decline", "the consent file") or "No thanks"
    if version is not None and not _VERSION.fullmatch(version):
        ck.error(root.line_of("version"), f"version '{version}' must be 1-16 letters, digits, '.', '_' or '-'")
        version = None
    if text is not None:
        line = root.line_of("text")
        for name in _PLACEHOLDER.findall(text):
            if name not in PLACEHOLDERS:
                ck.error(line, f"unknown placeholder {{{name}}} in the consent text (known: {', '.join(PLACEHOLDERS)})")
        for command in _MUST_NAME:
            if command not in text:
                ck.error(line, f"the consent text must say how to use {command}")
    for key, label in (("agree", yes), ("decline", no)):
        if len(label) > 40:
            ck.error(root.line_of(key), f"'{key}' is a button label: at most 40 characters")
    if version is None or text is None or any(p.severity == "error" for p in ck.problems):
        return None
    return ConsentText(version, text, yes, no)
