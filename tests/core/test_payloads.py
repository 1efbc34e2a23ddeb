"""The button-payload codec: what the bot issues, reads back, and refuses."""

from __future__ import annotations

import pytest
from support import shipped_knowledge

from bot.core import payloads
from bot.core.payloads import Kind, Payload, PayloadError, decode


def every_issued_payload() -> list[str]:
    k = shipped_knowledge()
    step = next(iter(k.triage.steps.values()))
    return [
        *(payloads.faq(e) for e in k.entries if e != "_chatter"),
        payloads.triage_start(),
        *(payloads.triage_answer(step.id, i) for i in range(len(step.choices))),
        *(payloads.followup_offer(o) for o in k.triage.outcomes),
        payloads.followup_decline(),
        *(payloads.checkin_answer(10**17, a) for a in payloads.CHECKIN_ANSWERS),
        *(payloads.check_yes(c) for c in k.red_flags.categories),
        payloads.check_no(),
        *(payloads.command(name, arg) for name, arg in sorted(payloads.BUTTON_COMMANDS)),
        *(payloads.consent_yes(k.consent.short, a) for a in payloads.CONSENT_ACTIONS),
        *(payloads.consent_no(a) for a in payloads.CONSENT_ACTIONS),
        payloads.forget(True),
        payloads.forget(False),
        payloads.moderation("rv", 0),
        payloads.moderation("ph", 12, "abcdef12", "x" * 40),  # the longest the review card builds
        payloads.moderation("ed", "overstriding"),
        payloads.moderation("cht", "abcdef12"),
        payloads.moderation("undo", 7),
    ]


def test_everything_the_bot_issues_fits_telegram_and_reads_back() -> None:
    k = shipped_knowledge()
    for raw in every_issued_payload():
        assert len(raw.encode("utf-8")) <= 64, raw
        decoded = decode(raw)
        assert decoded is not None and decoded.version == payloads.VERSION, raw
        assert k.still_has(decoded), raw


def test_buttons_sent_before_the_version_prefix_still_work() -> None:
    assert decode("faq:overstriding") == Payload(Kind.FAQ, ("overstriding",), version=0)
    assert decode("tri:duration:1") == Payload(Kind.TRIAGE, ("duration", "1"), version=0)
    assert decode("cmd:followups:off") == Payload(Kind.COMMAND, ("followups", "off"), version=0)
    assert shipped_knowledge().still_has(decode("fu:yes:self-care-mild"))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "raw",
    [
        None, "", "1:", "1", "9:faq:overstriding",  # nothing, or a format this version does not read
        "faq:", "faq:Bad_Id", "faq:\u202eevil", "1:faq:_chatter",  # not an FAQ id
        "tri:x:²", "tri:" + "a" * 61 + ":1", "tri:start:extra",  # Unicode digits, too long, extra fields
        "fu:1:maybe", "fu:²:better", "fu:yes:", "fu:" + "9" * 19 + ":better",
        "chk:yes:Not-A-Category", "chk:maybe",
        "cmd:forget:yes", "cmd:faq:reload", "cmd:mydata",  # never a button: no confirmation would be asked
        "consent:yes:xyz:tri", "consent:no:elsewhere", "forget:maybe", "forget:yes:now",
        "other-bot:payload", "1:faq:" + "a" * 60, "mod:zz:1", "mod:rv:x", "mod:undo",
    ],
)
def test_a_forged_foreign_or_over_long_payload_does_not_decode(raw: str | None) -> None:
    assert decode(raw) is None


def test_a_payload_for_something_no_longer_in_the_knowledge_is_not_issued() -> None:
    k = shipped_knowledge()
    for raw in ("1:faq:no-such-entry", "1:chk:yes:no-such-category", "1:fu:yes:no-such-outcome"):
        decoded = decode(raw)
        assert decoded is not None and not k.still_has(decoded), raw


def test_the_codec_refuses_to_build_what_it_could_not_read() -> None:
    with pytest.raises(PayloadError):
        payloads.faq("x" * (payloads.MAX_FAQ_ID + 1))
    with pytest.raises(PayloadError):
        payloads.command("forget", "yes")
    with pytest.raises(PayloadError):
        payloads.encode(Kind.FAQ, "a:b")
    assert payloads.faq_id_fits("x" * payloads.MAX_FAQ_ID) and not payloads.faq_id_fits("x" * 60)


def test_a_long_outcome_id_is_cut_to_fit_and_still_recognised() -> None:
    long_id = "self-care-" + "x" * 80
    raw = payloads.followup_offer(long_id)
    assert len(raw.encode()) == 64
    assert decode(raw) is not None and payloads.followup_topic(long_id) == decode(raw).args[1]  # type: ignore[union-attr]
