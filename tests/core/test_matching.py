"""Normalization, stemming, synonyms and the matcher's scoring."""

from __future__ import annotations

import dataclasses
import json

import pytest
from support import KNOWLEDGE, shipped_knowledge

from bot.core.analysis import Analyzer, stem
from bot.core.embedding import availability
from bot.core.faq import FaqMatcher, IndexedEntry
from bot.core.text import normalize


def test_normalize() -> None:
    assert normalize("Why does my LOWER back hurt?? 😭😭") == "why does my lower back hurt"
    assert normalize("I can\u2019t feel my groin") == "i cant feel my groin"
    assert normalize("sooooo sore") == "soo sore"
    assert normalize("z\u200bero\u202e") == "zero"
    assert normalize("ＦＵＬＬ width") == "full width"
    assert normalize("") == ""


def test_stemming_joins_word_forms() -> None:
    assert stem("running") == stem("runs") == "run"
    assert stem("stretches") == stem("stretching") == "stretch"
    assert stem("strides") == stem("striding")


def test_synonyms_rewrite_variants() -> None:
    a = Analyzer({"running": ["jogging", "jog"], "lower back": ["lumbar"], "shoes": ["trainers", "sneakers"]})
    assert a.terms("my lumbar hurts after jogging") == ["lower", "back", "hurt", "run"]
    assert a.terms("worn out trainers") == a.terms("worn out shoes")


def test_rare_topical_words_outweigh_common_ones() -> None:
    entries = [
        IndexedEntry("cadence", ("how do i raise my cadence when running", "back pain and running cadence")),
        IndexedEntry("shoes", ("which running shoes for back pain", "are my running shoes causing back pain")),
        IndexedEntry("rest", ("should i rest my back from running", "running with back pain")),
    ]
    m = FaqMatcher(entries, Analyzer({}))
    top = m.match("my back hurts, is my cadence too low")
    assert top[0].id == "cadence"
    assert m.match("cadance")[0].id == "cadence"  # typo tolerance
    assert m.match("completely unrelated words here") == []


def test_shipped_index_is_built_once_and_reused() -> None:
    k = shipped_knowledge()
    first = k.matcher.match("which shoes help a sore back")
    again = k.matcher.match("which shoes help a sore back")
    assert first == again and first[0].id in ("running-shoes", "shoe-replacement")


# Issue 15: the FAQ dev sets, through the real decision (decide), not below what they reached. faq_blind_b counts as
# a dev set since its figures were read. (faq_dev's one miss is "/help", a command the engine answers before the FAQ.)
# Two floors per set for the words (the FAQ model switched off): the lexical matcher alone (an install without the
# embeddings extra, or matching.embeddings false), and with the embeddings' re-ranking of close neighbours (skipped
# only where the extra is not installed). The shipped default, with the FAQ model (trained on all of these), has its
# own floors; its held-out figure is tests/core/test_faq_model.py's slow test.
DATA = KNOWLEDGE.parent / "tests" / "data"
#: set -> (top-1, rejection) floors for each path: "words" (lexical alone), "embeddings" (lexical + re-ranking),
#: "model" (the shipped default: the FAQ model first)
FLOORS = {
    "dev/faq_dev.jsonl": {"words": (0.98, 1.0), "embeddings": (0.98, 1.0), "model": (0.98, 1.0)},
    "dev/faq_holdout.jsonl": {"words": (0.99, 1.0), "embeddings": (0.99, 1.0), "model": (0.99, 1.0)},
    "dev/faq_holdout2.jsonl": {"words": (1.0, 1.0), "embeddings": (1.0, 1.0), "model": (1.0, 1.0)},
    "dev/faq_blind_a.jsonl": {"words": (0.92, 0.92), "embeddings": (0.93, 0.92), "model": (0.98, 0.98)},
    "dev/faq_blind_b.jsonl": {"words": (0.82, 0.97), "embeddings": (0.86, 0.97), "model": (0.98, 0.98)},
}
PATHS = {"words": {"embeddings": False, "model": False}, "embeddings": {"model": False}, "model": {}}


def _figures(name: str, *, embeddings: bool = True, model: bool = True) -> tuple[float, float]:
    from bot.config import Settings
    from bot.core.decision import decide

    k = shipped_knowledge()
    m = dataclasses.replace(Settings().matching, embeddings=embeddings, model=model)
    rows = [json.loads(line) for line in (DATA / name).read_text(encoding="utf-8").splitlines() if line.strip()]
    right = total = rejected = off = 0
    for row in rows:
        d = decide(k, row["text"], m)
        got = d.candidates[0].id if d.kind == "answer" else None
        if row["faq_id"] is None:
            off += 1
            rejected += got is None
        else:
            total += 1
            right += got in {row["faq_id"], *row.get("accept_faq", [])}
    return right / total, rejected / off


@pytest.mark.parametrize(("name", "path"), [(name, path) for name in sorted(FLOORS) for path in PATHS])
def test_faq_dev_sets_keep_their_figures(name: str, path: str) -> None:
    if path == "embeddings":
        if not availability().ok:
            pytest.skip("the embeddings extra is not installed")
        assert shipped_knowledge().vectors is not None
    if path == "model":
        assert shipped_knowledge().faq_model is not None
    top1, rejection = _figures(name, **PATHS[path])
    top1_floor, rejection_floor = FLOORS[name][path]
    assert top1 >= top1_floor, top1
    assert rejection >= rejection_floor, rejection
