"""The learned check: asks on wordings no rule names, turns a sure-false alarm into the question, never alarms."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from support import KNOWLEDGE, ROOT, shipped_knowledge

from bot.core.knowledge import KnowledgeError, load_knowledge
from bot.core.red_flags import RedFlagDetector, parse_red_flags
from bot.core.red_flags.learned import MODEL_FILE, LearnedCheck, parse_learned
from bot.core.yamlio import load_text
from bot.train_checks import TrainingSet, train

_CATALOGUE = """\
negators: ["no", not]
concepts:
  chest: [chest pain]
  ribs_sore: [sore ribs]
  ribs_broken: [broken ribs]
categories:
  - id: ribs
    level: urgent
    title: Ribs
    message: See a doctor today.
    check: Are your ribs sore after a fall?
    rules:
      - [ribs_broken]
    check_rules:
      - [ribs_sore]
  - id: cardiac
    level: emergency
    title: Heart
    message: Call {emergency_number} now.
    check: Do you have chest pain or pressure right now?
    rules:
      - [chest]
"""

_FLAGS = [
    "he went grey and clutched at his ribs on the hill",
    "my mate clutched his ribs and went grey at the finish",
    "went grey and sweaty clutching his ribs",
    "dad went grey and clutched his ribs walking up",
]
_CHATTER = [
    "grey morning but a lovely run on the hill",
    "hill reps tonight at the usual place",
    "new grey club vests are in",
    "lovely finish to the season",
    "chest pain from laughing at the quiz lol",
    "that hill at the finish is a killer",
]


def _detector(model: LearnedCheck | None) -> RedFlagDetector:
    det, problems = parse_red_flags(load_text(_CATALOGUE, "rf.yaml"), "rf.yaml")
    assert problems == []
    assert det is not None
    return det.with_learned(model)


def _model(threshold: float = 0.5, demote_below: float = 0.1) -> LearnedCheck:
    det = _detector(None)
    rows = []
    for text, label in [*((t, "cardiac") for t in _FLAGS), *((t, "none") for t in _CHATTER)]:
        toks = det.words(text)
        assert toks is not None
        rows.append((tuple(toks.words), label))
    return train(TrainingSet(tuple(rows) * 3, ("made-up",)), threshold=threshold, demote_below=demote_below)


def test_it_asks_on_a_wording_no_rule_names_and_never_alarms() -> None:
    det = _detector(_model())
    a = det.assess("he just went grey and clutched his ribs")
    assert a.alarms == ()
    assert [(h.category, h.tier, h.rule_line) for h in a.checks] == [("cardiac", "check", 0)]
    assert a.checks[0].chance is not None and a.checks[0].chance >= 0.5
    assert det.assess("grey drizzle for the hill reps tonight").checks == ()


def test_a_weaker_rule_question_does_not_silence_a_more_severe_learned_question() -> None:
    det = _detector(_model())
    a = det.assess("he just went grey and clutched his ribs, sore ribs too")
    assert a.alarms == ()
    # the model's emergency question comes first, the rule's urgent question stays behind it
    assert [(h.category, h.rule_line == 0) for h in a.checks] == [("cardiac", True), ("ribs", False)]
    # without the model only the rule's own question is asked
    alone = _detector(None).assess("he just went grey and clutched his ribs, sore ribs too")
    assert [h.category for h in alone.checks] == ["ribs"]


def test_without_the_model_the_rules_alone_decide() -> None:
    det = _detector(None)
    assert det.assess("he just went grey and clutched his ribs").checks == ()
    assert det.assess("chest pain since the hill").alarms != ()


def test_an_alarm_the_model_is_sure_is_no_red_flag_becomes_the_question() -> None:
    det = _detector(_model(demote_below=0.4))
    a = det.assess("chest pain from laughing at the quiz lol")
    assert a.alarms == ()
    assert a.checks and a.checks[0].category == "cardiac" and a.checks[0].rule_line > 0
    # an alarm the model does not contradict stays an alarm
    assert _detector(_model(demote_below=0.0)).assess("chest pain from laughing at the quiz lol").alarms != ()


def test_the_model_round_trips_through_its_json() -> None:
    model = _model()
    again, problem = parse_learned(json.loads(json.dumps(model.to_json())), ["cardiac"])
    assert problem is None and again is not None
    text = _detector(None).words("he went grey and clutched his ribs")
    assert text is not None
    first, second = model.guess(text.words), again.guess(text.words)
    assert first is not None and second is not None
    assert first.category == second.category
    assert abs(first.chance - second.chance) < 0.01


def test_training_is_deterministic() -> None:
    assert _model().to_json() == _model().to_json()


@pytest.mark.parametrize(
    ("edit", "reason"),
    [
        (lambda d: d.update(version=99), "not a version 1"),
        (lambda d: d.update(threshold=1.5), "malformed"),
        (lambda d: d.update(labels=["made-up-category", *d["labels"][1:]]), "lacks: made-up-category"),
        (lambda d: d["weights"].update(grey=[[99, 1.0]]), "malformed weight for 'grey'"),
    ],
)
def test_a_broken_model_is_refused_with_the_reason(edit, reason) -> None:  # type: ignore[no-untyped-def]
    data = _model().to_json()
    edit(data)
    model, problem = parse_learned(data, ["cardiac"])
    assert model is None
    assert problem is not None and reason in problem


def test_a_broken_model_file_is_a_knowledge_problem_naming_it(tmp_path: Path) -> None:
    folder = tmp_path / "knowledge"
    shutil.copytree(KNOWLEDGE, folder)
    (folder / "red_flags" / MODEL_FILE).write_text("{not json", encoding="utf-8")
    with pytest.raises(KnowledgeError) as err:
        load_knowledge(folder)
    assert f"red_flags/{MODEL_FILE}:1" in str(err.value)


def test_the_shipped_model_loads_and_asks_on_an_unlisted_wording() -> None:
    k = shipped_knowledge()
    assert k.red_flags.learned is not None
    a = k.red_flags.assess("running buddy went grey and clutched his chest on the hill, says its indigestion")
    assert a.alarms or a.checks


@pytest.mark.slow
def test_train_checks_command_writes_a_model_and_reports_bad_lines(tmp_path: Path) -> None:
    folder = tmp_path / "knowledge"
    shutil.copytree(KNOWLEDGE, folder)
    (folder / "red_flags" / MODEL_FILE).unlink()
    good = tmp_path / "dev.jsonl"
    good.write_text(
        "\n".join(json.dumps({"text": t, "escalation": "emergency", "category": "cardiac"}) for t in _FLAGS)
        + "\n"
        + "\n".join(json.dumps({"text": t, "escalation": "none"}) for t in _CHATTER)
        + "\n",
        encoding="utf-8",
    )
    env_cmd = [sys.executable, "-m", "bot", "train-checks", "--knowledge", str(folder)]
    res = subprocess.run([*env_cmd, str(good)], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert res.returncode == 0, res.stderr
    assert "trained on" in res.stdout
    assert load_knowledge(folder).red_flags.learned is not None
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": "ok", "escalation": "none"}\n{oops\n', encoding="utf-8")
    res = subprocess.run([*env_cmd, str(bad)], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert res.returncode == 1
    assert f"{bad}:2" in res.stderr
    assert "Traceback" not in res.stderr
