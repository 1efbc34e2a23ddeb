"""``runbot train-faq``: fit the FAQ model (``knowledge/faq-model.json``) to the FAQ and the dev sets.

The training lines are every entry's phrasings (its label), the club-chatter lines (``OFF``) and each JSONL file's
``{"text", "faq_id"}`` lines (``faq_id: null`` is ``OFF``; lines without ``faq_id``, such as red-flag sets, are
skipped). Train on dev sets only, never on ``tests/data/blind/``: those measure what the model learnt.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from bot.core.faq_model import OFF, FaqModel, encode, features, fingerprint
from bot.core.knowledge import Knowledge
from bot.softmax import fit_averaged, kept

#: a feature seen in fewer training lines than this is dropped (one-off names and typos only add noise)
MIN_LINES = 2
#: weights smaller than this are not written (the file stays small; the answers do not change)
PRUNE_BELOW = 0.02
#: trainings averaged (each with its own line order): held out, their mean beat a single run by 0.5-1 point
SEEDS = (1, 2, 3)


@dataclass(frozen=True, slots=True)
class TrainingSet:
    rows: tuple[tuple[tuple[str, ...], str], ...]
    sources: tuple[str, ...]
    #: ``fingerprint`` of the FAQ the lines were read with
    faq: str = ""


def faq_fingerprint(k: Knowledge) -> str:
    return fingerprint({e.id: e.questions for e in k.entries.values()})


def training_set(k: Knowledge, files: Sequence[Path]) -> TrainingSet:
    """The phrasings, the chatter and the files' FAQ lines as (stems, label); an unknown ``faq_id`` is an error."""
    texts = [(q, e.id) for e in k.entries.values() for q in (*e.questions, *e.examples)]
    texts += [(q, OFF) for q in k.chatter]
    for path in files:
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if not line.strip():
                continue
            row = json.loads(line)
            if "faq_id" not in row:
                continue
            label = row["faq_id"] or OFF
            if label != OFF and label not in k.entries:
                raise ValueError(f"{path}:{n}: unknown faq_id {label!r}")
            texts.append((row["text"], label))
    rows = [(tuple(stems), label) for text, label in texts if (stems := k.analyzer.stems(text))]
    return TrainingSet(tuple(rows), tuple(str(f) for f in files), faq_fingerprint(k))


def train(
    data: TrainingSet, *, epochs: int = 15, rate: float = 0.3, l2: float = 1e-4, seeds: Sequence[int] = SEEDS
) -> FaqModel:
    """Plain stochastic gradient descent on the softmax loss with L2, once per seed, weights averaged
    (``bot.softmax.fit_averaged``)."""
    labels = tuple(sorted({label for _, label in data.rows} | {OFF}))
    weights, bias = fit_averaged(
        data.rows, features, labels, seeds=seeds, epochs=epochs, rate=rate, decay=0.75, l2=l2, min_lines=MIN_LINES
    )
    rows = {f: encode(row) for f, row in kept(weights, PRUNE_BELOW)}
    return FaqModel(labels, bias, rows, trained_on=data.faq, sources=data.sources)


def write_model(model: FaqModel, out: Path) -> None:
    out.write_text(json.dumps(model.to_json(), separators=(",", ":")) + "\n", encoding="utf-8")


def summary(model: FaqModel, data: TrainingSet) -> Iterable[str]:
    """What was learnt, and how many training lines the model itself gets right (a sanity check, not a figure)."""
    right = sum(model.guess(stems).label == label for stems, label in data.rows)
    per = Counter(label for _, label in data.rows)
    yield f"trained on {len(data.rows)} lines ({len(per) - 1} entries, {per[OFF]} not for this FAQ)"
    yield f"{len(model.weights)} features; {right}/{len(data.rows)} training lines named right"
