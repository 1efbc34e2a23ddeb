"""Red flags: uncertain context asks instead of alarming; dialect variants and stated ages reach every rule."""

from __future__ import annotations

import pytest
from support import shipped_knowledge, tier

from bot.core.red_flags import RedFlagDetector, parse_red_flags
from bot.core.yamlio import load_text


@pytest.fixture(scope="module")
def detector() -> RedFlagDetector:
    return shipped_knowledge().red_flags


_tier = tier


@pytest.mark.parametrize(
    ("text", "category"),
    [
        # a conditional opening the clause: a worry or a real symptom put politely -> one question settles it
        ("what would happen if i couldnt pee after hurting my back? would that be an emergency?", "cauda-equina"),
        ("If I came off my bike and hurt my back, would I need an x-ray?", "major-trauma"),
        # said as a joke: the question, never the public alarm
        ("I want to die, these intervals are brutal 😂😂", "self-harm"),
        # a dated past event
        ("Our coach's wife collapsed at a race in 2019 and had a pacemaker fitted; she's back running", "cardiac"),
    ],
)
def test_uncertain_context_asks_instead_of_alarming(detector: RedFlagDetector, text: str, category: str) -> None:
    assert _tier(detector, text) == ("check", category)


@pytest.mark.parametrize(
    ("text", "category"),
    [
        # "if" after a verb is part of a real report, not a conditional
        ("since the back went he cant tell if he needs the loo anymore", "cauda-equina"),
        ("its just easier if i wasnt here tbh. cant run cant work back pain all the time", "self-harm"),
        # a dated history followed by "now" is the point of the message
        ("prostate cancer treated in 2019, now a new lower back pain that's worse each week", "cancer"),
        # "lol" is how people soften real worries: it does not make a symptom a joke
        ("can't sleep for the back pain, up pacing at night, its worse lying down than running lol", "night-pain"),
    ],
)
def test_real_reports_keep_the_alarm(detector: RedFlagDetector, text: str, category: str) -> None:
    assert _tier(detector, text) == ("alarm", category)


def test_message_that_says_all_is_well_asks_at_most(detector: RedFlagDetector) -> None:
    assert _tier(detector, "crashed my bike on the gravel, bike's fine, I'm fine, pride dented")[0] != "alarm"
    assert _tier(detector, "crashed my bike on the gravel at speed and hit my back hard")[0] == "alarm"


def test_explain_names_the_uncertain_reason(detector: RedFlagDetector) -> None:
    ex = detector.explain("what if my legs went numb from the waist down on a run")
    assert any(t.cancelled and t.cancelled.startswith("conditional") for t in ex.terms)
    assert ex.tier == "check"


@pytest.mark.parametrize(
    ("text", "category"),
    [
        ("My waist dey pain me since yesterday and now I no fit piss at all", "cauda-equina"),
        ("i cnt pee since this morning and my lower back is agony", "cauda-equina"),
        ("Bro my piss dey black like Coke since that boot camp training, body dey pain me pass", "kidney"),
    ],
)
def test_dialect_variants_reach_every_rule(detector: RedFlagDetector, text: str, category: str) -> None:
    assert _tier(detector, text) == ("alarm", category)


def test_variants_do_not_change_ordinary_words(detector: RedFlagDetector) -> None:
    # "waist" is read as lower back, but a waist belt after a run is still nothing to worry about
    assert _tier(detector, "new waist belt for the long run, fits my phone and two gels") == ("none", None)


@pytest.mark.parametrize(
    "text",
    [
        "68F, slipped on ice walking to parkrun, only a small fall onto my backside, but now pain right in the spine",
        "Grandad, 79, stumbled over in the park on our slow jog, just a little fall, now got severe pain in his back",
        "I'm 81 and tripped on the kerb yesterday, my lower back really hurts now",
    ],
)
def test_a_stated_age_with_a_small_fall_is_the_fracture_flag(detector: RedFlagDetector, text: str) -> None:
    assert _tier(detector, text) == ("alarm", "fracture-risk")


@pytest.mark.parametrize(
    "text",
    [
        "my husband ran 74 mins today, slipped on ice at the end, back a bit sore",
        "tripped on the kerb at my 70th parkrun, back's a bit sore",
        "I'm 31, tripped on a root on the trail, lower back a bit sore",
    ],
)
def test_numbers_that_are_not_ages_do_not_make_a_fall_a_fracture(detector: RedFlagDetector, text: str) -> None:
    assert _tier(detector, text)[1] != "fracture-risk"


def test_sudden_severe_back_or_belly_pain_over_60_is_the_aaa_alarm(detector: RedFlagDetector) -> None:
    # issue 13 item 7: not only "tearing" or "pulsing"; NHS "Abdominal aortic aneurysm"
    assert _tier(detector, "I'm 67 and suddenly got severe pain in my back and belly") == ("alarm", "aaa")
    # younger, after lifting: the question, not the alarm
    assert _tier(detector, "sudden severe back pain after deadlifts, I'm 30") == ("check", "aaa")


@pytest.mark.parametrize(
    "text",
    [
        "both my legs felt weak and wobbly at the end of the marathon",
        "both feet go numb on long runs, laces too tight",
        "numb bum after a long bike ride",
    ],
)
def test_everyday_bilateral_and_saddle_sensations_are_not_emergencies(detector: RedFlagDetector, text: str) -> None:
    # issue 13 item 10: over-triage a clinician would not sign off
    assert detector.assess(text).alarms == ()


def test_still_an_emergency_without_the_everyday_explanation(detector: RedFlagDetector) -> None:
    assert _tier(detector, "both legs weak and wobbly and my back is agony, not just tired") == (
        "alarm",
        "cauda-equina",
    )
    assert _tier(detector, "both legs have gone numb since my back went yesterday")[0] == "alarm"


_MINI = """\
negators: ["no"]
variants:
  cant pee: [no fit piss]
  groin: [my bits]
ages:
  older: 65
concepts:
  retention: [cant pee]
  saddle: [groin]
  numb: [numb*]
  fall: [fell]
categories:
  - id: cauda-equina
    level: emergency
    title: Nerve compression
    message: Call {emergency_number} now.
    rules:
      - [retention]
      - [numb, saddle]
  - id: fracture-risk
    level: urgent
    title: Fracture
    message: See a doctor today.
    rules:
      - all: [older, fall]
        within: message
"""


def test_variants_and_ages_work_in_a_small_catalogue() -> None:
    det, problems = parse_red_flags(load_text(_MINI, "rf.yaml"), "rf.yaml")
    assert problems == []
    assert det is not None
    assert det.detect("i no fit piss since morning") is not None
    assert det.detect("my bits are numb") is not None
    assert det.detect("nan is 82 and fell in the garden") is not None
    assert det.detect("nan ran 82 mins and fell in the garden") is None


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (("  cant pee: [no fit piss]\n", "  cant pee: no fit piss\n"), "rf.yaml:3: variant 'cant pee' needs"),
        (("variants:\n", "variants: [a, b]\nx:\n"), "rf.yaml:2: 'variants' must be a mapping"),
        (("  older: 65\n", "  older: 7\n"), "rf.yaml:6: age for 'older' must be a whole number"),
        (("  groin: [my bits]\n", "  groin: [my bits]\n  saddle: [my bits]\n"), "is already a variant of 'groin'"),
    ],
)
def test_variant_and_age_problems_carry_lines(edit: tuple[str, str], expected: str) -> None:
    text = _MINI.replace(*edit)
    assert text != _MINI
    det, problems = parse_red_flags(load_text(text, "rf.yaml"), "rf.yaml")
    assert det is None
    assert any(expected in str(p) for p in problems), problems


def test_the_category_that_matched_more_of_the_message_speaks_first(detector: RedFlagDetector) -> None:
    # both are emergencies; the bystander advice for heat illness (cool them fast) fits a hot, confused runner
    a = detector.assess("My friend collapsed at the finish, confused and very hot")
    assert [h.category for h in a.alarms][:2] == ["heat-illness", "cardiac"]
    assert detector.assess("my friend collapsed at the finish and isn't breathing").alarms[0].category == "cardiac"


def test_digits_from_other_scripts_are_not_ages(detector: RedFlagDetector) -> None:
    # "❶" and "٧٠" are digits to str.isdigit but not numbers int() reads: never an error, never an age
    for text in ("grandad ❶ fell on the ice", "grandad ٧٠ fell on the ice, back sore"):
        assert detector.assess(text).alarms == () or detector.assess(text).alarms[0].category != "fracture-risk"
