"""Issue 15: questions about another body part are out of scope; the question in a long message is found."""

from __future__ import annotations

import pytest
from support import shipped_knowledge

from bot.bootstrap import Runtime
from bot.config import Settings
from bot.core.decision import decide
from bot.core.messages import IncomingMessage
from bot.core.scope import about_the_bot, focus, mentions_back, other_part


@pytest.fixture(scope="module")
def k():  # type: ignore[no-untyped-def]
    return shipped_knowledge()


@pytest.mark.parametrize(
    ("text", "part"),
    [
        ("ice or heat for a sore knee after a run?", "knee"),
        ("how long does achilles tendonitis take to settle?", "Achilles"),
        ("my neck gets stiff on long runs", "neck"),
        ("IT band pain on the outside of my knee", "knee"),
        ("hip flexor tendinopathy from hill sprints, how long out?", "hip flexor"),
        ("plantar fasciitis remedies?", "plantar fascia"),
        ("pain at the back of my knee after intervals", "knee"),
        ("my legs are cramping at 30k, how do i stop it", "leg"),
        ("hip pain on the outside when i run downhill", "hip"),
        ("stomach cramps every long run", "stomach"),
        ("my wrist is sore from the watch strap", "wrist"),
        ("legs still sore three days after the race, how long to recover", "leg"),
        ("getting back to running after a calf strain", "calf"),
        # the back said to be fine: the other part is the question
        ("back's fine now thanks, but my hamstring is sore after sprints, rest or run?", "hamstring"),
        ("no back pain at all, it's my achilles that aches in the morning", "Achilles"),
        ("not my back this time, my knee hurts going downhill", "knee"),
    ],
)
def test_other_body_parts_are_out_of_scope(text: str, part: str) -> None:
    assert other_part(text) == part


@pytest.mark.parametrize(
    "text",
    [
        "my knee and my lower back both ache after runs",
        "pain shooting down the back of my leg to my calf",  # sciatica
        "bending over sends a zap into my calf",
        "knees to chest stretch after running, good or bad?",
        "my foot lands way out in front, is that overstriding",
        "how much room should i have at the toes in running shoes",  # kit, not a complaint about the toes
        "clenched fists and tight shoulders on runs, does it matter",  # form
        "why does my back hurt after long runs",
        "leg swings before a run, worth it for my back?",  # a warm-up, not a complaint about the legs
        "should my hips be tucked under when i run",  # form
        "my arms swing across my body, is that bad form",
        "tight hips from sitting all day, could that be it",  # the tight-hips entry: no complaint about the hip
        "pain in my lower back and hip after runs",
        # the back named with "the"/"low" before "to"/"on": the back itself, not "back to running"
        "pain goes from the back to the glute and the leg, toes tingle",
        "when i stand on one leg my hip drops, could that be the ache in my low back on long runs",
        # the back feeling better is not the back said to be fine
        "stretching my hamstrings makes my back feel better, should i keep doing it",
        "how do i stretch my hamstrings without rounding my back",
    ],
)
def test_back_sciatica_form_and_kit_stay_in_scope(text: str) -> None:
    assert other_part(text) is None


def test_the_question_is_found_after_a_preamble() -> None:
    readings = focus("great parkrun today everyone!! 🎉 pb for me. anyway, random one — why does my lower back ache?")
    assert "why does my lower back ache?" in readings
    # a question that points back at the sentence before it keeps that sentence
    readings = focus("Great day at the half! My lower back has been achy since the race. Is that normal?")
    assert readings == ("is that normal?", "my lower back has been achy since the race. is that normal?")
    assert focus("why does my back hurt after runs") == ()
    # a message with no question in it (a race report, club news) is not read in parts
    assert focus("LSR done: 28k at 5:40/km. knackered, dead to the world by 9pm") == ()


def test_naming_the_back_is_not_the_adverb() -> None:
    assert mentions_back("tweaked my back on Sunday's long run, how long before I can run normally again?")
    assert mentions_back("lower back pain after hills")
    assert not mentions_back("back on track after a week off, what time is the club run")
    assert not mentions_back("physio for my knee next week, hopefully back for the relays")
    assert not mentions_back("pain at the back of my knee")


def test_a_back_question_is_never_club_chatter(k) -> None:  # type: ignore[no-untyped-def]
    # "tweaked my calf doing strides, any idea how long it takes" is a chatter line; this one is about the back
    text = "tweaked my back on Sunday's long run, how long before I can run normally again?"
    d = decide(k, text, Settings().matching)
    assert d.kind != "chatter" and d.candidates


def test_decide_gives_the_scope_reply_not_a_back_answer_sharing_words(k) -> None:  # type: ignore[no-untyped-def]
    m = Settings().matching
    d = decide(k, "ice or heat for a sore knee after a run?", m)
    assert d.kind == "out-of-scope" and d.part == "knee"
    assert decide(k, "ice or heat for my sore lower back after a run?", m).candidates[0].id == "ice-or-heat"


def test_a_race_report_before_the_question_does_not_make_it_chatter(k) -> None:  # type: ignore[no-untyped-def]
    m = Settings().matching
    text = (
        "ran my first half last week, thanks everyone for the support!!! 🥳 quick q tho — my back's been achy "
        "since, can i still do easy runs this week or should i rest it?"
    )
    d = decide(k, text, m)
    assert d.kind == "answer" and d.candidates[0].id == "run-with-back-pain"


async def test_engine_answers_another_body_part_with_what_it_covers(quiet_runtime: Runtime) -> None:
    msg = IncomingMessage("console", "u1", "c1", text="my neck gets really stiff on long runs", is_private=True)
    out = await quiet_runtime.engine.handle(msg)
    assert out.faq_id is None and out.kind == "fallback"
    text = out.replies[0].text
    assert "only cover lower back pain" in text and "neck" in text and "What I can help with" in text


@pytest.mark.parametrize(
    "text",
    [
        "what sort of things can i ask you",
        "hey, what can you actually help me with?",
        "r u a human or a robot",
        "is this a real physio answering",
        "does it only cover back pain",
    ],
)
def test_questions_about_the_bot_reach_its_entry(text: str) -> None:
    assert about_the_bot(text)
    d = decide(shipped_knowledge(), text, Settings().matching)
    assert (d.kind, d.candidates[0].id) == ("answer", "about-bot")


def test_a_back_question_beside_a_question_about_the_bot_is_answered() -> None:
    assert not about_the_bot("what do you do with the things i type here")  # a privacy question
    d = decide(shipped_knowledge(), "are you a physio? my lower back hurts when i bend over", Settings().matching)
    assert d.kind == "answer" and d.candidates[0].id != "about-bot"
