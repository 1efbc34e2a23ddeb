"""Consent before health data (issue 16): nothing health-related is stored before "Yes, I agree"; "No thanks" still
completes a check from memory; a new consent version asks again; withdrawal leaves no health rows and no pending
check-ins; /mydata's JSON file holds every row tied to the user. Real engine, real SQLite file, shipped knowledge."""

from __future__ import annotations

import asyncio
import dataclasses
import io
import json
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from support import KNOWLEDGE, ROOT, agree, build_shipped, button, dm, group, shipped_knowledge

from bot.bootstrap import Runtime
from bot.config import PrivacySettings, RateLimitSettings, Settings
from bot.core.consent_text import ConsentText
from bot.core.knowledge import KnowledgeError, load_knowledge
from bot.core.messages import IncomingMessage, Outcome
from bot.core.payloads import command, consent_yes, followup_offer
from bot.core.ports import ManualClock
from bot.storage.sqlite import SQLiteStore

SETTINGS = Settings(rate_limit=RateLimitSettings(enabled=False), privacy=PrivacySettings(operator_name="Hilltop RC"))
RED_FLAG = "my back hurts and I've lost control of my bladder"
UNANSWERED = "/ask what socks do marathon pirates knit on tuesdays"
#: the calm path through the check: "No" / "None of these" where offered, else the first button
CALM = ("No", "None of these", "Less than 6 weeks", "Sore after runs, fine in between")
#: tables holding health data about a user, and the column linking them
HEALTH = ("triage_state", "followups", "escalations", "unanswered", "consents")


@pytest.fixture
async def rt(tmp_path: Path) -> Runtime:  # type: ignore[misc]
    async with build_shipped(SETTINGS, clock=ManualClock(), db_path=tmp_path / "c.db") as runtime:
        yield runtime


async def health_rows(store: SQLiteStore, platform: str, user_id: str) -> dict[str, int]:
    """Rows tied to the user in every health table (0 when the user has no row at all)."""
    await store.flush()
    user = await store.find_user(platform, user_id)
    out = {}
    for table in HEALTH:
        async with store.db.execute(
            f"SELECT COUNT(*) FROM {table} WHERE user_id = ?", (user.id if user else -1,)
        ) as cur:
            out[table] = int((await cur.fetchone())[0])  # type: ignore[index]
    return out


def payloads(out: Outcome) -> dict[str, str]:
    return {c.label: c.payload for r in out.replies for c in r.choices}


def text(out: Outcome) -> str:
    return "\n".join(r.text for r in out.replies)


async def walk(rt: Runtime, out: Outcome, msg: IncomingMessage, *, check_rows: bool = False) -> Outcome:
    """Press the calm answer at each step until the check ends; with ``check_rows`` nothing may be stored meanwhile."""
    for _ in range(15):
        step = [r for r in out.replies if any(button(c.payload, "tri") for c in r.choices)]
        if not step:
            return out
        labels = {c.label: c.payload for c in step[-1].choices}
        label = next((p for p in CALM if p in labels), next(iter(labels)))
        out = await rt.engine.handle(dataclasses.replace(msg, text=label, choice=labels[label]))
        if check_rows:
            assert not any((await health_rows(rt.store, msg.platform, msg.user_id)).values())
    raise AssertionError("the check did not end")


async def test_the_question_comes_first_privately_and_nothing_is_stored_before_yes(rt: Runtime) -> None:
    asked = await rt.engine.handle(group("/triage"))
    assert asked.kind == "consent"
    question = asked.replies[-1]
    assert question.private, "the consent question is asked privately"
    for words in ("What I store", "Why", "How long", "Who can see it", "/forget", "/consent", "Hilltop RC", "180"):
        assert words in question.text
    assert {"Yes, I agree", "No thanks"} <= set(payloads(asked))
    await rt.engine.handle(dm(RED_FLAG))  # a red flag works without consent ...
    await rt.engine.handle(dm(UNANSWERED))  # ... and so does a question
    await rt.engine.bookkeeper.drain(5)  # the escalation's bookkeeping runs after the reply
    assert await health_rows(rt.store, "test", "u1") == dict.fromkeys(HEALTH, 0)
    async with rt.store.db.execute("SELECT user_id, level, category FROM escalations") as cur:
        logged = [tuple(r) for r in await cur.fetchall()]
    assert logged and all(r[0] is None for r in logged), "without consent: level, category and time only"
    async with rt.store.db.execute("SELECT user_id FROM unanswered") as cur:
        assert [r[0] for r in await cur.fetchall()] == [0]  # kept for moderators, linked to nobody


async def test_yes_stores_the_version_hash_and_time_then_the_check_is_stored(rt: Runtime) -> None:
    asked = await rt.engine.handle(dm("/triage"))
    started = await rt.engine.handle(dm(choice=payloads(asked)["Yes, I agree"]))
    assert started.kind == "triage"
    assert "version 1" in started.replies[0].text
    async with rt.store.db.execute("SELECT platform, version, text_hash, given_at FROM consents") as cur:
        rows = [tuple(r) for r in await cur.fetchall()]
    consent = rt.knowledge.current.consent
    assert rows == [("test", consent.version, consent.sha256, "2026-01-01T09:00:00.000000Z")]
    assert (await health_rows(rt.store, "test", "u1"))["triage_state"] == 1
    end = await walk(rt, started, dm())
    assert "Yes, check in" in payloads(end), "with consent a check-in is offered"
    assert (await health_rows(rt.store, "test", "u1"))["triage_state"] == 0  # deleted when the check ends


async def test_no_stores_nothing_and_still_completes_the_check(rt: Runtime) -> None:
    asked = await rt.engine.handle(dm("/triage"))
    started = await rt.engine.handle(dm(choice=payloads(asked)["No thanks"]))
    assert started.kind == "triage" and "won't store anything" in started.replies[0].text
    assert not any((await health_rows(rt.store, "test", "u1")).values())
    # typed answers reach the check held in memory as buttons do
    typed = await rt.engine.handle(dm("no"))
    assert typed.kind == "triage"
    end = await walk(rt, typed, dm(), check_rows=True)
    assert end.kind == "triage" and "Yes, check in" not in payloads(end), "no check-ins after a no"
    async with rt.store.db.execute("SELECT COUNT(*) FROM triage_state") as cur:
        assert (await cur.fetchone())[0] == 0  # type: ignore[index]
    again = await rt.engine.handle(dm("/triage"))  # not asked twice in the session
    assert again.kind == "triage"
    assert (await rt.engine.handle(dm(choice=followup_offer("self-care-mild")))).kind == "followup"
    assert not any((await health_rows(rt.store, "test", "u1")).values())


async def test_a_red_flag_ends_a_check_held_in_memory(rt: Runtime) -> None:
    asked = await rt.engine.handle(dm("/triage"))
    await rt.engine.handle(dm(choice=payloads(asked)["No thanks"]))
    out = await rt.engine.handle(dm(RED_FLAG))
    assert out.kind == "escalation" and "stopped the back-pain check" in text(out)
    assert (await rt.engine.handle(dm("/cancel"))).replies[0].text.startswith("There's nothing to cancel")


async def test_a_new_consent_version_asks_again_before_the_next_stored_answer(rt: Runtime) -> None:
    await agree(rt)
    started = await rt.engine.handle(dm("/triage"))
    assert started.kind == "triage"
    step = started.replies[-1].choices[0].payload
    k = rt.knowledge.current
    new = ConsentText("2", k.consent.text + "\n\nWe now also keep X.")
    rt.knowledge.swap(dataclasses.replace(k, consent=new))
    asked = await rt.engine.handle(dm(choice=step))
    assert asked.kind == "consent" and "version 2" in asked.replies[0].text
    stale_yes = payloads(asked)["Yes, I agree"].replace(new.short, k.consent.short)
    assert (await rt.engine.handle(dm(choice=stale_yes))).kind == "consent", "a yes to the old text is not taken"
    again = await rt.engine.handle(dm(choice=payloads(asked)["Yes, I agree"]))
    assert again.kind == "triage" and again.replies[-1].choices[0].payload == step  # the same step, asked again
    async with rt.store.db.execute("SELECT version, text_hash FROM consents") as cur:
        assert tuple(await cur.fetchone()) == ("2", new.sha256)  # type: ignore[arg-type]
    moved = await rt.engine.handle(dm(choice=step))
    assert moved.kind in ("triage", "escalation")


async def test_no_to_a_new_version_moves_the_check_into_memory(rt: Runtime) -> None:
    await agree(rt)
    started = await rt.engine.handle(dm("/triage"))
    k = rt.knowledge.current
    rt.knowledge.swap(dataclasses.replace(k, consent=ConsentText("2", k.consent.text + " Changed.")))
    asked = await rt.engine.handle(dm(choice=started.replies[-1].choices[0].payload))
    refused = await rt.engine.handle(dm(choice=payloads(asked)["No thanks"]))
    assert refused.kind == "triage"
    assert (await health_rows(rt.store, "test", "u1"))["triage_state"] == 0
    await walk(rt, refused, dm())


async def test_withdrawal_leaves_no_health_rows_and_no_pending_checkins(rt: Runtime) -> None:
    bystander = dm(user="other")
    for msg in (dm(), bystander):
        await agree(rt, msg.user_id)
        end = await walk(rt, await rt.engine.handle(dataclasses.replace(msg, text="/triage")), msg)
        accepted = await rt.engine.handle(dataclasses.replace(msg, choice=payloads(end)["Yes, check in"]))
        assert accepted.kind == "followup"
        await rt.engine.handle(dataclasses.replace(msg, text=RED_FLAG))
        await rt.engine.handle(dataclasses.replace(msg, text=UNANSWERED))
        await rt.engine.handle(dataclasses.replace(msg, text="/triage"))  # left half-way
    await rt.engine.bookkeeper.drain(5)  # the escalations' bookkeeping has run
    before = await health_rows(rt.store, "test", "u1")
    assert all(before.values()), before
    shown = await rt.engine.handle(dm("/consent"))
    assert "version 1" in text(shown) and payloads(shown) == {"Withdraw consent": command("consent", "withdraw")}
    done = await rt.engine.handle(dm(choice=command("consent", "withdraw")))
    assert "withdrawn" in text(done)
    assert await health_rows(rt.store, "test", "u1") == dict.fromkeys(HEALTH, 0)
    assert all((await health_rows(rt.store, "test", "other")).values()), "the bystander keeps theirs"
    assert [f.platform_user_id for f in await rt.store.list_followups()] == ["other"], "no pending check-in left"
    assert (await rt.engine.handle(dm("/triage"))).kind == "consent", "asked again before anything is stored"


async def test_mydata_json_holds_every_row_tied_to_the_user(rt: Runtime) -> None:
    await agree(rt)
    end = await walk(rt, await rt.engine.handle(dm("/triage")), dm())
    await rt.engine.handle(dm(choice=payloads(end)["Yes, check in"]))
    await rt.engine.handle(dm(RED_FLAG))
    await rt.engine.handle(dm(UNANSWERED))
    await rt.engine.handle(dm("/triage"))
    await rt.engine.bookkeeper.drain(5)  # the escalations' bookkeeping has run
    out = await rt.engine.handle(dm("/mydata"))
    reply = out.replies[-1]
    assert reply.attachment is not None and reply.attachment.mime == "application/json"
    assert "{" not in reply.text, "the readable summary; the JSON is the file"
    data = json.loads(reply.attachment.data.decode("utf-8"))
    rows = await health_rows(rt.store, "test", "u1")
    assert len(data["followups"]) == rows["followups"] == 1
    assert len(data["escalations"]) == rows["escalations"] == 1
    assert len(data["unanswered"]) == rows["unanswered"] == 1
    assert (data["triage"] is not None) == bool(rows["triage_state"])
    assert data["consent"]["version"] == "1" and data["consent"]["text_sha256"] == rt.knowledge.current.consent.sha256
    assert data["user"]["platform_user_id"] == "u1"


async def test_storage_down_keeps_the_consent_question_honest(rt: Runtime) -> None:
    from bot.core.context import Context
    from bot.core.resilience import transient_user

    msg = dm(choice=consent_yes("00000000", "tri"))
    ctx = Context(msg, transient_user(msg, rt.clock.now()), rt.knowledge.current, degraded=True)  # type: ignore[attr-defined]
    out = await rt.engine.consent.choice(ctx, ("yes", rt.knowledge.current.consent.short, "tri"))
    assert out.kind == "unavailable"


def test_consent_file_is_validated_with_file_and_line(tmp_path: Path) -> None:
    import shutil

    folder = tmp_path / "knowledge"
    shutil.copytree(KNOWLEDGE, folder)
    (folder / "consent.yaml").write_text(
        'version: "1 beta"\ntext: >\n  May I store {secret}? Delete with /forget.\nagree: "Yes"\n', encoding="utf-8"
    )
    with pytest.raises(KnowledgeError) as err:
        load_knowledge(folder)
    said = "\n".join(map(str, err.value.problems))
    assert "consent.yaml:1" in said and "version '1 beta'" in said
    assert "consent.yaml:2" in said and "{secret}" in said and "/consent" in said and "/mydata" in said


@pytest.mark.slow
def test_runbot_check_validates_the_consent_file(tmp_path: Path) -> None:
    import shutil
    import subprocess

    folder = tmp_path / "knowledge"
    shutil.copytree(KNOWLEDGE, folder)
    (folder / "consent.yaml").write_text("version: 2\n", encoding="utf-8")
    done = subprocess.run(
        [sys.executable, "-m", "bot", "check", str(folder)], cwd=ROOT, capture_output=True, text=True,
        timeout=120,
    )
    assert done.returncode == 1
    assert "consent.yaml:1: the consent file is missing 'text'" in done.stdout + done.stderr


@pytest.mark.slow
def test_runbot_ask_stores_nothing_health_related(tmp_path: Path) -> None:
    import sqlite3
    import subprocess

    db = tmp_path / "ask.db"
    for line, kind in (("/triage", "consent"), (RED_FLAG, "escalation"), (UNANSWERED, "fallback")):
        done = subprocess.run(
            [sys.executable, "-m", "bot", "ask", "--db", str(db), "--json", line], cwd=ROOT, capture_output=True,
            text=True, timeout=120,
        )
        assert done.returncode == 0, done.stderr
        assert json.loads(done.stdout)["kind"] == kind, line
    with sqlite3.connect(db) as conn:
        for table in ("triage_state", "followups", "consents"):
            assert conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0] == 0, table
        assert conn.execute("SELECT COUNT(*) FROM escalations WHERE user_id IS NOT NULL").fetchone()[0] == 0
        assert conn.execute("SELECT COUNT(*) FROM unanswered WHERE user_id != 0").fetchone()[0] == 0


async def test_console_asks_and_a_typed_no_completes_the_check_from_memory(tmp_path: Path) -> None:
    from bot.adapters.console import CONSOLE_USER, ConsoleAdapter

    async with build_shipped(SETTINGS, clock=ManualClock(), db_path=tmp_path / "k.db") as rt:
        shown = io.StringIO()
        console = ConsoleAdapter(rt.engine, out=shown, read_line=lambda: "")
        asked = await rt.engine.handle(console.to_message("/triage"))
        console.render(asked.replies)
        assert "1. Yes, I agree" in shown.getvalue() and "2. No thanks" in shown.getvalue()
        out = await rt.engine.handle(console.to_message("2"))
        for _ in range(15):
            console.render(out.replies)
            labels = [c.label for r in out.replies for c in r.choices]
            if not any(button(c.payload, "tri") for r in out.replies for c in r.choices):
                break
            label = next((p for p in CALM if p in labels), labels[0])
            out = await rt.engine.handle(console.to_message(str(labels.index(label) + 1)))
            assert not any((await health_rows(rt.store, "console", CONSOLE_USER)).values())
        assert "Yes, check in" not in [c.label for r in out.replies for c in r.choices]
        assert "won't store anything" in shown.getvalue()


async def test_retention_removes_old_check_answers_and_finished_checkins(tmp_path: Path) -> None:
    from bot.app import App
    from bot.config import KnowledgeSettings
    from bot.core.store import StoredTriage

    clock = ManualClock()
    db = tmp_path / "retention.db"
    settings = Settings(privacy=PrivacySettings(triage_days=30), knowledge=KnowledgeSettings(str(KNOWLEDGE), False))
    async with SQLiteStore(db, clock=clock) as store:  # written 31 days "ago"
        old = await store.get_or_create_user("test", "old")
        await store.save_triage(old, StoredTriage("back-pain", "duration", (("bladder-saddle", 0),), "c"))
        done = await store.add_followup(old, "c", "self-care-mild", clock.now())
        await store.update_followup(done, state="done")
    clock.advance(days=31)
    async with SQLiteStore(db, clock=clock) as store:  # and today
        new = await store.get_or_create_user("test", "new")
        await store.save_triage(new, StoredTriage("back-pain", "duration", (), "c"))
        await store.add_followup(new, "c", "self-care-mild", clock.now() + timedelta(days=3))

    rt = build_shipped(settings, clock=clock, db_path=db)
    app = App(settings, runtime=rt)
    app.housekeeping_seconds = 0.02
    run = asyncio.create_task(app.run(adapters=[]))

    async def purged() -> None:
        while True:
            if rt.store._db is not None:
                async with rt.store.db.execute("SELECT COUNT(*) FROM followups") as cur:
                    if (await cur.fetchone())[0] == 1:  # type: ignore[index]
                        return
            await asyncio.sleep(0.02)

    await asyncio.wait_for(purged(), 10)
    app.request_stop()
    assert await asyncio.wait_for(run, 10) == 0
    async with SQLiteStore(db, clock=clock) as store:
        query = "SELECT u.platform_user_id FROM triage_state t JOIN users u ON u.id = t.user_id"
        async with store.db.execute(query) as c:
            assert [r[0] for r in await c.fetchall()] == ["new"]
        async with store.db.execute("SELECT state FROM followups") as cur:
            assert [r[0] for r in await cur.fetchall()] == ["pending"]


def test_retention_settings_are_validated(tmp_path: Path) -> None:
    from bot.config import ConfigError, load_settings

    cfg = tmp_path / "c.yaml"
    cfg.write_text("privacy:\n  triage_days: 0\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"c.yaml:2: privacy.triage_days: must be at least 1, got 0"):
        load_settings(cfg)
    cfg.write_text("logging:\n  include_text: yes please\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"logging\.include_text: expected true or false"):
        load_settings(cfg)


@pytest.mark.slow
def test_privacy_notice_is_filled_in_from_the_config(tmp_path: Path) -> None:
    import subprocess

    cfg = tmp_path / "config.yaml"
    cfg.write_text(
        'privacy:\n  operator_name: "Hilltop Runners"\n  operator_contact: "privacy@hilltop.example"\n'
        "  retention_days: 90\n  triage_days: 14\nsafety:\n  region: ie\n",
        encoding="utf-8",
    )
    done = subprocess.run(
        [sys.executable, "-m", "bot", "privacy-notice", "--config", str(cfg)], cwd=ROOT, capture_output=True,
        text=True, timeout=120,
    )
    assert done.returncode == 0 and done.stderr == ""
    notice = done.stdout
    assert notice.startswith("# Privacy notice: runbot, run by Hilltop Runners")
    for filled in ("privacy@hilltop.example", "90 days", "14 days", "Data Protection Commission", "GDPR Article 9"):
        assert filled in notice
    assert "{" not in notice and "<!--" not in notice
    for name in ("/consent", "/mydata", "/forget"):
        assert name in notice


def test_privacy_notice_without_an_operator_says_what_to_set() -> None:
    from bot.privacy_notice import NoticeError, render

    k = shipped_knowledge()
    notice = render(Settings(), k.consent)
    assert "[operator name: set privacy.operator_name]" in notice and "ico.org.uk" in notice  # uk by default
    with pytest.raises(NoticeError, match="unknown placeholder"):
        render(Settings(), k.consent, template="Hello {nobody}")
