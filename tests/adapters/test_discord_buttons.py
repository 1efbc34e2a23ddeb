"""Discord: a member pressing the buttons on someone else's public answer gets a note only they see; the owner's
buttons stay as they are (real discord.py client against the fake Discord)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from support import real_runtime

from bot.adapters.discord_adapter import NOT_YOURS
from bot.bootstrap import Runtime
from tests.adapters.test_discord import Env, running

EPHEMERAL = 64


@pytest.fixture
async def env(tmp_path: Path) -> AsyncIterator[tuple[Env, Runtime]]:
    async with real_runtime(tmp_path / "runbot.db") as rt, running(rt.engine) as e:
        rt.add_adapter(e.adapter)
        yield e, rt
        assert e.errors == []


async def test_someone_elses_buttons_answer_only_the_clicker(env: tuple[Env, Runtime]) -> None:
    e, _ = env
    bob = e.fake.add_user("bob")
    mark = e.fake.mark()
    asked = await e.fake.message(e.alice, "sore back", channel_id=e.channel, mention_bot=True)
    await e.fake.wait_until(lambda: any(s.buttons for s in e.fake.sent[mark:] if s.channel_id == e.channel))
    answer = next(s for s in e.fake.sent[mark:] if s.buttons and s.channel_id == e.channel)
    assert int(e.fake.messages[answer.id]["message_reference"]["message_id"]) == int(asked["id"])
    payload = answer.buttons[0]["custom_id"]
    calls = len(e.engine.calls)

    token = await e.fake.click(bob, answer, payload)
    await e.fake.wait_until(lambda: bool(e.fake.interactions[token].callbacks))
    (callback,) = e.fake.interactions[token].callbacks
    assert callback["type"] == 4 and callback["data"]["content"] == NOT_YOURS
    assert callback["data"]["flags"] & EPHEMERAL  # only bob sees it
    assert not [mid for mid, _ in e.fake.edits if mid == answer.id], "alice's buttons were left alone"
    assert len(e.engine.calls) == calls  # nothing was asked on bob's behalf

    mine = await e.fake.click(e.alice, answer, payload)  # the owner's press works as before
    await e.fake.wait_until(lambda: len(e.engine.calls) > calls)
    assert e.fake.interactions[mine].callbacks[0]["type"] == 6


async def test_send_only_mode_delivers_a_checkin_without_a_gateway_connection(tmp_path: Path) -> None:
    """`runbot followups run-due` beside the running bot: HTTP only, no second gateway session."""
    from bot.adapters.discord_adapter import DiscordAdapter, DiscordAdapterSettings
    from bot.core.messages import ChatRef, Choice, Reply
    from tests.adapters.fake_discord import FakeDiscord
    from tests.adapters.test_discord import TOKEN

    async with real_runtime(tmp_path / "runbot.db") as rt, FakeDiscord() as fake:
        alice = fake.add_user("alice")
        with fake.patch():
            adapter = DiscordAdapter(rt.engine, DiscordAdapterSettings(), TOKEN, receive=False)
            await adapter.start()
            try:
                reply = Reply("How is your back today?", choices=(Choice("Better", "fu:1:better"),))
                await adapter.send(ChatRef("discord", str(alice.id), ""), [reply])
                sent = await fake.wait_sent(1)
            finally:
                await adapter.stop()
        assert sent[0].dm_user_id == alice.id and [b["custom_id"] for b in sent[0].buttons] == ["fu:1:better"]
        assert fake.identify is None  # never connected to the gateway
        assert not [r for r in fake.requests if "commands" in r[1]]  # no slash-command sync either
