"""Red-flag detector and the shipped catalogue: recall, false escalations, negation, validation, robustness."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.config import SafetySettings
from bot.core.messages import Escalation
from bot.core.red_flags import RedFlagDetector, parse_red_flag_docs, parse_red_flags
from bot.core.yamlio import load_file, load_text

ROOT = Path(__file__).resolve().parents[2]
CATALOGUE = ROOT / "knowledge" / "red_flags"
DATA = ROOT / "tests" / "data" / "dev"
BLIND = ROOT / "tests" / "data" / "blind"

EMERGENCY_IDS = {
    "cauda-equina",
    "progressive-weakness",
    "major-trauma",
    "cardiac",
    "heat-illness",
    "aaa",
    "rhabdo",
    "self-harm",
}
#: added from the NHS "Back pain" urgent list after the extra sets were written (redflag_blind_d covers them)
LATER_URGENT_IDS = {"back-lump", "thoracic"}
LATER_EMERGENCY_IDS = {"sepsis", "stroke", "anaphylaxis", "asthma-attack", "hyponatraemia"}
URGENT_IDS = {"infection", "cancer", "fracture-risk", "night-pain", "kidney", "new-leg-weakness", *LATER_URGENT_IDS}


@pytest.fixture(scope="module")
def detector() -> RedFlagDetector:
    docs = [(f"red_flags/{p.name}", load_file(p)) for p in _catalogue_files()]
    det, problems = parse_red_flag_docs(docs)
    assert problems == []
    assert det is not None
    return det


def _catalogue_files() -> list[Path]:
    first = [CATALOGUE / "context.yaml", CATALOGUE / "shared.yaml"]
    return first + sorted(p for p in CATALOGUE.glob("*.yaml") if p not in first)


def _level(det: RedFlagDetector, text: str) -> str:
    hit = det.detect(text)
    return hit.level if hit else "none"


def _rows(name: str) -> list[dict[str, Any]]:
    path = DATA / name if (DATA / name).exists() else BLIND / name
    with path.open(encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


# --- the evaluation sets ------------------------------------------------------------------------


def _score(det: RedFlagDetector, rows: list[dict[str, Any]]) -> dict[str, Any]:
    misses: list[str] = []
    counts = {"emergency": [0, 0], "urgent": [0, 0]}
    false_esc = none_lines = 0
    for row in rows:
        expected = row.get("escalation", "none")
        accepted = set(row.get("accept_escalation", [])) | {expected}
        got = _level(det, row["text"])
        if expected == "none":
            none_lines += 1
            if got != "none" and got not in accepted:
                false_esc += 1
                misses.append(f"false {got}: {row['text']}")
            continue
        ok = got in accepted or (expected == "urgent" and got == "emergency")
        counts[expected][1] += 1
        counts[expected][0] += ok
        if not ok:
            misses.append(f"expected {expected}, got {got}: {row['text']}")
    return {"counts": counts, "false": false_esc, "none": none_lines, "misses": misses}


@pytest.mark.parametrize(
    "name",
    [
        "redflag_dev.jsonl",
        "redflag_extra.jsonl",
        "redflag_extra2.jsonl",
        "redflag_extra3.jsonl",
        "redflag_extra4.jsonl",
        "redflag_holdout.jsonl",
        "redflag_holdout2.jsonl",
        "redflag_holdout3.jsonl",
        "redflag_holdout4.jsonl",
        "redflag_extra5.jsonl",
        "redflag_extra6.jsonl",
        "redflag_extra7.jsonl",
        "redflag_extra8.jsonl",
        "redflag_holdout5.jsonl",
        "redflag_holdout6.jsonl",
    ],
)
def test_recall_and_false_escalations(detector: RedFlagDetector, name: str) -> None:
    rows = _rows(name)
    score = _score(detector, rows)
    em_ok, em_total = score["counts"]["emergency"]
    ur_ok, ur_total = score["counts"]["urgent"]
    assert em_total > 0 and ur_total > 0 and score["none"] > 0
    # Every emergency line escalates to emergency, every urgent line to urgent or emergency.
    assert em_ok == em_total, score["misses"]
    assert ur_ok == ur_total, score["misses"]
    # At most 3% of the lines that should not escalate do (the issue allows 5%; the project keeps a margin).
    assert score["false"] <= 0.03 * score["none"], score["misses"]


def test_every_category_is_named_for_the_wordings_written_for_it(detector: RedFlagDetector) -> None:
    """Not only the level: the tuners' lines for each catalogue category (the redflag_extra* sets) get that category
    (nine in ten at least), so the escalation message is the one written for it."""
    rows = [
        r
        for path in sorted(DATA.glob("redflag_extra*.jsonl"))
        for r in _rows(path.name)
        if r.get("escalation", "none") != "none" and r.get("category")
    ]
    for cid in sorted((EMERGENCY_IDS | URGENT_IDS) - LATER_URGENT_IDS):
        lines = [r["text"] for r in rows if r["category"] == cid]
        missed = [t for t in lines if cid not in {e.category for e in detector.detect_all(t)}]
        assert lines and len(missed) <= 0.1 * len(lines), (cid, missed)


def test_tuners_own_sets_copy_no_line_from_another_set() -> None:
    """Each tuning round wrote its own `redflag_extra*` lines before tuning: none may come from another set.

    (Independently written blind sets may share a short line by coincidence, e.g. "what can this bot do".)
    """
    paths = sorted(p for p in DATA.parent.glob("*/*.jsonl") if p.parent.name != "train")  # not the FAQ model's
    texts = {path.name: {r["text"] for r in _rows(path.name)} for path in paths}
    copies = [
        (name, other, line)
        for name, lines in texts.items()
        if name.startswith("redflag_extra")
        for other, other_lines in texts.items()
        if other != name
        for line in lines & other_lines
    ]
    assert copies == []


@pytest.mark.parametrize("name", ["faq_dev.jsonl", "faq_holdout.jsonl", "faq_holdout2.jsonl", "faq_holdout3.jsonl"])
def test_faq_questions_do_not_escalate(detector: RedFlagDetector, name: str) -> None:
    rows = [r for r in _rows(name) if r.get("escalation", "none") == "none"]
    escalated = [r["text"] for r in rows if detector.detect(r["text"]) is not None]
    assert len(rows) > 50
    assert len(escalated) <= 0.01 * len(rows), escalated


@pytest.mark.parametrize(
    ("text", "category"),
    [
        ("fell 4m off the wall onto my back", "major-trauma"),
        ("dropped about 3ft onto concrete, landed on my tailbone", "major-trauma"),
        ("slid down 8m of scree and hit my back on a rock at the bottom, fell 8m really", "major-trauma"),
        ("the part you sit on feels like novocaine, back sore since sunday", "cauda-equina"),
        (
            "bum went numb on the coach, fine once i stood up, but now its numb again and my back is agony",
            "cauda-equina",
        ),
        ("an hour ago i could walk, now i can hardly stand on my left leg", "progressive-weakness"),
        ("on pred for my lungs and felt something give in my back when i sneezed", "fracture-risk"),
        ("i had bowel cancer, googled my new back pain and now im scared", "cancer"),
        ("i want to end it all, thinking of ending my season too", "self-harm"),
        ("im going to end it, cant do this anymore", "self-harm"),
        ("my mate collapsed at parkrun and isnt breathing", "cardiac"),
    ],
)
def test_falls_from_a_height_numbness_fast_weakness_and_crisis_wordings_escalate(
    detector: RedFlagDetector, text: str, category: str
) -> None:
    found = {e.category for e in detector.detect_all(text)}
    assert category in found, (text, found)


@pytest.mark.parametrize(
    "text",
    [
        "im 6ft 2 and my back aches after 10k",
        "ran 5k at 5min pace, back a bit stiff",
        "threshold session was heart attack pace, all good now",
        "my brother fainted at the finish line once, he was fine after",
        "dr google says my sore back is a tumour, it has been 2 days",
        "my bum went numb on the train, wore off as soon as i got up",
        "do i need to know if i hurt myself on the trail, back is a bit achy",
        "ending my streak at 200 days because of my back",
        "had a wee behind a hedge and my tights were brown with mud, legs tired",
    ],
)
def test_heights_paces_idioms_and_streaks_do_not_escalate(detector: RedFlagDetector, text: str) -> None:
    assert detector.detect(text) is None, detector.explain(text)


@pytest.mark.parametrize(
    ("text", "category"),
    [
        ("i cut myself again last night", "self-harm"),
        ("ive been self-harming since my injury", "self-harm"),
        ("i dont even want to be alive", "self-harm"),
        ("i wish id never been born", "self-harm"),
        ("so tired of life", "self-harm"),
        ("im scared of what i might do", "self-harm"),
        ("ive written letters to my kids", "self-harm"),
        ("i gave away all my stuff this week", "self-harm"),
        ("im just a burden to everyone", "self-harm"),
        ("took a whole box of paracetamol", "self-harm"),
        ("no one would even notice if i was gone", "self-harm"),
        ("my body is very hot after marathon and i feel giddy", "heat-illness"),
        ("there is a pulsing lump near my belly button and awful back pain", "aaa"),
        ("my friend slid 15 metres down the scree", "major-trauma"),
        ("rolled down the embankment about 10 metres", "major-trauma"),
        ("on methotrexate and have a temperature and back ache", "infection"),
        ("my dad is 85 and fell in the bathroom, back pain", "fracture-risk"),
        ("my dad had prostate cancer last year and now his back hurts all day", "cancer"),
        ("the pain is continuous day and night", "night-pain"),
    ],
)
def test_signs_of_self_harm_and_plain_words_for_other_flags_escalate(
    detector: RedFlagDetector, text: str, category: str
) -> None:
    found = {e.category for e in detector.detect_all(text)}
    assert category in found, (text, found, detector.explain(text))


@pytest.mark.parametrize(
    "text",
    [
        "ive been cutting back on speedwork",
        "i burned my tongue on coffee and my back hurts",
        "i wish the pain would just disappear",
        "tired of this injury, when can i run again",
        "goodbye everyone, moving to leeds next week",
        "i wrote a note for my physio about my pain",
        "giving my old trainers away, do new ones help the back",
        "im 75kg, does weight affect back pain",
        "felt a bit dizzy after standing up too fast from stretching",
        "slid down a muddy bank on my bum haha, back fine",
        "thrown off my pace by the wind, back sore",
        "my mum had cancer years ago, shes fine now, my back hurts after runs",
        "after 30 minutes of continuous running my lower back aches",
        "will running cause permanent damage to my back",
    ],
)
def test_cutting_back_being_tired_of_an_injury_and_other_idioms_do_not_escalate(
    detector: RedFlagDetector, text: str
) -> None:
    assert detector.detect(text) is None, detector.explain(text)


def test_dev_categories_are_named_right(detector: RedFlagDetector) -> None:
    """The category (not only the level) matches for the dev lines whose wording is unambiguous."""
    for row in _rows("redflag_dev.jsonl"):
        if row["escalation"] == "none":
            continue
        found = {e.category for e in detector.detect_all(row["text"])}
        assert row["category"] in found, (row["text"], found)


# --- the catalogue ------------------------------------------------------------------------------


def test_catalogue_has_every_category_with_its_level(detector: RedFlagDetector) -> None:
    cats = detector.categories
    assert set(cats) == EMERGENCY_IDS | LATER_EMERGENCY_IDS | URGENT_IDS
    for cid in EMERGENCY_IDS | LATER_EMERGENCY_IDS:
        assert cats[cid].level == "emergency"
        assert "{emergency_number}" in cats[cid].message
    for cid in URGENT_IDS:
        assert cats[cid].level == "urgent"
        assert "doctor today" in cats[cid].message
        assert "{emergency_number}" in cats[cid].message  # "if it gets worse, call ..."
    assert "{crisis_line}" in cats["self-harm"].message
    for cat in cats.values():
        assert cat.title and 80 <= len(cat.message) <= 700, cat.id


def test_render_fills_placeholders(detector: RedFlagDetector) -> None:
    text = detector.categories["self-harm"].render(SafetySettings())
    assert "999" in text and "116 123" in text and "{" not in text


def test_detect_all_is_most_severe_first(detector: RedFlagDetector) -> None:
    text = "fever and chills with back pain, and since this morning I can't feel my groin"
    hits = detector.detect_all(text)
    assert [h.category for h in hits][:1] == ["cauda-equina"]
    assert Escalation("urgent", "infection") in hits
    levels = [h.level for h in hits]
    assert levels == sorted(levels, key=lambda lv: lv != "emergency")
    assert detector.detect(text) == hits[0]


# --- negation and look-alikes -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("positive", "negated"),
    [
        ("I can't feel my groin and can't pee", "no numbness, just stiff"),
        ("numbness in my groin since the run", "no numbness in my groin, just a stiff back"),
        ("trouble peeing since my back went", "peeing is fine, back is just sore"),
        ("trouble peeing since my back went", "no problems peeing or anything, back is achy"),
        ("weakness in my left leg since the back pain", "no numbness or weakness, stiff lumbar area"),
        ("fever and back pain since Sunday", "never had a fever, just back pain after runs"),
        ("fever and back pain since Sunday", "had a fever after my jab two months ago, fine now. back tight"),
        ("chest pain on the hill", "no chest pain or anything, back aches after intervals"),
        ("pain wakes me up at night", "pain doesn't wake me at night, only hurts after running"),
        ("I'm on steroid tablets and tripped, back hurts", "not on steroids, just a sore back after a tumble"),
        ("bladder and bowel problems and back pain", "bladder and bowels are totally normal, back sore"),
        ("my legs are numb and tingly", "no numbness, tingling or weakness in my legs"),
    ],
)
def test_negation_cancels_the_symptom(detector: RedFlagDetector, positive: str, negated: str) -> None:
    assert detector.detect(positive) is not None
    assert detector.detect(negated) is None


@pytest.mark.parametrize(
    "text",
    [
        # a negator in one clause does not cancel a symptom in the next
        "no fever, but I can't feel my bum",
        "no numbness. can't pee since this morning",
        "not sure if it matters but my groin feels numb",
        # "is that normal?" is a question, not a reassurance
        "numb groin after running, is that normal?",
        # terms that carry their own negation are not cancelled by a negator in front
        "I don't know why but I haven't been able to pee all day",
        # typos and slang
        "numbess around my genitls and my back is killing me",
        "feel sucidal since the injury",
        "piss is brown like coke and my quads are swollen and agony",
    ],
)
def test_emergency_survives_tricky_wording(detector: RedFlagDetector, text: str) -> None:
    assert _level(detector, text) == "emergency", detector.explain(text)


@pytest.mark.parametrize(
    "text",
    [
        "calves weak after the hill session but fine the next day",
        "fingers go numb in the cold, fine once warm",
        "I'm dead after that tempo lol, back is screaming",
        "lost 4kg on purpose since I started running more, back sore",
        "sweating loads on summer runs, back tight",
        "fell on my backside at the park, I'm 32 and fit, back a bit bruised",
        "had pneumonia years ago, fully recovered, back stiff after runs",
        "nearly wet myself laughing at parkrun, back sore",
        "collapsed on the sofa after the long run lol",
        "a faint ache in my lower back after long runs",
        "confused about whether ice or heat is better for my back",
        "what are the signs of cauda equina?",
    ],
)
def test_benign_look_alikes_do_not_escalate(detector: RedFlagDetector, text: str) -> None:
    assert detector.detect(text) is None, detector.explain(text)


@pytest.mark.parametrize(
    ("text", "level", "category"),
    [
        # falls from a height in numbers or words, falls down stairs, thrown by a horse, over the handlebars
        ("took a tumble off the crag, dropped maybe 4 metres and landed on my lower back", "emergency", "major-trauma"),
        ("slipped and went down a whole flight of stairs at work, back is in bits", "emergency", "major-trauma"),
        ("pony bucked me off at the gallop, back hurts to move", "emergency", "major-trauma"),
        ("went over my handlebars on the descent, landed flat on my spine", "emergency", "major-trauma"),
        # a pulsing belly, sudden severe back pain with shock signs or going through to the belly
        ("feels like a heartbeat thumping in my abdomen and my back really hurts", "emergency", "aaa"),
        ("sudden excruciating pain across my lower back, gone pale and dizzy", "emergency", "aaa"),
        ("all of a sudden awful back pain that goes right through to my stomach", "emergency", "aaa"),
        # one-sided leg weakness: heels/tiptoes, giving out, stairs
        ("since my back went i cant walk on my heel on the left side", "urgent", "new-leg-weakness"),
        ("my right knee keeps giving out on me since the sciatica flared", "urgent", "new-leg-weakness"),
        ("left leg just doesnt feel as strong as the right since my back started", "urgent", "new-leg-weakness"),
    ],
)
def test_new_wordings_escalate(detector: RedFlagDetector, text: str, level: str, category: str) -> None:
    found = {e.category for e in detector.detect_all(text)}
    assert _level(detector, text) in ({level, "emergency"} if level == "urgent" else {level}), detector.explain(text)
    assert category in found, (found, detector.explain(text))


@pytest.mark.parametrize(
    ("text", "category"),
    [
        # vehicles in other Englishes, and being "collected" or "cleaned up" by one
        ("a hgv sideswiped me on the country lane and i landed on my back", "major-trauma"),
        ("some bloke in a 4x4 collected me on the zebra crossing, back is agony", "major-trauma"),
        # a known aortic aneurysm with sudden or severe back or belly pain
        ("my triple a is being monitored and now i have sudden severe back pain", "aaa"),
        ("they found a small aneurysm on a scan last year, now agony in my tummy and back", "aaa"),
        # suicidal thoughts without the words "kill myself"
        ("ive been hoarding my codeine just in case", "self-harm"),
        ("keep thinking about swallowing the whole box of tablets", "self-harm"),
        ("i think about driving my car off a bridge most days", "self-harm"),
        ("i dont see any point going on", "self-harm"),
        # fever given as a number, pain in every position or worse at night, a leg without its old power
        ("thermometer says 38.6 and my lower back is sore", "infection"),
        ("102 f fever and back pain since yesterday", "infection"),
        ("my back hurts whether im sitting or lying down, no matter what", "night-pain"),
        ("the ache in my lower back is always worse at night", "night-pain"),
        ("left leg doesnt have the strength it used to since the back pain", "new-leg-weakness"),
        ("my leg is losing power fast, i cant step up onto a step now", "progressive-weakness"),
    ],
)
def test_other_words_for_the_same_red_flags(detector: RedFlagDetector, text: str, category: str) -> None:
    hits = detector.detect_all(text)
    assert category in {h.category for h in hits}, detector.explain(text)


@pytest.mark.parametrize(
    "text",
    [
        "my partner collected me in the car after the race, back stiff on the drive home",
        "a cyclist caught me on the hill and i tried to hang on, back sore now",
        "the hill at mile 3 is the aorta of the course, back always aches after it",
        "taking all my gels at once at mile 20 was a mistake lol",
        "no point going on the long run if my back hurts",
        "cant carry on running until the back calms down",
        "i want to make it stop hurting, what stretches help",
        "it was 38 degrees outside on my run, back sore",
        "ran 39 minutes today and my back ached",
        "back is sore when i sit at work but fine on runs",
        "my legs had no power on the last hill, back sore",
        "did push ups, chest sore, back sore lol",
    ],
)
def test_look_alikes_of_the_new_wordings_do_not_escalate(detector: RedFlagDetector, text: str) -> None:
    assert detector.detect(text) is None, detector.explain(text)


def test_gym_soreness_is_not_cardiac_but_chest_pain_still_is(detector: RedFlagDetector) -> None:
    assert detector.detect("chest day yesterday then a 10k, pecs tender lol and back tight") is None
    for text in (
        "chest pain during my run today, did chest day yesterday",
        "chest feels tight on my runs, did push ups yesterday",
        "tightness in my chest and back on the run today",
    ):
        assert _level(detector, text) == "emergency", detector.explain(text)


@pytest.mark.parametrize(
    ("theirs", "mine"),
    [
        # another person's past event is history, not the writer's symptom ...
        (
            "my dad had a heart attack at 80, im 35, should i worry about my sore back?",
            "i had a heart attack at 50, now my back is sore after runs",
        ),
        (
            "my mum had breast cancer, does that mean my back pain after runs is serious?",
            "i had breast cancer, does that mean my back pain after runs is serious?",
        ),
        (
            "my grandad had bladder problems and a bad back, should i be worried about mine at 40?",
            "i have bladder problems and a bad back since the race",
        ),
        # ... unless the message is about that person now
        (
            "my uncle had a heart attack years ago so im nervous, my back just aches",
            "my uncle had a heart attack years ago and now hes got crushing chest pain",
        ),
        (
            "my wife had cancer when she was 30, is back pain after running a worry for me?",
            "my wife had cancer and now her back hurts all the time",
        ),
    ],
)
def test_another_persons_past_event_is_not_the_writers_symptom(
    detector: RedFlagDetector, theirs: str, mine: str
) -> None:
    assert detector.detect(theirs) is None, detector.explain(theirs)
    assert detector.detect(mine) is not None, mine


def test_someone_else_today_still_counts(detector: RedFlagDetector) -> None:
    assert _level(detector, "my son had a bad crash on his bike today, back really hurts") == "emergency"
    assert _level(detector, "my husband has had a fever for a week and now his back hurts") == "urgent"


@pytest.mark.parametrize(
    ("hypothetical", "real"),
    [
        (
            "if i ever get numbness down there should i go to a&e? just a sore back now",
            "numbness down there since my run",
        ),
        ("what does foot drop look like? my back is fine", "foot drop since this morning and my back hurts"),
        (
            "read a story about a runner who collapsed at a marathon, how do i stretch",
            "my mate collapsed at the marathon",
        ),
        ("the physio said to watch out for bladder changes, i have none", "i have bladder changes since my back went"),
        (
            "if anyone knows what to do if someone collapses, asking for our club",
            "if anyone can help, my groin is numb",
        ),
    ],
)
def test_hypotheticals_and_stories_do_not_escalate(detector: RedFlagDetector, hypothetical: str, real: str) -> None:
    assert detector.detect(hypothetical) is None, detector.explain(hypothetical)
    assert _level(detector, real) == "emergency", detector.explain(real)


@pytest.mark.parametrize(
    "text",
    [
        "my legs are dead after that session",
        "killer session tonight, back feels tight",
        "i literally died on that last hill 💀 back is sore",
        "came off my bike at low speed, grazed knee, back fine",
        "im 6 foot 2 and fell over on the trail, back a bit sore",
        "cant do this anymore, back is wrecked, going to quit running",
        "my heart was pounding after the sprint finish, settled within a minute, back a bit sore",
        "had a cancer scare years ago that turned out to be nothing, back sore from parkrun",
    ],
)
def test_figurative_and_resolved_do_not_escalate(detector: RedFlagDetector, text: str) -> None:
    assert detector.detect(text) is None, detector.explain(text)


def test_explain_names_the_rule_line(detector: RedFlagDetector) -> None:
    explained = detector.explain("sudden tearing pain through to my back")
    [hit] = [h for h in explained.assessment.alarms if h.category == "aaa"]
    assert explained.tier == "alarm"
    lines = (ROOT / "knowledge" / hit.file).read_text(encoding="utf-8").splitlines()
    assert "tearing" in lines[hit.rule_line - 1]
    assert "tearing" in hit.words


# --- validation ---------------------------------------------------------------------------------

_GOOD = """\
negators: [\"no\", not]
concepts:
  numb: [numb*, cant feel]
  saddle: [groin, saddle]
categories:
  - id: cauda-equina
    level: emergency
    title: Nerve compression
    message: Call {emergency_number} now.
    rules:
      - [numb, saddle]
"""


def _parse(text: str) -> tuple[RedFlagDetector | None, list[str]]:
    det, problems = parse_red_flags(load_text(text, "rf.yaml"), "rf.yaml")
    return det, [str(p) for p in problems]


_TWO_LEVELS = (
    _GOOD
    + """\
  - id: sore-leg
    level: urgent
    title: Sore leg
    message: See a doctor today.
    then_ask: cauda-equina
    rules:
      - [numb]
"""
)


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (("then_ask: cauda-equina", "then_ask: cauda"), "rf.yaml:12: 'sore-leg' has then_ask 'cauda', which is not"),
        (("then_ask: cauda-equina", "then_ask: Cauda Equina"), "rf.yaml:16: 'then_ask' must be the id of"),
        (("then_ask: cauda-equina", "then_ask: sore-leg"), "which is not more severe (urgent)"),
        (("then_ask: cauda-equina", "then_ask: cauda-equina"), "which has no 'check' question to ask"),
    ],
)
def test_then_ask_must_name_a_graver_category_with_a_question(edit: tuple[str, str], expected: str) -> None:
    _, problems = _parse(_TWO_LEVELS.replace(*edit))
    assert any(expected in p for p in problems), problems


def test_then_ask_follows_the_alarm() -> None:
    text = _TWO_LEVELS.replace("      - [numb, saddle]\n", "      - [numb, saddle]\n    check: Numb groin right now?\n")
    det, problems = _parse(text)
    assert problems == [] and det is not None
    found = det.assess("my leg is numb")
    assert found.escalation == Escalation("urgent", "sore-leg")
    assert found.also_ask is not None and found.also_ask.category == "cauda-equina"


def test_minimal_catalogue_parses_and_works() -> None:
    det, problems = _parse(_GOOD)
    assert problems == []
    assert det is not None
    assert det.detect("can't feel my groin") == Escalation("emergency", "cauda-equina")
    assert det.detect("no numbness in the groin") is None
    assert det.detect("groin strain") is None


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (("    level: emergency\n", "    level: critical\n"), "rf.yaml:7: bad level 'critical'"),
        (
            ("    message: Call {emergency_number} now.\n", ""),
            "rf.yaml:6: category 'cauda-equina' is missing 'message'",
        ),
        (("    title: Nerve compression\n", "    title: [a, b]\n"), "rf.yaml:8: 'title' must be non-empty text"),
        (("    rules:\n", "    colour: red\n    rules:\n"), "rf.yaml:10: unknown key 'colour'"),
        (("  saddle: [groin, saddle]\n", "  saddle: [groin, sad*dle]\n"), "rf.yaml:4: bad pattern 'sad*dle'"),
        (("  saddle: [groin, saddle]\n", "  saddle: [groin, ab*]\n"), "rf.yaml:4: bad pattern 'ab*'"),
        (("      - [numb, saddle]\n", "      - [numb, sadle]\n"), "rf.yaml:11: unknown concept 'sadle'"),
        (("now.", "now or ring {phone}."), "rf.yaml:9: unknown placeholder {phone}"),
        (("now.", "now {or later."), "rf.yaml:9: unmatched { or } in message"),
        (
            ("  numb: [numb*, cant feel]\n", "  numb: [numb*, cant feel]\n  unused: [x]\n"),
            "rf.yaml:4: concept 'unused'",
        ),
        (('negators: ["no", not]\n', "negators: [no, not]\n"), "rf.yaml:1: a term must be text, not true/false"),
        (("      - [numb, saddle]\n", "      - {all: [numb], within: forever}\n"), "rf.yaml:11: 'within' must be"),
        (("concepts:\n", "concept:\n"), "rf.yaml:2: unknown key 'concept'"),
        (("  saddle: [groin, saddle]\n", "  saddle: [groin, pee|]\n"), "rf.yaml:4: bad pattern 'pee|'"),
        (("  saddle: [groin, saddle]\n", "  saddle: [groin, fell ..|_ roof]\n"), "rf.yaml:4: bad pattern"),
        (
            ("  saddle: [groin, saddle]\n", "  saddle: [groin, " + " ".join(["a|b|c|d|e"] * 4) + "]\n"),
            "rf.yaml:4: bad pattern",
        ),
    ],
)
def test_validation_problems_carry_lines(edit: tuple[str, str], expected: str) -> None:
    old, new = edit
    assert old in _GOOD
    det, problems = _parse(_GOOD.replace(old, new, 1))
    assert det is None
    assert any(p.startswith(expected) for p in problems), problems


def test_alternatives_expand_to_every_combination() -> None:
    text = _GOOD.replace("  saddle: [groin, saddle]\n", "  saddle: [groin, saddle, pee|wee .. cloudy|smell*]\n")
    det, problems = _parse(text)
    assert problems == [] and det is not None
    for msg in ("numb and my pee is cloudy", "numb, wee smells", "numb and my wee is really cloudy"):
        assert det.detect(msg) is not None, msg
    for msg in ("numb and my pee is clear", "numb and cloudy skies", "numb and the wee is not at all cloudy here"):
        assert det.detect(msg) is None, msg


def test_number_wildcard_and_scoping_sections() -> None:
    text = _GOOD.replace("  saddle: [groin, saddle]\n", '  saddle: [groin, saddle]\n  height: ["fell .. # metres"]\n')
    text = text.replace("      - [numb, saddle]\n", "      - [numb, saddle]\n      - [height]\n")
    text = "hypothetical: [if i ever]\nother_people: [dad]\nhistory_markers: [had]\nabout_them: [his back]\n" + text
    det, problems = _parse(text)
    assert problems == [] and det is not None
    assert det.detect("fell 3 metres") is not None
    assert det.detect("fell a good few metres") is not None
    assert det.detect("fell over") is None
    assert det.detect("if i ever fell 3 metres") is None
    assert det.detect("my dad had a numb groin, im fine") is None
    assert det.detect("my dad had a numb groin and now his back hurts") is not None
    assert det.detect("my dad has a numb groin") is not None


def test_duplicate_category_id_is_reported_with_both_lines() -> None:
    second = _GOOD.split("categories:\n")[1].replace("level: emergency", "level: urgent")
    det, problems = _parse(_GOOD + second)
    assert det is None
    assert any(p.startswith("rf.yaml:12: duplicate category id 'cauda-equina' (first on line 6)") for p in problems)


def test_wrong_top_level_type() -> None:
    det, problems = parse_red_flags(load_text("- just\n- a list\n", "rf.yaml"), "rf.yaml")
    assert det is None
    assert [str(p) for p in problems] == [
        "rf.yaml:1: the red-flag file must be a mapping with 'categories', not a list"
    ]


def test_every_problem_is_reported_at_once() -> None:
    bad = _GOOD.replace("level: emergency", "level: soon").replace("[numb, saddle]", "[numb, nope]")
    _det, problems = _parse(bad)
    assert len(problems) >= 2


# --- robustness and speed -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "",
        "   ",
        "😵😵😵",
        "\x00\x01\x02\x1b[31m" * 100,
        "e\u0301" * 3000,
        "\u200b\u202e numb groin \u2066",
        "no " * 2000,
        ". , ; - " * 800,
        "a" * 10000,
        "numb groin, " * 400,
        "fell off .. roof _ _ *",
        "ｎｕｍｂ ｇｒｏｉｎ",  # full-width letters fold to ASCII
    ],
)
def test_never_raises_on_odd_input(detector: RedFlagDetector, text: str) -> None:
    result = detector.detect(text)
    assert result is None or result.category in detector.categories
    assert isinstance(detector.detect_all(text), list)


def test_full_width_and_accents_are_folded(detector: RedFlagDetector) -> None:
    assert _level(detector, "ｎｕｍｂ ｇｒｏｉｎ") == "emergency"
    assert _level(detector, "numb gróin") == "emergency"


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.text(max_size=2500))
def test_arbitrary_text_never_raises(detector: RedFlagDetector, text: str) -> None:
    hits = detector.detect_all(text)
    assert all(h.category in detector.categories for h in hits)
    assert len({h.category for h in hits}) == len(hits)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    st.lists(
        st.sampled_from(
            [
                "no",
                "not",
                "numb",
                "groin",
                ",",
                ".",
                "but",
                "fine",
                "cant",
                "pee",
                "fell",
                "off",
                "roof",
                "chest",
                "pain",
                "back",
                "fever",
                "..",
                "_",
            ]
        ),
        max_size=400,
    )
)
def test_word_soup_never_raises(detector: RedFlagDetector, words: list[str]) -> None:
    hit = detector.detect(" ".join(words))
    assert hit is None or hit.level in ("emergency", "urgent")


@pytest.mark.slow
def test_fast_on_long_messages(detector: RedFlagDetector) -> None:
    texts = [r["text"] for r in _rows("faq_dev.jsonl") + _rows("redflag_extra.jsonl")]
    messages = []
    for start in range(0, 40):
        buf = ""
        i = start
        while len(buf) < 2000:
            buf += texts[i % len(texts)] + ". "
            i += 7
        messages.append(buf[:2000])
    for m in messages:  # warm the per-word cache, as a running bot would be
        detector.detect(m)
    best = float("inf")
    for _ in range(5):
        t0 = time.perf_counter()
        for m in messages:
            detector.detect(m)
        best = min(best, (time.perf_counter() - t0) / len(messages))
    # Typically ~0.5-1 ms on a quiet machine; the bound leaves room for a busy CI runner.
    assert best < 0.01


# --- euphemisms, spreading weakness, someone else's crash, plain-word heat illness, night pain -------------


@pytest.mark.parametrize(
    ("text", "category"),
    [
        ("had a little leak on the run and my back is sore", "cauda-equina"),
        ("i can not control when i pee since my back went", "cauda-equina"),
        ("cant hold my wee anymore, lower back aching", "cauda-equina"),
        ("leaked during the race and didnt feel it", "cauda-equina"),
        ("my leg went weak after the run and now the other leg is going too", "progressive-weakness"),
        ("leg was a bit weak after the 10k and now its weaker than this morning", "progressive-weakness"),
        ("my brother came off his motorbike on the way to parkrun, his back is agony", "major-trauma"),
        ("she came off her e-scooter at 30 mph and landed on her back", "major-trauma"),
        ("my daughter ran at lunchtime in the heat and keeps forgetting where she is", "heat-illness"),
        ("hot run at midday, hes hot to the touch and keeps throwing up", "heat-illness"),
        ("the pain wont ease with rest and i end up pacing the floor at night", "night-pain"),
        ("ibuprofen doesnt touch it, back aches all night", "night-pain"),
    ],
)
def test_leaks_spreading_weakness_others_crashes_heat_confusion_and_night_pain_escalate(
    detector: RedFlagDetector, text: str, category: str
) -> None:
    assert category in {e.category for e in detector.detect_all(text)}, text


@pytest.mark.parametrize(
    "text",
    [
        "my camelbak had a leak on the long run, soaked my back",
        "worried about my heart so had a checkup, ecg normal, back still aches after runs",
        "legs feel like i got hit by a truck after the marathon, in a good way",
        "numb bum after a long haul flight, went away once i walked around",
        "a guy in my club says chest pain is a warning sign, does that apply to back pain too",
        "i dont want to live with this back pain forever, any stretches",
        "cant do this anymore - the track sessions are savage",
        "paracetamol doesnt touch it, what else can i take for my back",
        "forgot where i left my keys after the race, back is fine",
    ],
)
def test_leaky_bottles_checkups_and_hyperbole_stay_quiet(detector: RedFlagDetector, text: str) -> None:
    assert detector.detect(text) is None, [h.category for h in detector.detect_all(text)]


@pytest.mark.parametrize(
    ("text", "category"),
    [
        ("felt something rip inside my tummy, pain through to my back and im clammy", ("aaa", "cardiac")),
        ("like someone sat on my chest on the hill, went away after i stopped", ("cardiac",)),
        ("pressure in my chest that spread into my jaw, fine after a rest", ("cardiac",)),
        ("no longer sweating after the summer half and my head is pounding", ("heat-illness",)),
        ("i cant tell when i need the toilet anymore since my back went", ("cauda-equina",)),
        ("didnt realise id gone until i got home, back is awful", ("cauda-equina",)),
        ("dad can hardly lift his leg now, yesterday he was just limping", ("progressive-weakness",)),
    ],
)
def test_everyday_descriptions_of_emergencies_escalate_as_emergencies(
    detector: RedFlagDetector, text: str, category: tuple[str, ...]
) -> None:
    hit = detector.detect(text)
    assert hit is not None and hit.level == "emergency" and hit.category in category, detector.explain(text)


@pytest.mark.parametrize(
    "text",
    [
        "checked the saddle numbness thing, its all normal down there",
        "no pain at night at all, only when i run over 10k",
        "a runner at my club fainted at a race years ago, he was fine",
        "cant lift my knee high in drills, lower back tight",
    ],
)
def test_reassured_checks_and_past_events_do_not_escalate(detector: RedFlagDetector, text: str) -> None:
    assert detector.detect(text) is None, detector.explain(text)
