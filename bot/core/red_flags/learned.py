"""The learned check: a small linear model that asks the safety question on wordings no rule names.

The rules raise alarms and ask on the wordings they know. People describe the same emergencies in words nobody
wrote down ("went grey and clutched his chest", "sorry for everything"), so the check tier also asks when a
softmax regression over the message's words and word pairs, trained on the dev sets (``runbot train-checks``),
puts the chance of a red flag at or above its threshold. It only ever asks (privately, never in a listen
channel); it never raises the alarm, and when a rule
raises one that the model is all but sure is no red flag ("crashed my bike, bike's fine, I'm fine"), the
question is asked instead. Its weights are ``knowledge/red_flags/learned-check.json``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from itertools import pairwise
from typing import Any

NONE_LABEL = "none"
MODEL_FILE = "learned-check.json"
MODEL_VERSION = 1
#: An alarm is turned into the question only when the model knows at least this many of the message's words and
#: word pairs: "I collapsed after 16k" is too short for the model to overrule a rule.
MIN_EVIDENCE_TO_DEMOTE = 10
#: Words too common to tell anything (word pairs keep them: "cant_pee", "my_chest").
STOP_WORDS = frozenset(
    "the a an and or to of in on at for with my me i im its it is was be been this that so but just have has had "
    "do did".split()
)


def features(words: Iterable[str]) -> set[str]:
    """The model's view of a message: its words (no stop words or bare numbers) and each pair of words in a row."""
    ws = list(words)
    found = {w for w in ws if w not in STOP_WORDS and not w.isdigit()}
    found.update(f"{a}_{b}" for a, b in pairwise(ws))
    return found


@dataclass(frozen=True, slots=True)
class Guess:
    """The model's view of one message: the chance of any red flag, the likeliest category, the words that say so."""

    chance: float
    category: str
    words: tuple[str, ...]
    #: how many of the message's words and word pairs the model knows (a short message says little)
    evidence: int = 0


class LearnedCheck:
    """Softmax regression weights: label index -> weight for each feature, and a bias per label."""

    def __init__(
        self,
        labels: tuple[str, ...],
        bias: tuple[float, ...],
        weights: Mapping[str, tuple[tuple[int, float], ...]],
        threshold: float,
        trained_on: tuple[str, ...] = (),
        demote_below: float = 0.0,
    ) -> None:
        self.labels = labels
        self.bias = bias
        self.weights = dict(weights)
        #: ask when no rule fired and the chance of a red flag is at least this
        self.threshold = threshold
        #: ask instead of alarming when a rule fired but the chance is below this (0: never)
        self.demote_below = demote_below
        self.trained_on = trained_on
        self._none = labels.index(NONE_LABEL)
        #: each feature's evidence for a red flag (its weights for the categories minus its weight for none),
        #: worked out on first use
        self._evidence: dict[str, float] = {}

    def guess(self, words: Iterable[str]) -> Guess | None:
        """The likeliest red-flag category with the chance of any red flag; None when no feature is known."""
        z = list(self.bias)
        seen: list[tuple[float, str]] = []
        for f in features(words):
            row = self.weights.get(f)
            if row is None:
                continue
            for j, w in row:
                z[j] += w
            evidence = self._evidence.get(f)
            if evidence is None:
                evidence = self._evidence[f] = sum(-w if j == self._none else w for j, w in row)
            seen.append((evidence, f))
        if not seen:
            return None
        top = max(z)
        exp = [math.exp(v - top) for v in z]
        total = sum(exp)
        best = max((j for j in range(len(z)) if j != self._none), key=lambda j: z[j])
        why = tuple(f for _, f in sorted(seen, reverse=True)[:4])
        return Guess(1.0 - exp[self._none] / total, self.labels[best], why, len(seen))

    def to_json(self) -> dict[str, Any]:
        return {
            "version": MODEL_VERSION,
            "threshold": self.threshold,
            "demote_below": self.demote_below,
            "labels": list(self.labels),
            "bias": [round(b, 4) for b in self.bias],
            "trained_on": list(self.trained_on),
            "weights": {f: [[j, round(w, 3)] for j, w in row] for f, row in sorted(self.weights.items())},
        }


def parse_learned(data: Any, categories: Iterable[str]) -> tuple[LearnedCheck | None, str | None]:
    """The model from its JSON, or the reason it can't be used (an unknown category, a wrong shape)."""
    if not isinstance(data, dict) or data.get("version") != MODEL_VERSION:
        return None, f"not a version {MODEL_VERSION} learned-check model (run `runbot train-checks` again)"
    labels, bias, weights = data.get("labels"), data.get("bias"), data.get("weights")
    threshold = data.get("threshold")
    demote = data.get("demote_below", 0.0)
    if not (
        isinstance(labels, list)
        and all(isinstance(x, str) for x in labels)
        and NONE_LABEL in labels
        and isinstance(bias, list)
        and len(bias) == len(labels)
        and all(isinstance(b, int | float) for b in bias)
        and isinstance(weights, dict)
        and isinstance(threshold, int | float)
        and 0 < threshold < 1
        and isinstance(demote, int | float)
        and 0 <= demote < threshold
    ):
        return None, "the learned-check model is malformed (run `runbot train-checks` again)"
    unknown = sorted(set(labels) - set(categories) - {NONE_LABEL})
    if unknown:
        return None, f"the learned-check model names categories the catalogue lacks: {', '.join(unknown)}"
    rows: dict[str, tuple[tuple[int, float], ...]] = {}
    n = len(labels)
    for f, row in weights.items():
        if not isinstance(row, list) or not all(
            isinstance(p, list) and len(p) == 2 and isinstance(p[0], int) and 0 <= p[0] < n
            and isinstance(p[1], int | float)
            for p in row
        ):
            return None, f"the learned-check model has a malformed weight for {f!r}"
        rows[str(f)] = tuple((int(j), float(w)) for j, w in row)
    trained = data.get("trained_on", [])
    return (
        LearnedCheck(
            tuple(labels),
            tuple(float(b) for b in bias),
            rows,
            float(threshold),
            tuple(str(t) for t in trained) if isinstance(trained, list) else (),
            float(demote),
        ),
        None,
    )
