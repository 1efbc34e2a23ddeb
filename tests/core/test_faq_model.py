"""The FAQ model (knowledge/faq-model.json): names the entry when it is sure, leaves the rest to the words, and
never answers for an entry it does not know."""

from __future__ import annotations

import dataclasses
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from support import DATA, KNOWLEDGE, shipped_knowledge

from bot.config import Settings
from bot.core.decision import decide
from bot.core.faq_model import MODEL_FILE, OFF, FaqModel, features, parse_faq_model
from bot.core.knowledge import load_knowledge
from bot.train_faq import train, training_set

ROOT = KNOWLEDGE.parent
TRAIN = DATA.parent / "train"  # the FAQ model's training lines
MATCHING = Settings().matching
LEXICAL = dataclasses.replace(MATCHING, model=False)


def _copy(tmp_path: Path) -> Path:
    folder = tmp_path / "knowledge"
    shutil.copytree(KNOWLEDGE, folder)
    return folder


def test_the_shipped_model_was_trained_on_the_shipped_faq() -> None:
    k = shipped_knowledge()
    assert k.faq_model is not None
    assert set(k.faq_model.labels) == {*k.entries, OFF}
    assert not [w for w in k.warnings if w.file == MODEL_FILE]  # no "train it again" warning


def test_typos_and_word_forms_keep_most_of_their_features() -> None:
    k = shipped_knowledge()
    clean = features(k.analyzer.stems("what stretches should i do after running, my back is tight"))
    typed = features(k.analyzer.stems("wat stretchs shud i do aftr runnin my bak is v tite"))
    assert {f for f in typed if f.startswith("#")} & {f for f in clean if f.startswith("#")}


def test_a_sure_model_answers_and_offers_what_came_close() -> None:
    k = shipped_knowledge()
    assert k.faq_model is not None
    hits = 0
    for entry in k.entries.values():
        for q in entry.questions:
            guess = k.faq_model.guess(k.analyzer.stems(q), known=k.entries)
            d = decide(k, q, MATCHING)
            if guess.chance >= MATCHING.model_answer and guess.label == entry.id and d.kind == "answer":
                hits += 1
                assert d.candidates[0].id == entry.id
                assert all(c != entry.id for c in d.runners_up)
                assert len(d.runners_up) <= MATCHING.max_suggestions - 1
    assert hits > 100


def test_switched_off_the_words_decide_alone(tmp_path: Path) -> None:
    folder = _copy(tmp_path)
    (folder / MODEL_FILE).unlink()
    without = load_knowledge(folder)
    assert without.faq_model is None
    shipped = shipped_knowledge()
    rows = [json.loads(line) for line in (DATA / "faq_blind_b.jsonl").read_text(encoding="utf-8").splitlines()]
    for row in rows[:60]:
        a, b = decide(shipped, row["text"], LEXICAL), decide(without, row["text"], MATCHING)
        assert (a.kind, [c.id for c in a.candidates]) == (b.kind, [c.id for c in b.candidates])


def test_an_entry_added_after_training_is_answered_by_the_words_and_reported(tmp_path: Path) -> None:
    folder = _copy(tmp_path)
    extra = folder / "faq-zz-new.yaml"
    extra.write_text(
        "entries:\n"
        "  - id: treadmill-incline\n"
        "    questions:\n"
        "      - what treadmill incline setting is kindest to a sore lower back\n"
        "      - which incline should i set on the treadmill for my back\n"
        "    answer: Many runners use a gentle incline of about 1 percent.\n",
        encoding="utf-8",
    )
    k = load_knowledge(folder)
    # a warning of the knowledge: runbot check prints it (bot.lint.lint starts from k.warnings), --strict fails on it
    [warning] = [w for w in k.warnings if w.file == MODEL_FILE]
    assert warning.severity == "warning"
    assert "treadmill-incline" in warning.message and "runbot train-faq" in warning.message
    d = decide(k, "which incline should i set on the treadmill for my back", MATCHING)
    assert d.kind == "answer" and d.candidates[0].id == "treadmill-incline"


def test_a_removed_entry_is_never_answered(tmp_path: Path) -> None:
    k = shipped_knowledge()
    assert k.faq_model is not None
    gone = "hyperlordosis"
    kept = {eid: e for eid, e in k.entries.items() if eid != gone}
    for q in k.entries[gone].questions:
        guess = k.faq_model.guess(k.analyzer.stems(q), known=kept)
        assert gone not in {label for label, _ in guess.ranked}
        assert abs(sum(p for _, p in guess.ranked) - 1.0) < 1e-9


@pytest.mark.parametrize(
    ("content", "says"),
    [
        ("{not json", "could not be read"),
        ('{"version": 99}', "not version 1"),
        ('{"version": 1, "labels": ["a"], "bias": [0.0, 1.0], "weights": {}}', "do not match"),
    ],
)
def test_a_broken_model_is_a_warning_and_the_words_decide(tmp_path: Path, content: str, says: str) -> None:
    folder = _copy(tmp_path)
    (folder / MODEL_FILE).write_text(content, encoding="utf-8")
    k = load_knowledge(folder)
    assert k.faq_model is None
    [warning] = [w for w in k.warnings if w.file == MODEL_FILE]
    assert says in warning.message
    d = decide(k, "why does my lower back hurt after running?", MATCHING)
    assert d.kind == "answer" and d.candidates[0].id == "back-pain-causes"


def test_a_model_naming_a_label_that_does_not_exist_does_not_break_a_guess() -> None:
    model, problem = parse_faq_model(
        {"version": 1, "labels": ["x", OFF], "bias": [0.0, 0.0], "weights": {"back": "0:2 7:9 1:oops", "x": "1:1"}}
    )
    assert problem is None and model is not None
    assert model.guess(["back"]).label == "x"


def test_train_faq_learns_the_files_and_refuses_an_unknown_id(tmp_path: Path) -> None:
    k = shipped_knowledge()
    lines = tmp_path / "lines.jsonl"
    lines.write_text(
        "\n".join(
            json.dumps({"text": t, "faq_id": fid, "escalation": "none"})
            for t, fid in [
                ("spine feels like a question mark after parkrun, is my posture the culprit", "running-form"),
                ("how long till my achilles calms down", None),
            ]
        ),
        encoding="utf-8",
    )
    data = training_set(k, [lines])
    assert (tuple(k.analyzer.stems("how long till my achilles calms down")), OFF) in data.rows
    model = train(data, epochs=3)
    assert set(model.labels) == {*k.entries, OFF}
    assert model.trained_on == data.faq
    lines.write_text(json.dumps({"text": "x y z", "faq_id": "no-such-entry"}) + "\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"lines.jsonl:1: unknown faq_id 'no-such-entry'"):
        training_set(k, [lines])
    out = subprocess.run(
        [sys.executable, "-m", "bot", "train-faq", str(lines), "--out", str(tmp_path / "m.json")],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
        check=False,
    )
    assert out.returncode == 1 and "unknown faq_id" in out.stderr and not (tmp_path / "m.json").exists()


@pytest.mark.slow
def test_trained_without_a_dev_set_the_model_still_answers_most_of_it() -> None:
    """Generalisation, not memory: faq_blind_b held out of training (it was 82% for the words alone)."""
    k = shipped_knowledge()
    held = DATA / "faq_blind_b.jsonl"
    files = [p for p in sorted([*DATA.glob("faq_*.jsonl"), *TRAIN.glob("*.jsonl")]) if p != held]
    model = train(training_set(k, files))
    k_held = dataclasses.replace(k, faq_model=model)
    rows = [json.loads(line) for line in held.read_text(encoding="utf-8").splitlines()]
    inside = [r for r in rows if r["faq_id"]]
    right = 0
    for r in inside:
        d = decide(k_held, r["text"], MATCHING)
        right += d.kind == "answer" and d.candidates[0].id in {r["faq_id"], *r.get("accept_faq", [])}
    assert right / len(inside) >= 0.90, right / len(inside)


def test_when_only_the_words_are_sure_what_the_model_liked_is_offered_with_the_answer() -> None:
    k = shipped_knowledge()
    labels = [*k.entries, OFF]
    unsure = [0.0] * len(labels)
    for liked in ("stretching", "warm-up-cool-down", OFF):  # three near-equal guesses: none reaches model_answer
        unsure[labels.index(liked)] = 5.0
    k_unsure = dataclasses.replace(k, faq_model=FaqModel(labels, unsure, {}, trained_on=k.faq_model.trained_on))
    d = decide(k_unsure, "why does my lower back hurt after running", MATCHING)
    assert d.kind == "answer" and d.candidates[0].id == "back-pain-causes"  # the words' answer
    assert set(d.runners_up) == {"stretching", "warm-up-cool-down"}


def test_a_moderators_change_that_makes_the_model_stale_is_noted_not_refused() -> None:
    from bot.core.faq_editing import verdict
    from bot.core.yamlio import Problem

    stale = Problem(MODEL_FILE, 1, "the FAQ changed since faq-model.json was trained; train it again", "warning")
    refused, notes = verdict([], [stale], loads=True)
    assert refused == [] and notes == [stale.message]
    other = Problem("faq-x.yaml", 3, "questions of 'a' and 'b' are near-identical", "warning")
    refused, _ = verdict([], [other], loads=True)
    assert refused  # any other new warning still refuses the change


def test_a_flat_guess_where_the_words_find_nothing_is_the_fallback() -> None:
    k = shipped_knowledge()
    labels = [*k.entries, OFF]
    flat = [0.0] * len(labels)  # every label equally likely: about 3% each
    k_flat = dataclasses.replace(k, faq_model=FaqModel(labels, flat, {}, trained_on=k.faq_model.trained_on))
    assert decide(k_flat, "is kinesiology tape worth it", MATCHING).kind == "fallback"


def test_averaged_training_is_the_mean_of_the_runs() -> None:
    """Each seed shuffles the lines its own way; the model keeps the mean of the runs' weights and biases."""
    from bot.softmax import fit, fit_averaged

    rows = [(("lower", "back", "ice"), "ice"), (("heat", "pad", "back"), "ice"), (("knee", "ice"), OFF)] * 3
    labels = ("ice", OFF)
    options = {"epochs": 4, "rate": 0.3, "decay": 0.75, "min_lines": 1}
    runs = [fit(rows, lambda ws: ws, labels, seed=s, **options) for s in (1, 2)]
    weights, bias = fit_averaged(rows, lambda ws: ws, labels, seeds=(1, 2), **options)
    assert runs[0][0]["ice"] != runs[1][0]["ice"]  # the order matters, so there is something to average
    for f, w in weights.items():
        assert w == pytest.approx([(a + b) / 2 for a, b in zip(runs[0][0][f], runs[1][0][f], strict=True)])
    assert bias == pytest.approx([(a + b) / 2 for a, b in zip(runs[0][1], runs[1][1], strict=True)])


def test_a_sure_answer_offers_the_models_next_entries_from_model_related() -> None:
    """The model is sure of one entry; its next entries of at least ``model_related`` (not the unlikely ones) fill
    the answer's first buttons, at most ``max_suggestions - 1``."""
    import math

    k = shipped_knowledge()
    labels = [*k.entries, OFF]
    chances = dict.fromkeys(labels, 0.0005)
    chances.update({"ice-or-heat": 0.8, "pain-medication": 0.06, "recovery-time": 0.04, "stretching": 0.02})
    bias = [math.log(chances[label]) for label in labels]
    k_sure = dataclasses.replace(k, faq_model=FaqModel(labels, bias, {}, trained_on=k.faq_model.trained_on))
    d = decide(k_sure, "should i put something warm or cold on it", MATCHING)
    assert d.kind == "answer" and d.candidates[0].id == "ice-or-heat"
    assert d.runners_up == ("pain-medication", "recovery-time")  # stretching (0.02) is under model_related (0.03)
    fewer = dataclasses.replace(MATCHING, model_related=0.05)
    assert decide(k_sure, "should i put something warm or cold on it", fewer).runners_up == ("pain-medication",)


def test_when_the_words_answer_the_models_likely_entries_come_before_the_words_runners_up() -> None:
    """The model ranks neighbours better than the words' close calls: its likely entries take the first buttons."""
    k = shipped_knowledge()
    text = "my back hurts after long runs, is it the miles or my shoes"
    labels = [*k.entries, OFF]
    unsure = [0.0] * len(labels)
    for liked in ("running-shoes", "core-glute-weakness", OFF):  # near-equal guesses: none reaches model_answer
        unsure[labels.index(liked)] = 5.0
    k_unsure = dataclasses.replace(k, faq_model=FaqModel(labels, unsure, {}, trained_on=k.faq_model.trained_on))
    words = dataclasses.replace(MATCHING, model=False)
    alone = decide(k, text, words)
    assert alone.kind == "answer" and alone.runners_up  # the words have close calls of their own
    d = decide(k_unsure, text, MATCHING)
    assert d.kind == "answer" and d.candidates[0].id == alone.candidates[0].id
    assert set(d.runners_up) == {"running-shoes", "core-glute-weakness"} - {d.candidates[0].id}
