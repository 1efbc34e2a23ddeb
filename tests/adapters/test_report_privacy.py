"""Who may read the unanswered-questions log (issue 14 item 6), on the real adapters where the permission check lives:
the real python-telegram-bot client against the fake Bot API, the real engine and a SQLite file.

Anyone can create a Telegram group and own it: without moderator configuration its owner gets a private refusal
and nothing of the log; a configured moderator gets the report, with names, numbers and emails masked.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from support import real_runtime

from bot.adapters.telegram_adapter import TelegramAdapter, TelegramAdapterSettings
from bot.bootstrap import Runtime
from tests.adapters.fake_telegram import FakeBotAPI
from tests.hardening.platforms import TELEGRAM_BOT

GROUP = -100999
OWNER, ASKER, MODERATOR = 7001, 7002, 7003
#: unanswered by the shipped knowledge, with a name, a phone number and an email in it
PERSONAL = (
    "my friend Sam Patel says pickle juice cures cramp, true? text @sampatel on 07700 900123 or jo.bloggs@example.com"
)
SECRETS = ("Patel", "patel", "@sampatel", "07700", "900123", "bloggs", "example.com")
REFUSAL = "Sorry, the /faq commands are for the club's moderators."


@pytest.fixture
async def runtime(tmp_path: Path) -> AsyncIterator[Runtime]:
    async with real_runtime(tmp_path / "runbot.db") as rt:
        yield rt


async def _adapter(rt: Runtime, api: FakeBotAPI, **settings: object) -> TelegramAdapter:
    adapter = TelegramAdapter(
        rt.engine, TelegramAdapterSettings(api_base_url=f"http://127.0.0.1:{api.port}", **settings),  # type: ignore[arg-type]
        api.token,
    )
    await adapter.start()
    return adapter


async def _ask_unanswered(api: FakeBotAPI, rt: Runtime) -> None:
    before = len(api.sent(ASKER))
    await api.send_text(user_id=ASKER, text=PERSONAL, first_name="Jo")
    await api.wait_for(lambda: len(api.sent(ASKER)) >= before + 2)  # first-time notice and the fallback
    await rt.store.flush()
    rows = await rt.store.unanswered()
    assert len(rows) == 1
    stored = rows[0]["text"]
    assert "<name>" in stored and "<number>" in stored and "<email>" in stored, stored
    assert not any(s in stored for s in SECRETS), stored


def _everything_sent(api: FakeBotAPI) -> str:
    return "\n".join(m.get("text", "") for m in api.sent())


async def test_a_group_owner_without_moderator_config_is_refused_privately(api: FakeBotAPI, runtime: Runtime) -> None:
    adapter = await _adapter(runtime, api)  # the default: no moderator_user_ids, no moderator_chat_id
    try:
        await _ask_unanswered(api, runtime)
        api.chat_admins[GROUP] = {OWNER: "creator"}  # made the group, added the bot
        for command in ("/faq unanswered", f"/faq@{TELEGRAM_BOT} stats 365d"):
            before_private, before_group = len(api.sent(OWNER)), len(api.sent(GROUP))
            await api.send_text(user_id=OWNER, chat_id=GROUP, chat_type="supergroup", text=command)
            await api.wait_for(lambda b=before_private: any(m["text"] == REFUSAL for m in api.sent(OWNER)[b:]))
            group = [m["text"] for m in api.sent(GROUP)[before_group:]]
            assert all(REFUSAL not in text and "questions" not in text for text in group), group
        everything = _everything_sent(api)
        assert "pickle juice" not in everything and "messages handled" not in everything
        assert not any(s in everything for s in SECRETS)
        assert api.calls_to("getChatMember") == []  # a group's admins are never asked about
    finally:
        await adapter.stop()


async def test_a_configured_moderator_gets_the_masked_report(api: FakeBotAPI, runtime: Runtime) -> None:
    adapter = await _adapter(runtime, api, moderator_user_ids=(MODERATOR,))
    try:
        await _ask_unanswered(api, runtime)
        api.chat_admins[GROUP] = {OWNER: "creator"}
        await api.send_text(user_id=OWNER, chat_id=GROUP, chat_type="supergroup", text="/faq unanswered")
        await api.wait_for(lambda: any(m["text"] == REFUSAL for m in api.sent(OWNER)))
        await api.send_text(user_id=MODERATOR, text="/faq unanswered")
        await api.wait_for(lambda: any("couldn't answer" in m["text"] for m in api.sent(MODERATOR)))
        report = next(m["text"] for m in api.sent(MODERATOR) if "couldn't answer" in m["text"])
        assert "pickle juice" in report and "<name>" in report and "<number>" in report, report
        assert not any(s in report for s in SECRETS), report
    finally:
        await adapter.stop()


async def test_discord_manage_server_counts_only_in_the_listed_servers(tmp_path: Path) -> None:
    """A public bot can be invited to anyone's server: Manage Server there must not open the report."""
    from bot.adapters.discord_adapter import NOT_A_MODERATOR
    from tests.adapters.fake_discord import MANAGE_GUILD, FakeDiscord
    from tests.adapters.test_discord import running

    async with real_runtime(tmp_path / "runbot.db") as rt, FakeDiscord() as fake:
        fake.add_guild()
        fake.add_user("alice")
        owner = fake.add_user("owner", permissions=MANAGE_GUILD)
        async with running(rt.engine, fake, guild_ids=(), moderator_role_ids=()) as env:
            mark = env.fake.mark()
            await env.fake.slash(owner, "faq", channel_id=env.channel, subcommand="unanswered")
            refusal = await env.fake.wait_sent(1, since=mark)
            assert refusal[0].content == NOT_A_MODERATOR and refusal[0].ephemeral
            assert env.engine.calls == []  # the engine never saw it
        async with running(rt.engine, fake, moderator_role_ids=()) as env:  # this server listed in guild_ids
            mark = env.fake.mark()
            await env.fake.slash(owner, "faq", channel_id=env.channel, subcommand="stats")
            await env.fake.wait_until(lambda: len(env.engine.calls) == 1)
            msg, _ = env.engine.last()
            assert (msg.text, msg.is_moderator) == ("/faq stats", True)
