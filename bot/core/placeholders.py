"""Localisation: the one place that knows the placeholder names, the regional presets and how to fill them.

Knowledge text (FAQ answers, triage questions and outcomes, red-flag messages and check questions) and the bot's
own replies write ``{emergency_number}``, ``{crisis_line}``, ``{emergency_department}``, ``{urgent_care}``,
``{family_doctor}`` and ``{physio_register}``; ``fill`` puts in the values of ``safety.region`` (a preset below)
with any key set explicitly in the config taking precedence.

How the values read in a sentence (every preset keeps to this, so one text works for every region):
- ``call {emergency_number}``; ``talk to {crisis_line} now``; ``go to {emergency_department}`` (the value carries
  its own article when the region needs one: "A&E", "the emergency room (ER)");
- ``contact {urgent_care}`` / ``(your {family_doctor}, or {urgent_care})``: a service with its own article;
- ``a {family_doctor}`` / ``your {family_doctor}``: a bare noun ("GP", "family doctor"), never with an article;
- ``check they are on {physio_register}``: the register with its article.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Protocol


class Places(Protocol):
    """Where to send people, one value per placeholder (``bot.core.settings.SafetySettings``, which builds on this
    module's presets)."""

    emergency_number: str
    crisis_line: str
    emergency_department: str
    urgent_care: str
    family_doctor: str
    physio_register: str


#: every placeholder knowledge text and code-written replies may use, in the order the settings list them
NAMES: tuple[str, ...] = (
    "emergency_number",
    "crisis_line",
    "emergency_department",
    "urgent_care",
    "family_doctor",
    "physio_register",
)

DEFAULT_REGION = "uk"

#: sources: NHS "When to call 999 / 111"; HCPC; HSE (Ireland) "Emergency departments"; CORU; 988lifeline.org;
#: 988.ca; Health Canada provincial 811 lines; Lifeline Australia; healthdirect; Ahpra; the EU's 112, 116 117 and
#: 116 123 harmonised numbers (europa.eu). Where a country varies inside a region, the value stays generic.
PRESETS: Mapping[str, Mapping[str, str]] = {
    "uk": {
        "emergency_number": "999",
        "crisis_line": "Samaritans on 116 123 (UK and Ireland, free, 24/7)",
        "emergency_department": "A&E",
        "urgent_care": "NHS 111 (call 111 or go to 111.nhs.uk)",
        "family_doctor": "GP",
        "physio_register": "the HCPC register of physiotherapists",
    },
    "ie": {
        "emergency_number": "112 or 999",
        "crisis_line": "Samaritans on 116 123 (free, 24/7)",
        "emergency_department": "the emergency department (ED)",
        "urgent_care": "a GP out-of-hours service",
        "family_doctor": "GP",
        "physio_register": "the CORU register of physiotherapists",
    },
    "us": {
        "emergency_number": "911",
        "crisis_line": "the 988 Suicide & Crisis Lifeline (call or text 988)",
        "emergency_department": "the emergency room (ER)",
        "urgent_care": "an urgent care clinic",
        "family_doctor": "primary care doctor",
        "physio_register": "your state's online license lookup for physical therapists",
    },
    "ca": {
        "emergency_number": "911",
        "crisis_line": "9-8-8, the Suicide Crisis Helpline (call or text 988, 24/7)",
        "emergency_department": "the emergency department (ER)",
        "urgent_care": "a walk-in clinic or your province's health line (811 where available)",
        "family_doctor": "family doctor",
        "physio_register": "the register of your province's college of physiotherapists",
    },
    "au": {
        "emergency_number": "000",
        "crisis_line": "Lifeline on 13 11 14 (24/7)",
        "emergency_department": "the emergency department (ED)",
        "urgent_care": "a Medicare Urgent Care Clinic or a nurse health line such as healthdirect (1800 022 222)",
        "family_doctor": "GP",
        "physio_register": "the Ahpra register of practitioners",
    },
    "eu": {
        "emergency_number": "112",
        "crisis_line": "a crisis line in your country (116 123 in some EU countries; findahelpline.com lists them)",
        "emergency_department": "the emergency department",
        "urgent_care": "an out-of-hours doctor service (116 117 in some countries)",
        "family_doctor": "family doctor",
        "physio_register": "your country's register of physiotherapists",
    },
}
REGIONS: tuple[str, ...] = tuple(PRESETS)
#: Regions whose own health services the shipped sources are (the NHS, NICE, the CSP): there an answer's citation is
#: given as written; elsewhere a web citation is shown as its address, so a runner in the US is not told about
#: "NHS ..." as if it were their service, and can still open the page.
SOURCE_HOME_REGIONS = frozenset({"uk", "ie"})

_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")

#: words that only make sense in one region: outside a placeholder they are a lint warning in answer, triage and
#: red-flag text (source fields and URLs are exempt)
REGION_WORDS = re.compile(r"(?<![\w/.])(?:999|111|NHS|GPs?|HCPC|A&E)(?![\w&])|\bco-codamol\b", re.IGNORECASE)
#: what to write instead of each region word
INSTEAD: Mapping[str, str] = {
    "999": "{emergency_number}",
    "A&E": "{emergency_department}",
    "NHS": "{urgent_care}",
    "111": "{urgent_care}",
    "GP": "{family_doctor}",
    "GPs": "{family_doctor}s",
    "HCPC": "{physio_register}",
    "co-codamol": "codeine combined with paracetamol",
}
_CASE_SENSITIVE = frozenset({"NHS", "GP", "GPS", "HCPC", "A&E"})
_URL = re.compile(r"\b(?:https?://|www\.)\S+|\b[\w-]+(?:\.[\w-]+)*\.(?:uk|com|org|ie|ca|au|eu|gov)\b(?:/\S*)?")


def values(safety: Places) -> dict[str, str]:
    """The value of every placeholder for these settings (the preset already merged in by the settings)."""
    return {name: getattr(safety, name) for name in NAMES}


def fill(text: str, safety: Places) -> str:
    """``text`` with every known placeholder replaced; an unknown one stays as written (``runbot check`` flags it).

    Not ``str.format``: a stray brace in moderators' text never raises and never reads attributes.
    """
    vals = values(safety)
    return _PLACEHOLDER.sub(lambda m: vals.get(m.group(1), m.group(0)), text)


def unknown(text: str) -> list[str]:
    """Placeholder names in ``text`` that ``fill`` does not know."""
    return [name for name in _PLACEHOLDER.findall(text) if name not in NAMES]


def used(text: str) -> list[str]:
    """Known placeholder names in ``text``."""
    return [name for name in _PLACEHOLDER.findall(text) if name in NAMES]


def stray_brace(text: str) -> bool:
    """Whether ``text`` has a ``{`` or ``}`` that is not part of a ``{name}``."""
    bare = _PLACEHOLDER.sub("", text)
    return "{" in bare or "}" in bare


def region_words(text: str) -> list[str]:
    """Region-specific words written outside placeholders and URLs, in order of appearance."""
    bare = _URL.sub(" ", _PLACEHOLDER.sub(" ", text))
    found: list[str] = []
    for m in REGION_WORDS.finditer(bare):
        word = m.group(0)
        if word.upper() in _CASE_SENSITIVE and word not in ("NHS", "GP", "GPs", "HCPC", "A&E"):
            continue  # "gp" or "nhs" in lower case is not the acronym
        if word not in found:
            found.append(word)
    return found
