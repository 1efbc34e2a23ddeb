"""Output: user text is never echoed unescaped into a formatted reply, no mention pings, links only from knowledge."""

from __future__ import annotations

import json
import re
from pathlib import Path

import discord
from support import KNOWLEDGE, agree, dm, group, real_runtime

from bot.adapters.telegram_text import safe_name
from bot.bootstrap import Runtime
from bot.core.messages import IncomingMessage
from bot.core.replies import clean_name
from tests.adapters.fake_discord import FakeDiscord
from tests.adapters.fake_telegram import FakeBotAPI
from tests.hardening.platforms import GROUP, TELEGRAM_BOT, TELEGRAM_TOKEN, discord_bot, telegram_bot

RED_FLAG = "since this morning I can't feel my groin or bum and I wet myself without noticing"
EVIL = "evil.example"
URL = re.compile(r"(?i)\b(?:https?://|www\.)[^\s)>\]]+")
#: user-controlled pieces that must never come back as-is
HOSTILE_NAMES = [
    "**Sam** [Win](http://evil.example)",
    "@everyone",
    "Sam\u202egnp.exe",
    "Line\nBreak <b>x</b>",
    "__init__ ~~x~~ ||y||",
]


def _knowledge_text() -> str:
    return "\n".join(p.read_text(encoding="utf-8") for p in sorted(KNOWLEDGE.glob("*.yaml")))


async def test_engine_never_repeats_hostile_command_names_or_links(quiet_runtime: Runtime) -> None:
    engine = quiet_runtime.engine
    knowledge = _knowledge_text()
    probes = [
        "/[x](https://evil.example/phish)",
        "/**bold**",
        "/__init__",
        "/<b>x</b>",
        "/@everyone",
        "/ask [click](https://evil.example) why does my back hurt",
        "[click](https://evil.example) why does my back hurt after running",
        "www.evil.example is where I read about back pain",
        "/followups https://evil.example",
        "/start https://evil.example",
        "/faq https://evil.example",
    ]
    for text in probes:
        out = await engine.handle(dm(text, user=f"u{len(text)}"))
        assert out.replies
        for reply in out.replies:
            assert EVIL not in reply.text and "**bold**" not in reply.text and "<b>" not in reply.text, (text, reply)
            assert "__init__" not in reply.text and "@everyone" not in reply.text
            for url in URL.findall(reply.text):
                assert url.rstrip(".,;") in knowledge, url
    plain = await engine.handle(dm("/frobnicate"))  # a plain unknown name is still named, helpfully
    assert "/frobnicate" in plain.replies[0].text


async def test_display_names_are_cleaned_before_they_reach_a_reply(quiet_runtime: Runtime) -> None:
    engine = quiet_runtime.engine
    for i, name in enumerate(HOSTILE_NAMES):
        out = await engine.handle(group(RED_FLAG, user=f"n{i}", name=name))
        public = next(r.text for r in out.replies if not r.private)
        assert "\u202e" not in public and "\n" not in public.split(",")[0]
        assert clean_name(name) in public
    long = await engine.handle(group(RED_FLAG, user="long", name="A" * 5000 + "\u0301" * 5000))
    first_line = next(r.text for r in long.replies if not r.private)
    assert len(first_line) < 400


async def test_mydata_contains_no_user_text(quiet_runtime: Runtime) -> None:
    engine = quiet_runtime.engine
    msg = IncomingMessage("test", "u1", "c1", text="/mydata", display_name=HOSTILE_NAMES[0])
    await agree(quiet_runtime, "u1")  # something is stored about them (without it /mydata has nothing to show)
    await engine.handle(IncomingMessage("test", "u1", "c1", text=f"[x](https://{EVIL}) my back hurts a lot"))
    out = await engine.handle(msg)
    text = out.replies[0].text
    assert out.replies[0].attachment is not None
    data = json.loads(out.replies[0].attachment.data)
    assert data["user"]["platform_user_id"] == "u1"
    assert EVIL not in text and "Sam" not in text


async def test_discord_escapes_names_and_never_pings(tmp_path: Path) -> None:
    async with FakeDiscord() as fake, real_runtime(tmp_path / "d.db") as rt:
        users = [fake.add_user(name) for name in ("**x** [y](http://e.io)", "@everyone", "~~z~~ ||s||")]
        with fake.patch():
            async with discord_bot(rt, fake=fake) as world:
                for user in users:
                    mark = fake.mark()
                    await fake.message(user, RED_FLAG, channel_id=world.channel, mention_bot=True)
                    sent = await fake.wait_sent(2, since=mark)
                    public = next((s for s in sent if s.channel_id == world.channel), None)
                    assert public is not None, [(s.via, s.channel_id, s.content[:50]) for s in sent]
                    raw = user.payload["global_name"]  # what discord.py reports as the display name
                    escaped = discord.utils.escape_markdown(raw)
                    assert escaped in public.content
                    if escaped != raw:  # formatting characters are shown literally
                        assert raw not in public.content, public.content
                    mark = fake.mark()
                    await fake.message(user, "/[x](https://evil.example)")
                    replies = await fake.wait_sent(2, since=mark)  # first contact: the notice, then the reply
                    assert "know that command" in replies[-1].content
                    assert all(EVIL not in r.content for r in replies)
        assert fake.sent
        for sent in fake.sent:  # every message the bot sent refused every kind of ping
            assert sent.allowed_mentions is not None and sent.allowed_mentions.get("parse") == []
            assert not sent.allowed_mentions.get("users") and not sent.allowed_mentions.get("roles")


async def test_telegram_sends_plain_text_only(tmp_path: Path) -> None:
    api = FakeBotAPI(token=TELEGRAM_TOKEN, bot_username=TELEGRAM_BOT)
    await api.start()
    try:
        async with real_runtime(tmp_path / "t.db") as rt, telegram_bot(rt, api):
            name = "<b>Sam</b> *x* [y](https://evil.example)\u202e"
            api.blocked_chats.add(4242)  # private message fails: the group gets a note that names the runner
            await api.send_text(user_id=4242, chat_id=GROUP, chat_type="supergroup", first_name=name,
                                text=f"@{TELEGRAM_BOT} {RED_FLAG}")
            await api.send_text(user_id=77, text="/[x](https://evil.example)")
            await api.wait_sent(GROUP, 2)
            await api.wait_sent(77, 2)
    finally:
        await api.stop()
    sends = api.calls_to("sendMessage")
    assert sends
    for call in sends:
        assert "parse_mode" not in call.params, "plain text only: nothing the user typed can become markup"
        assert "entities" not in call.params
        assert EVIL not in call.params["text"] or "<b>Sam</b>" in call.params["text"]
        assert "\u202e" not in call.params["text"]
    group_texts = [c.params["text"] for c in sends if c.params["chat_id"] == GROUP]
    # shown as plain text, with the link defused (Telegram would link a bare domain even in plain text)
    assert any(safe_name(name) in t for t in group_texts)
    assert all(EVIL not in t and "https://evil" not in t for t in group_texts)
    assert all(EVIL not in c.params["text"] for c in sends if c.params["chat_id"] == 77)
