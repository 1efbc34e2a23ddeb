"""The FAQ model: which entry a message asks about, learned from how runners actually word their questions.

The lexical matcher scores a message against each entry's own phrasings; runners rarely use those words ("hips r
cement after work", "is my marathon build-up why my back hates me"). A softmax regression over the message's
analysed words, word pairs and four-letter pieces of longer words (typos keep most of them), trained on the
phrasings plus the dev sets (``runbot train-faq``), names the entry it asks about, or ``OFF``: not a question this
FAQ answers (another body part, nutrition, club chatter). ``decision.decide`` uses it when it is sure and the
lexical matcher otherwise. Its weights are ``knowledge/faq-model.json``; an entry added after training is unknown
to it, so the lexical matcher keeps deciding for that entry (``runbot check`` says when to train again).
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path
from typing import Any

MODEL_FILE = "faq-model.json"
# Weights are written per feature as one string, "label:weight label:weight": the file loads in a few milliseconds
# (a one-shot ``runbot ask`` reads it every time), and only a message's own features are split.
MODEL_VERSION = 1
#: the label of messages this FAQ does not answer
OFF = "_off"
#: words at least this long also count by their four-letter pieces ("stretchs" still shares "stre", "tret")
PIECE_FROM = 5


def features(stems: Sequence[str]) -> set[str]:
    """The model's view of a message (``Analyzer.stems``): its words, each pair of words in a row, and the
    four-letter pieces of its longer words."""
    found = set(stems)
    found.update(f"{a}_{b}" for a, b in pairwise(stems))
    for w in stems:
        if len(w) >= PIECE_FROM:
            found.update("#" + w[i : i + 4] for i in range(len(w) - 3))
    return found


def fingerprint(entries: Mapping[str, Sequence[str]]) -> str:
    """A digest of the entries and their phrasings: it changes when moderators change the FAQ."""
    h = hashlib.sha256()
    for eid in sorted(entries):
        h.update(eid.encode())
        for q in entries[eid]:
            h.update(b"\0" + q.encode())
        h.update(b"\1")
    return h.hexdigest()[:16]


@dataclass(frozen=True, slots=True)
class FaqGuess:
    """The model's ranking for one message: (label, chance) best first; ``OFF`` is one of the labels."""

    ranked: tuple[tuple[str, float], ...]

    @property
    def label(self) -> str:
        return self.ranked[0][0]

    @property
    def chance(self) -> float:
        return self.ranked[0][1]

    def entries(self, at_least: float) -> list[tuple[str, float]]:
        """The entries (not ``OFF``) with at least this chance, best first."""
        return [(label, p) for label, p in self.ranked if label != OFF and p >= at_least]


class FaqModel:
    """Softmax regression weights: feature -> "label:weight ..." (label index, weight), a bias per label."""

    def __init__(
        self,
        labels: Sequence[str],
        bias: Sequence[float],
        weights: Mapping[str, str],
        *,
        trained_on: str = "",
        sources: Sequence[str] = (),
    ) -> None:
        self.labels = tuple(labels)
        self.knows = frozenset(self.labels)
        self.bias = tuple(bias)
        self.weights = weights
        #: ``fingerprint`` of the FAQ it was trained on
        self.trained_on = trained_on
        self.sources = tuple(sources)
        #: rows split on first use (a one-shot ask splits a few dozen; a running bot keeps what it has met)
        self._split: dict[str, tuple[tuple[int, float], ...]] = {}
        self._kept_for: tuple[frozenset[str], tuple[int, ...]] | None = None

    def guess(self, stems: Sequence[str], known: Iterable[str] | None = None) -> FaqGuess:
        """The labels ranked for a message's stems; with ``known`` (the entry ids in the knowledge) the labels of
        entries no longer there are dropped and the chances renormalised."""
        z = list(self.bias)
        for f in features(stems):
            row = self._split.get(f)
            if row is None:
                row = self._split[f] = self._row(f)
            for j, w in row:
                z[j] += w
        kept = range(len(z)) if known is None else self._kept(known)
        top = max(z[j] for j in kept)
        exp = [(self.labels[j], math.exp(z[j] - top)) for j in kept]
        total = sum(e for _, e in exp)
        return FaqGuess(tuple(sorted(((label, e / total) for label, e in exp), key=lambda le: -le[1])))

    def _kept(self, known: Iterable[str]) -> tuple[int, ...]:
        """The indexes of the labels still in the knowledge (and ``OFF``), remembered for the last set asked."""
        ids = frozenset(known)
        if self._kept_for is None or self._kept_for[0] != ids:
            keep = ids | {OFF}
            self._kept_for = (ids, tuple(j for j, label in enumerate(self.labels) if label in keep))
        return self._kept_for[1]

    def _row(self, feature: str) -> tuple[tuple[int, float], ...]:
        """A feature's weights, split; label indexes are checked here, not at load (a one-shot ask reads the file
        and asks once)."""
        n = len(self.bias)
        return tuple((j, w) for j, w in _pairs(self.weights.get(feature, "")) if 0 <= j < n)

    def to_json(self) -> dict[str, Any]:
        return {
            "version": MODEL_VERSION,
            "about": "runbot's FAQ model, written by `runbot train-faq` (see bot/core/faq_model.py); do not edit",
            "trained_on": self.trained_on,
            "sources": list(self.sources),
            "labels": list(self.labels),
            "bias": [round(b, 4) for b in self.bias],
            "weights": dict(sorted(self.weights.items())),
        }


def encode(row: Iterable[tuple[int, float]]) -> str:
    """One feature's weights as stored: "label:weight label:weight"."""
    return " ".join(f"{j}:{round(w, 4):g}" for j, w in row)


def _pairs(row: str) -> Iterable[tuple[int, float]]:
    for item in row.split():
        j, _, w = item.partition(":")
        try:
            yield int(j), float(w)
        except ValueError:  # a hand-edited file: the feature counts for nothing rather than breaking an answer
            continue


def parse_faq_model(data: Any) -> tuple[FaqModel | None, str | None]:
    """The model from its JSON, or (None, the problem)."""
    try:
        if not isinstance(data, dict) or data.get("version") != MODEL_VERSION:
            return None, f"the FAQ model is not version {MODEL_VERSION} (train it again with runbot train-faq)"
        labels = [str(x) for x in data["labels"]]
        bias = [float(x) for x in data["bias"]]
        n = len(labels)
        if len(bias) != n or OFF not in labels:
            return None, "the FAQ model's labels and bias do not match"
        weights = data["weights"]  # feature -> "label:weight ...", split only for a message's own features
        if not isinstance(weights, dict) or not all(isinstance(v, str) for v in weights.values()):
            return None, "the FAQ model's weights are not a mapping of feature to text"
        model = FaqModel(
            labels, bias, weights, trained_on=str(data.get("trained_on", "")), sources=data.get("sources", [])
        )
        return model, None
    except (KeyError, TypeError, ValueError) as exc:
        return None, f"the FAQ model is malformed ({type(exc).__name__}: {exc})"


def read_faq_model(path: Path) -> tuple[FaqModel | None, bytes, str | None]:
    """The model in ``path`` (None when there is none), its bytes (they count in the knowledge version) and the
    problem reading it, if any: a broken model is reported and the lexical matcher decides alone."""
    if not path.exists():
        return None, b"", None
    try:
        raw = path.read_bytes()
        model, problem = parse_faq_model(json.loads(raw))
    except (OSError, ValueError) as exc:
        return None, b"", f"the FAQ model could not be read ({exc})"
    return model, raw, problem


def stale_warning(model: FaqModel, entries: Mapping[str, Sequence[str]]) -> str | None:
    """What ``runbot check`` says when the FAQ changed since the model was trained (it still answers for the
    entries it knows; the lexical matcher decides for the others)."""
    if model.trained_on == fingerprint(entries):
        return None
    unknown = sorted(set(entries) - set(model.labels))
    new = f" (entries it does not know: {', '.join(unknown)})" if unknown else ""
    return (
        f"the FAQ changed since {MODEL_FILE} was trained{new}; train it again from the project folder: "
        "runbot train-faq tests/data/train/*.jsonl tests/data/dev/faq_*.jsonl"
    )
