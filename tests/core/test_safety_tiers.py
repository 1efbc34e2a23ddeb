"""The safety gate: failing closed, the shared normaliser, word-sense guards and the two tiers (alarm, check)."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from pathlib import Path

import pytest
from support import KNOWLEDGE, dm, group, shipped_knowledge, tier

from bot.bootstrap import Runtime
from bot.core.knowledge import load_knowledge
from bot.core.messages import IncomingMessage
from bot.core.payloads import check_no, check_yes
from bot.core.red_flags import RedFlagDetector
from bot.core.text import unify
from bot.lint import red_flag_examples

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def detector() -> RedFlagDetector:
    return shipped_knowledge().red_flags


_tier = tier


# --- failing closed -----------------------------------------------------------------------------


async def test_a_detector_error_adds_the_safety_line_and_is_counted(
    runtime: Runtime, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(text: str) -> None:
        raise RuntimeError("bug in the detector")

    monkeypatch.setattr(runtime.engine.knowledge.current.red_flags, "assess", broken)
    with caplog.at_level(logging.ERROR):
        outcome = await runtime.engine.handle(dm("why does my lower back hurt after running?"))
    texts = [r.text for r in outcome.replies]
    assert any("If you think this is an emergency, call 999 now" in t for t in texts)
    assert outcome.faq_id == "back-pain-causes"  # the normal answer still comes
    assert runtime.engine.safety.detector_errors == 1
    assert "red-flag detection failed" in caplog.text


async def test_a_detector_error_in_a_listen_channel_still_gets_the_safety_line(
    runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(text: str) -> None:
        raise ValueError("bug")

    monkeypatch.setattr(runtime.engine.knowledge.current.red_flags, "assess", broken)
    msg = IncomingMessage("test", "u9", "club", text="long run sunday?", is_private=False, listen_only=True)
    outcome = await runtime.engine.handle(msg)
    assert any("call 999 now" in r.text for r in outcome.replies)


async def test_an_error_on_an_overheard_message_posts_nothing(
    runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def broken(*args: object) -> None:
        raise RuntimeError("bug")

    monkeypatch.setattr(runtime.engine, "_handle_assessed", broken)
    msg = IncomingMessage("test", "u9", "club", text="long run sunday?", is_private=False, listen_only=True)
    outcome = await runtime.engine.handle(msg)
    assert (outcome.kind, outcome.replies) == ("error", ())  # addressed, the same error says sorry
    addressed = await runtime.engine.handle(IncomingMessage("test", "u9", "club", text="hi?", is_private=False))
    assert addressed.kind == "error" and "something went wrong" in addressed.replies[0].text


# --- one normaliser -----------------------------------------------------------------------------


def test_unify_folds_look_alikes_accents_widths_and_invisible_characters() -> None:
    assert unify("my gr\u043ein") == "my groin"  # Cyrillic o
    assert unify("\uff4e\uff55\uff4d\uff42") == "numb"  # full-width
    assert unify("gr\u200bo\u00ading") == "groing"  # zero-width space, soft hyphen
    assert unify("gr\x00oin") == "groin"  # NUL
    assert unify("caf\u00e9 Can\u2019t") == "cafe cant"
    assert unify("line one\nline two") == "line one\nline two"  # a line break still ends a sentence


@pytest.mark.parametrize(
    "text",
    [
        "my gr\u043ein is numb and i can't pee",  # Cyrillic o
        "my gr\x00oin is numb and i cant pee",  # NUL inside a word
        "my \u0261roin is numb and i cant pee",  # Latin script g (a look-alike)
        "MY GROIN IS NUMB AND I CAN\u2019T PEE",
    ],
)
def test_look_alike_letters_still_raise_the_alarm(detector: RedFlagDetector, text: str) -> None:
    assert _tier(detector, text) == ("alarm", "cauda-equina")


def test_faq_matching_reads_through_the_same_normaliser(detector: RedFlagDetector) -> None:
    k = shipped_knowledge()
    plain = k.matcher.match("why does my lower back hurt after running", limit=1)
    spoofed = k.matcher.match("why d\u043ees my l\u043ewer back hurt after running", limit=1)
    assert plain[0].id == spoofed[0].id == "back-pain-causes"


# --- word-sense guards --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("quiet", "alarm"),
    [
        # a distance unit after a number is a distance, never slang
        ("18 kms easy this morning", "i just want to kms"),
        ("72 kms this week, legs are toast", "honestly might kms tonight"),
        # figurative phrases
        ("suicide sprints on the field tonight", "i keep thinking about suicide"),
        ("I nearly passed out laughing at the quiz", "my mate passed out at the finish line"),
        ("absolutely dying on those hill reps", "I want to die"),
        # non-person subjects
        ("my pace collapsed after 16k", "I collapsed after 16k"),
        ("the gazebo collapsed in the wind", "he collapsed in the heat and is confused"),
        # a speed is a crash only with a fall or crash word; "legs fell off" is running talk
        ("treadmill intervals, 8x2min at 14kph, so boring", "came off at 40 kph and landed on my back"),
        (
            'that Strava title "Legs fell off at 12k" is very me',
            "my husband just fell off his bike at 30 kph, his back is agony",
        ),
    ],
)
def test_guards_cancel_club_talk_but_not_the_real_thing(detector: RedFlagDetector, quiet: str, alarm: str) -> None:
    assert _tier(detector, quiet)[0] == "none", detector.explain(quiet)
    assert _tier(detector, alarm)[0] == "alarm", detector.explain(alarm)


@pytest.mark.parametrize(
    ("text", "category"),
    [
        # NHS "Back pain": a lump or swelling in the back, or a changed shape, wants an urgent appointment
        ("lump on my spine that's getting bigger and feels hot", "back-lump"),
        ("my back has changed shape, my spine looks bent to one side", "back-lump"),
        # NHS "Back pain": pain from the top of the back rather than low down; with feeling unwell or at rest
        ("thoracic pain, constant, doesn't change when I move, and I feel unwell", "thoracic"),
        # Nigerian Pidgin rewritten to the catalogue's words before any rule is tried
        ("him no dey feel him yansh and him bladder no dey work", "cauda-equina"),
        ("I tire for this life, I dey think of how to end am", "self-harm"),
    ],
)
def test_urgent_and_pidgin_wordings_raise_their_category(detector: RedFlagDetector, text: str, category: str) -> None:
    hits = detector.assess(text).alarms
    assert hits and hits[0].category == category, detector.explain(text)


@pytest.mark.parametrize(
    "quiet",
    [
        "knot in the muscle next to my spine, the foam roller gets it out",
        "upper back a bit tight after the rowing session",
        "lump in my throat at the finish, what a race",
        "the upper back of my vest is all sweaty constantly",
    ],
)
def test_everyday_lumps_knots_and_tight_upper_backs_stay_quiet(detector: RedFlagDetector, quiet: str) -> None:
    assert _tier(detector, quiet)[0] == "none", detector.explain(quiet)


def test_explain_names_the_guard_that_cancelled_a_word(detector: RedFlagDetector) -> None:
    reasons = {t.words: t.cancelled for t in detector.explain("18 kms easy, my pace collapsed").terms}
    assert reasons["kms"] == "distance unit after a number"
    assert reasons["collapsed"] == "non-person subject"


def test_every_catalogue_example_behaves_as_written() -> None:
    k = shipped_knowledge()
    assert red_flag_examples(k) == []
    counts = [(len(c.examples), len(c.quiet), bool(c.check)) for c in k.red_flags.categories.values()]
    assert all(examples and quiet and check for examples, quiet, check in counts)


def test_a_planted_wrong_example_is_reported_with_its_file(tmp_path: Path) -> None:
    import shutil

    folder = tmp_path / "knowledge"
    shutil.copytree(KNOWLEDGE, folder)
    path = folder / "red_flags" / "cardiac.yaml"
    text = path.read_text(encoding="utf-8")
    path.write_text(text.replace("not:\n", "not:\n  - crushing chest pain right now\n", 1), encoding="utf-8")
    problems = red_flag_examples(load_knowledge(folder))
    assert [p.file for p in problems] == ["red_flags/cardiac.yaml"]
    assert "is not quiet: alarm for 'cardiac'" in problems[0].message


# --- two tiers ----------------------------------------------------------------------------------

POSSIBLE = "my wee has gone a rusty orange colour after the 100 miler"


def test_a_possible_hit_is_a_check_not_an_alarm(detector: RedFlagDetector) -> None:
    assert _tier(detector, POSSIBLE) == ("check", "rhabdo")


async def test_a_check_asks_one_question_with_yes_and_no(runtime: Runtime) -> None:
    outcome = await runtime.engine.handle(dm(POSSIBLE))
    assert outcome.kind == "safety-check"
    assert outcome.escalation is None
    assert outcome.safety_check is not None and outcome.safety_check.category == "rhabdo"
    [reply] = outcome.replies
    assert outcome.safety_check.question in reply.text
    assert [c.payload for c in reply.choices] == [check_yes("rhabdo"), check_no()]


async def test_yes_escalates_that_category(runtime: Runtime) -> None:
    await runtime.engine.handle(dm(POSSIBLE))
    outcome = await runtime.engine.handle(dm(choice="chk:yes:rhabdo"))
    assert outcome.kind == "escalation"
    assert outcome.escalation is not None and outcome.escalation.category == "rhabdo"
    assert "call 999" in outcome.replies[0].text


async def test_typed_no_carries_on_with_the_original_message(runtime: Runtime) -> None:
    question = "why does my lower back hurt after running? my wee has gone a rusty orange colour"
    first = await runtime.engine.handle(dm(question))
    assert first.kind == "safety-check"
    outcome = await runtime.engine.handle(dm("no"))
    assert outcome.escalation is None
    assert outcome.faq_id == "back-pain-causes"


async def test_a_forged_check_payload_is_refused(runtime: Runtime) -> None:
    outcome = await runtime.engine.handle(dm(choice="chk:yes:not-a-category"))
    assert outcome.kind == "expired"


async def test_in_a_group_the_question_goes_privately(runtime: Runtime) -> None:
    outcome = await runtime.engine.handle(group(POSSIBLE))
    assert outcome.kind == "safety-check"
    assert all(r.private for r in outcome.replies)


async def test_listen_channels_act_on_alarms_only(runtime: Runtime) -> None:
    def heard(text: str) -> IncomingMessage:
        return IncomingMessage("test", "u5", "club", text=text, is_private=False, listen_only=True)

    possible = await runtime.engine.handle(heard(POSSIBLE))
    assert possible.kind == "silent" and possible.replies == () and possible.safety_check is None
    alarm = await runtime.engine.handle(heard("my groin is numb and I can't pee"))
    assert alarm.escalation is not None and alarm.escalation.level == "emergency"


async def test_a_listen_channel_answers_a_question_with_a_possible_sign_but_not_a_report(runtime: Runtime) -> None:
    """The channel cannot ask the safety question: a report of symptoms with a possible sign gets no public FAQ
    answer that may not fit it, while a question the FAQ answers gets its usual answer."""
    wee = "my wee has gone a rusty orange colour"
    k = runtime.engine.knowledge.current
    for text, kind in ((f"my lower back aches after long runs and {wee}", "silent"),
                       (f"why does my lower back hurt after running? {wee}", "answer")):
        assert k.red_flags.assess(text).possible is not None  # a possible sign in both
        heard = IncomingMessage("test", "u6", "club", text=text, is_private=False, listen_only=True)
        assert (await runtime.engine.handle(heard)).kind == kind, text


# --- an alarm never hides something worse ------------------------------------------------------

WEAK_LEG = "my left ankle feels weak since my back flared up"
FEVER_AND_PEE = "had a fever of 38.5 since yesterday with this back pain, and peeing feels a bit odd"


def test_an_urgent_alarm_carries_its_then_ask_question(detector: RedFlagDetector) -> None:
    found = detector.assess(WEAK_LEG)
    assert [h.category for h in found.alarms] == ["new-leg-weakness"]
    assert found.also_ask is not None
    assert (found.also_ask.category, found.also_ask.level) == ("progressive-weakness", "emergency")


def test_a_graver_possible_hit_is_not_hidden_by_an_urgent_alarm(detector: RedFlagDetector) -> None:
    found = detector.assess(FEVER_AND_PEE)
    assert found.escalation is not None and found.escalation.level == "urgent"
    assert found.also_ask is not None and found.also_ask.category == "cauda-equina"
    assert detector.assess("my groin is numb and I can't pee").also_ask is None  # already the gravest


async def test_the_alarm_goes_out_first_then_the_graver_question(runtime: Runtime) -> None:
    outcome = await runtime.engine.handle(dm(WEAK_LEG))
    assert outcome.kind == "escalation"
    assert outcome.escalation is not None and outcome.escalation.category == "new-leg-weakness"
    assert outcome.safety_check is not None and outcome.safety_check.level == "emergency"
    alarm, question = outcome.replies
    assert "see a doctor today" in alarm.text.lower() and not alarm.choices
    assert outcome.safety_check.question in question.text and "suddenly" in question.text
    assert [c.payload for c in question.choices] == [check_yes("progressive-weakness"), check_no()]
    yes = await runtime.engine.handle(dm(choice=check_yes("progressive-weakness")))
    assert yes.escalation is not None and yes.escalation.level == "emergency"
    assert "call 999" in yes.replies[0].text.lower()


async def test_no_after_the_alarm_keeps_its_advice_and_answers_nothing_else(runtime: Runtime) -> None:
    await runtime.engine.handle(dm("why does my back hurt after running? " + WEAK_LEG))
    outcome = await runtime.engine.handle(dm("no"))
    assert outcome.escalation is None and outcome.faq_id is None
    assert [r.text for r in outcome.replies] == [
        "Thanks. The advice above still stands; if that changes, call for help straight away."
    ]


async def test_in_a_group_the_follow_up_question_is_private(runtime: Runtime) -> None:
    outcome = await runtime.engine.handle(group(FEVER_AND_PEE))
    assert outcome.escalation is not None and outcome.escalation.category == "infection"
    assert outcome.safety_check is not None and outcome.safety_check.category == "cauda-equina"
    assert outcome.replies[-1].private and outcome.replies[-1].choices
    assert not outcome.replies[0].private  # the short public line


async def test_a_listen_channel_gets_the_alarm_without_the_question(runtime: Runtime) -> None:
    msg = IncomingMessage("test", "u5", "club", text=WEAK_LEG, is_private=False, listen_only=True)
    outcome = await runtime.engine.handle(msg)
    assert outcome.escalation is not None and outcome.escalation.category == "new-leg-weakness"
    assert outcome.safety_check is None and not any(r.choices for r in outcome.replies)


# --- a question the FAQ answers, with an urgent possible sign -----------------------------------

ASKED_WITH_URGENT_SIGN = "can you get a stress fracture in your back from running?"


async def test_a_question_the_faq_answers_gets_the_answer_then_the_urgent_question(runtime: Runtime) -> None:
    found = shipped_knowledge().red_flags.assess(ASKED_WITH_URGENT_SIGN)
    assert found.possible is not None and found.possible.level == "urgent"
    outcome = await runtime.engine.handle(dm(ASKED_WITH_URGENT_SIGN))
    assert (outcome.kind, outcome.faq_id, outcome.escalation) == ("answer", "bone-stress", None)
    assert outcome.safety_check is not None and outcome.safety_check.category == found.possible.category
    question = outcome.replies[-1]
    assert outcome.safety_check.question in question.text
    assert [c.payload for c in question.choices] == [check_yes(found.possible.category), check_no()]
    no = await runtime.engine.handle(dm("no"))  # the question was answered already: nothing is repeated
    assert no.faq_id is None and no.escalation is None and "advice above still stands" in no.replies[0].text
    await runtime.engine.handle(dm(ASKED_WITH_URGENT_SIGN, user="u2"))
    yes = await runtime.engine.handle(dm(choice=check_yes(found.possible.category), user="u2"))
    assert yes.escalation is not None and yes.escalation.level == "urgent"


async def test_a_report_of_symptoms_or_an_emergency_sign_still_gets_the_question_first(runtime: Runtime) -> None:
    report = await runtime.engine.handle(dm("my periods stopped this year and my lower back aches on every run"))
    assert report.kind == "safety-check" and report.faq_id is None
    graver = await runtime.engine.handle(dm(POSSIBLE + ", why does my back hurt after running?", user="u3"))
    assert graver.kind == "safety-check" and graver.safety_check is not None
    assert graver.safety_check.level == "emergency" and graver.faq_id is None


# --- the CLI contract ---------------------------------------------------------------------------


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bot", *args], capture_output=True, text=True, cwd=ROOT, timeout=60, check=False
    )


@pytest.mark.slow
def test_ask_reports_safety_check_and_listen_mode() -> None:
    out = json.loads(_run("ask", "--json", POSSIBLE).stdout)
    assert out["escalation"] == "none"
    assert out["safety_check"]["category"] == "rhabdo"
    assert out["safety_check"]["level"] == "emergency"
    assert out["safety_check"]["question"]
    quiet = json.loads(_run("ask", "--listen", "--json", POSSIBLE).stdout)
    assert quiet["kind"] == "silent" and quiet["reply"] == "" and quiet["safety_check"] is None
    plain = json.loads(_run("ask", "--json", "what shoes are good for running?").stdout)
    assert plain["safety_check"] is None


@pytest.mark.slow
def test_explain_prints_terms_rule_and_tier() -> None:
    result = _run("explain", "18 kms easy and my groin is numb")
    assert result.returncode == 0
    assert "'kms' (cancelled: distance unit after a number)" in result.stdout
    assert "alarm: cauda-equina (emergency), rule at red_flags/cauda-equina.yaml:" in result.stdout
    assert result.stdout.strip().endswith("tier: alarm")
