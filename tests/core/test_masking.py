"""Masking personal details in unanswered questions before they are stored for moderators (issue 14 item 6)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.core.masking import mask, redact
from bot.core.reports import redact as report_redact


@pytest.mark.parametrize(
    ("text", "name", "expected"),
    [
        ("email me at jo.bloggs+run@example.co.uk please", "", "email me at <email> please"),
        ("see https://evil.example/x?y=1 or www.strava.com/athletes/12", "", "see <link> or <link>"),
        ("ask @coach_sam about it", "", "ask <handle> about it"),
        ("call 07700 900123 or +44 (0)20 7946 0958", "", "call <number> or <number>"),
        ("my name is priya and my back hurts", "", "my name is <name> and my back hurts"),
        ("hi I'm Chris, does foam rolling help", "Chris Evans", "hi im <name> does foam rolling help"),
        ("does coach Sam Patel know about cramp", "", "does coach <name> <name> know about cramp"),
        ("Sam said ice is better than heat", "", "<name> said ice is better than heat"),
    ],
)
def test_personal_details_are_masked(text: str, name: str, expected: str) -> None:
    assert mask(text, name) == expected


@pytest.mark.parametrize(
    "text",
    [
        "Does the NHS say I should rest after a 10km run in March?",
        "Is a 5k at 4:30 pace ok two days after a marathon in 2024",
        "Why does my back hurt? My physio is away.",
    ],
)
def test_ordinary_questions_keep_their_words(text: str) -> None:
    masked = mask(text)
    assert "<" not in masked, masked


def test_reports_redact_rows_stored_before_masking() -> None:
    old = "text me on 07700 900123 or at sam@example.com, @sam_runs"
    assert report_redact(old) == "text me on <number> or at <email>, <handle>"
    assert redact("12345 steps") == "<number> steps"


@given(st.text(max_size=300), st.text(max_size=30))
def test_mask_never_fails(text: str, name: str) -> None:
    assert isinstance(mask(text, name), str)


@given(
    st.from_regex(r"\A(\+44 ?|0)7\d{3}[ -]?\d{6}\Z"),
    st.from_regex(r"\A[a-z][a-z0-9_]{1,14}\Z"),
    st.from_regex(r"\A[a-z][a-z0-9.]{0,10}[a-z0-9]@[a-z]{2,10}\.(com|org|co\.uk)\Z"),
)
def test_numbers_handles_and_emails_are_always_masked(phone: str, handle: str, email: str) -> None:
    masked = mask(f"ring {phone} or ask @{handle} or write to {email} about my back")
    assert masked == "ring <number> or ask <handle> or write to <email> about my back"
