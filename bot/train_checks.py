"""``runbot train-checks``: fit the learned check (a softmax regression) on dev sets and the knowledge itself.

Training lines: every line of the given JSON-lines files (``category`` for red flags, ``none`` otherwise), the
red-flag ``examples``/``check_examples`` (their category) and ``not`` lines, every FAQ phrasing and every chatter
line (``none``). Deterministic: the same files give the same weights. Never give it a blind set: a set the model
was trained on is a dev set from then on.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from bot.core.knowledge import Knowledge
from bot.core.red_flags.learned import NONE_LABEL, LearnedCheck, features
from bot.softmax import fit, kept

#: Chance of a red flag at or above which the learned check asks (chosen on held-out dev sets; see README).
DEFAULT_THRESHOLD = 0.5
#: Chance below which a rule's alarm becomes the question (chosen on held-out dev sets: no alarm lost there).
DEFAULT_DEMOTE_BELOW = 0.1
#: Weights smaller than this are dropped from the file (they change no decision; the file stays small).
PRUNE_BELOW = 0.02
#: A word or word pair seen in fewer training lines than this is not a feature (one line proves nothing).
MIN_LINES = 2


@dataclass(frozen=True, slots=True)
class TrainingSet:
    """(message words, label) pairs and where they came from."""

    rows: tuple[tuple[tuple[str, ...], str], ...]
    sources: tuple[str, ...]


def training_set(k: Knowledge, files: Sequence[Path]) -> TrainingSet:
    """The labelled lines of ``files`` plus the knowledge's own examples, phrasings and chatter."""
    det = k.red_flags
    texts: list[tuple[str, str]] = []
    for path in sorted(files, key=lambda p: p.name):  # the same files give the same model wherever they are
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
                text = row["text"]
            except (ValueError, KeyError, TypeError) as exc:
                raise ValueError(f"{path}:{n}: not a JSON object with 'text' ({exc})") from None
            label = row.get("category") if row.get("escalation", "none") != "none" else NONE_LABEL
            if label not in det.categories and label != NONE_LABEL:
                continue  # a category the catalogue does not have (yet): no question to ask for it
            texts.append((text, label or NONE_LABEL))
    for cat in det.categories.values():
        texts += [(x, cat.id) for x in (*cat.examples, *cat.check_examples)]
        texts += [(x, NONE_LABEL) for x in cat.quiet]
    texts += [(q, NONE_LABEL) for e in k.entries.values() for q in e.questions]
    texts += [(q, NONE_LABEL) for q in k.chatter]
    rows = []
    for text, label in texts:
        toks = det.words(text)
        if toks is not None:
            rows.append((tuple(toks.words), label))
    return TrainingSet(tuple(rows), tuple(str(f) for f in files))


def train(
    data: TrainingSet,
    *,
    epochs: int = 12,
    rate: float = 0.2,
    l2: float = 1e-4,
    seed: int = 1,
    threshold: float = DEFAULT_THRESHOLD,
    demote_below: float = DEFAULT_DEMOTE_BELOW,
) -> LearnedCheck:
    """Plain stochastic gradient descent on the softmax loss with L2; the learning rate shrinks each epoch."""
    labels = tuple(sorted({label for _, label in data.rows} | {NONE_LABEL}))
    weights, bias = fit(
        data.rows, features, labels, epochs=epochs, rate=rate, decay=0.7, l2=l2, seed=seed, min_lines=MIN_LINES
    )
    nonzero = {f: tuple(row) for f, row in kept(weights, PRUNE_BELOW)}
    return LearnedCheck(labels, tuple(bias), nonzero, threshold, data.sources, demote_below)


def write_model(model: LearnedCheck, out: Path) -> None:
    """Atomically: a half-written model must never be loaded by a running bot's reload."""
    tmp = out.with_suffix(".tmp")
    tmp.write_text(json.dumps(model.to_json(), separators=(",", ":"), sort_keys=True) + "\n", encoding="utf-8")
    tmp.replace(out)


def summary(model: LearnedCheck, data: TrainingSet) -> Iterable[str]:
    flags = sum(1 for _, label in data.rows if label != NONE_LABEL)
    yield f"trained on {len(data.rows)} lines ({flags} red flags, {len(data.rows) - flags} not)"
    yield (
        f"{len(model.weights)} features, {len(model.labels) - 1} categories, asks at {model.threshold}, "
        f"turns an alarm into the question below {model.demote_below}"
    )
