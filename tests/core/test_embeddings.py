"""The embeddings extra (issue 15): the vectors come from the installed package and never from the network; close
neighbours are re-ranked by meaning; without the extra the bot answers exactly as the lexical matcher does, and
says so in one line."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
from support import KNOWLEDGE, shipped_knowledge

from bot.cli.tools import embeddings_line
from bot.config import Settings
from bot.core import embedding
from bot.core.decision import decide, rerank
from bot.core.faq import Candidate
from bot.core.knowledge import load_knowledge
from bot.core.settings import MatchingSettings

installed = pytest.mark.skipif(not embedding.availability().ok, reason="the embeddings extra is not installed")
REPO = KNOWLEDGE.parent


@pytest.fixture
def fresh_embedder() -> Iterator[None]:
    """Forget the process's loaded embedder before and after a test that fakes the package."""
    embedding._load.cache_clear()
    yield
    embedding._load.cache_clear()


@pytest.fixture(scope="module")
def lexical_knowledge():  # type: ignore[no-untyped-def]
    return load_knowledge(KNOWLEDGE, embeddings=False)


@installed
def test_the_vectors_come_from_the_installed_package_without_the_network() -> None:
    """In a fresh interpreter with every socket refused: the weights and tokenizer are read from the package folder,
    and neither wordllama's loader (which would fall back to a download) nor an HTTP client is imported."""
    code = textwrap.dedent(
        """
        import json, socket, sys

        def refuse(*args, **kwargs):
            raise OSError("no network in this test")

        socket.socket.connect = refuse
        socket.create_connection = refuse
        socket.getaddrinfo = refuse
        from bot.core.decision import decide
        from bot.core.knowledge import load_knowledge
        from bot.core.settings import MatchingSettings

        k = load_knowledge(sys.argv[1])
        d = decide(k, "does skipping the cool down make back pain worse the next day?", MatchingSettings())
        loaded = [m for m in ("wordllama", "requests", "huggingface_hub", "urllib3") if m in sys.modules]
        print(json.dumps({"vectors": k.vectors is not None, "answer": d.candidates[0].id, "loaded": loaded}))
        """
    )
    run = subprocess.run(
        [sys.executable, "-c", code, str(KNOWLEDGE)], capture_output=True, text=True, cwd=REPO, timeout=60, check=True
    )
    found = json.loads(run.stdout)
    assert found == {"vectors": True, "answer": "warm-up-cool-down", "loaded": []}


@installed
def test_close_neighbours_are_ordered_by_meaning_and_keep_the_best_confidence() -> None:
    k = shipped_knowledge()
    m = MatchingSettings()
    close = [
        Candidate("running-shoes", 62.0, 60.0, 50.0),
        Candidate("ice-or-heat", 58.0, 55.0, 50.0),
        Candidate("stretching", 40.0, 38.0, 30.0),  # 22 points behind: outside the window, left where it is
    ]
    out = rerank(k, "should i put an ice pack or a hot water bottle on it", close, m)
    assert [c.id for c in out] == ["ice-or-heat", "running-shoes", "stretching"]
    assert out[0].confidence == 62.0  # re-ranking changes which entry, never how sure the bot is
    assert out[1].confidence == 62.0 and out[2] == close[2]
    # a candidate alone within the window is not re-ranked
    alone = [Candidate("running-shoes", 62.0, 60.0, 50.0), Candidate("ice-or-heat", 40.0, 38.0, 30.0)]
    assert rerank(k, "should i put an ice pack or a hot water bottle on it", alone, m) == alone


@installed
def test_a_neighbour_the_words_cannot_tell_apart(lexical_knowledge) -> None:  # type: ignore[no-untyped-def]
    """A dev-set question the lexical matcher sends to the causes entry; by meaning it is the cool-down one."""
    text = "does skipping the cool down make back pain worse the next day?"
    m = dataclasses.replace(Settings().matching, model=False)  # the words' path, where the embeddings re-rank
    assert decide(lexical_knowledge, text, m).candidates[0].id == "back-pain-causes"
    with_meaning = decide(shipped_knowledge(), text, m)
    assert (with_meaning.kind, with_meaning.candidates[0].id) == ("answer", "warm-up-cool-down")
    # matching.embeddings: false turns the re-ranking off on an install that has the extra
    off = dataclasses.replace(m, embeddings=False)
    assert decide(shipped_knowledge(), text, off).candidates[0].id == "back-pain-causes"


@installed
def test_a_message_mostly_of_words_the_faq_does_not_know_is_not_re_ranked() -> None:
    """The embedding of a question buried in filler is mostly the filler: the words' order stands."""
    k = shipped_knowledge()
    text = "does skipping the cool down make back pain worse the next day? " + "lorem ipsum dolor " * 100
    assert k.matcher.known_share(k.analyzer.terms(text)) < 0.1
    close = [Candidate("back-pain-causes", 62.0, 60.0, 50.0), Candidate("warm-up-cool-down", 58.0, 55.0, 50.0)]
    known = k.matcher.known_share(k.analyzer.terms(text))
    assert [c.id for c in rerank(k, text, close, Settings().matching, known=known)] == [c.id for c in close]


def test_without_the_embeddings_every_shipped_phrasing_gets_the_lexical_answer(lexical_knowledge) -> None:  # type: ignore[no-untyped-def]
    """An install without the extra decides exactly as the lexical matcher does (the same answers as before the
    extra existed), and every shipped phrasing and example still reaches its own entry."""
    assert lexical_knowledge.vectors is None
    k = shipped_knowledge()
    m = Settings().matching
    off = dataclasses.replace(m, embeddings=False)
    for entry in lexical_knowledge.entries.values():
        for text in (*entry.questions, *entry.examples):
            if lexical_knowledge.red_flags.assess(text).alarms:
                continue
            without = decide(lexical_knowledge, text, m)
            assert without == decide(k, text, off), text
            assert (without.kind, without.candidates[0].id) == ("answer", entry.id), text


def test_the_missing_extra_is_said_in_one_line(monkeypatch: pytest.MonkeyPatch, fresh_embedder: None) -> None:
    monkeypatch.setattr(embedding, "_package_folder", lambda: None)
    found = embedding.availability()
    assert not found.ok and "pip install" in found.reason
    assert embedding.shipped_embedder() is None
    k = load_knowledge(KNOWLEDGE)
    assert k.vectors is None
    d = decide(k, "why does my lower back hurt after running", Settings().matching)
    assert (d.kind, d.candidates[0].id) == ("answer", "back-pain-causes")
    line = embeddings_line(Settings())
    assert line.startswith("embeddings: off, the lexical matcher alone (") and "\n" not in line


def test_a_package_without_its_weights_or_with_broken_ones_is_reported(
    monkeypatch: pytest.MonkeyPatch, fresh_embedder: None, tmp_path: Path
) -> None:
    monkeypatch.setattr(embedding, "_package_folder", lambda: tmp_path)
    assert "has no bundled" in embedding.availability().reason
    (tmp_path / "weights").mkdir()
    (tmp_path / "tokenizers").mkdir()
    (tmp_path / embedding.WEIGHTS).write_bytes(b"\x08\x00\x00\x00\x00\x00\x00\x00{broken}")
    (tmp_path / embedding.TOKENIZER).write_text("{}", encoding="utf-8")
    embedding._load.cache_clear()
    found = embedding.availability()
    assert not found.ok and "could not be read" in found.reason
    k = load_knowledge(KNOWLEDGE)  # with the FAQ model the vectors wait for their first use: broken then, never raised
    assert k.vectors is None or not k.vectors.prepare()


@installed
def test_check_says_the_embeddings_are_on_and_checks_both_ways() -> None:
    line = embeddings_line(Settings())
    assert line.startswith("embeddings: on (") and "with and without" in line
    off = dataclasses.replace(Settings(), matching=MatchingSettings(embeddings=False))
    assert embeddings_line(off) == "embeddings: installed but off (matching.embeddings: false)"


@installed
def test_the_embedded_phrasings_are_cached_on_disk_and_a_broken_cache_is_computed_again(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A second process (a fresh embedder) reads the FAQ's vectors and its words' tokens from the cache: no
    tokenizer load for a message of known words, the same similarities; a broken file is just computed again."""
    monkeypatch.setenv("RUNBOT_CACHE_DIR", str(tmp_path))
    folder = embedding._package_folder()
    assert folder is not None
    fresh = lambda: embedding.Embedder(folder / embedding.WEIGHTS, folder / embedding.TOKENIZER)  # noqa: E731
    phrasings = {"a": ["how do i stretch my back", "back stretches"], "b": ["which shoes for a sore back"]}
    first = embedding.EntryVectors(phrasings, fresh)

    def flat(sims: dict[str, tuple[float, float]]) -> list[float]:
        return [x for entry_id in sorted(sims) for x in sims[entry_id]]

    want = flat(first.similarities(["best stretch for the back"]))
    (cached,) = tmp_path.glob("faq-vectors-*.npz")
    second = embedding.EntryVectors(phrasings, fresh)
    assert second.prepare()
    assert second.similarities(["back stretches"])["a"][0] == pytest.approx(1.0, abs=1e-5)
    assert second._ready is not None and second._ready.embedder._tokenizer is None  # known words only
    assert flat(second.similarities(["best stretch for the back"])) == pytest.approx(want, abs=1e-6)
    cached.write_bytes(b"not a cache")
    third = embedding.EntryVectors(phrasings, fresh)
    assert flat(third.similarities(["best stretch for the back"])) == pytest.approx(want, abs=1e-6)
    # another knowledge (other phrasings) gets its own file
    embedding.EntryVectors({"a": ["hamstring stretch"]}, fresh).prepare()
    assert len(list(tmp_path.glob("faq-vectors-*.npz"))) == 2


@installed
def test_a_failure_inside_the_extra_turns_it_off_instead_of_breaking_the_answer(tmp_path: Path) -> None:
    folder = embedding._package_folder()
    assert folder is not None
    broken = tmp_path / "tokenizer.json"
    broken.write_text("{}", encoding="utf-8")
    vectors = embedding.EntryVectors(
        {"a": ["never seen wording"]}, lambda: embedding.Embedder(folder / embedding.WEIGHTS, broken), cache=False
    )
    assert vectors.similarities(["hello there"]) == {}  # the tokenizer cannot be read: off, logged once
    assert not vectors.prepare()
