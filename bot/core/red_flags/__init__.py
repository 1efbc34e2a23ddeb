"""Red-flag detection: finds messages that describe an emergency (alarm) or might (check).

The catalogue (``knowledge/red_flags/``) is written in a small pattern language documented in
``knowledge/red_flags/README.md``: terms (words and phrases with ``*``, ``_``, ``..``, ``#`` and ``a|b``),
concepts (named lists of terms) and rules (concepts that must all be present and count). A category fires in the
*alarm* tier when one of its ``rules`` fires, and in the *check* tier when only one of its ``check_rules`` does.

A term counts only in its context (:mod:`bot.core.red_flags.context`): not negated, not hypothetical, not
another person's past, not figurative ("my pace collapsed", "suicide sprints", "18 kms").

Modules: ``tokens`` (text to words), ``lexicon`` (variants and stated ages), ``patterns`` (the compiled matcher),
``vocabulary`` (the special concepts and records), ``negation`` and ``context`` (whether a term counts, or only
might), ``detector`` (the two tiers, explain), ``learned`` (the learned check) and ``loader`` with ``builder`` and
``context_loader`` (YAML to detector, every problem with its line).
"""

from bot.core.red_flags.detector import (
    LEVELS,
    Assessment,
    Explanation,
    RedFlagCategory,
    RedFlagDetector,
    RuleHit,
    TermFound,
)
from bot.core.red_flags.loader import parse_red_flag_docs, parse_red_flags
from bot.core.red_flags.tokens import MAX_SCAN_CHARS

__all__ = [
    "LEVELS",
    "MAX_SCAN_CHARS",
    "Assessment",
    "Explanation",
    "RedFlagCategory",
    "RedFlagDetector",
    "RuleHit",
    "TermFound",
    "parse_red_flag_docs",
    "parse_red_flags",
]
