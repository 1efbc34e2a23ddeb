"""A small fake Discord (REST + gateway) on 127.0.0.1 for driving the real discord.py client in tests.

It answers the routes the bot uses, records every request, records every route it does not know
(tests assert there were none), and offers helpers to dispatch gateway events and wait for the
messages the bot sends.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import discord
import discord.gateway
import discord.http
import yarl
from aiohttp import WSMsgType, web

JSON = dict[str, Any]

BOT_ID = 900_000_000_000_000_001
APP_ID = 900_000_000_000_000_002
OWNER_ID = 900_000_000_000_000_003
EPHEMERAL = 1 << 6
INTENT_GUILDS = 1 << 0
INTENT_GUILD_MESSAGES = 1 << 9
INTENT_DM_MESSAGES = 1 << 12
INTENT_MESSAGE_CONTENT = 1 << 15
MANAGE_GUILD = 1 << 5
_BODY = web.RequestKey("body", object)


def _user_payload(user_id: int, name: str, *, bot: bool = False) -> JSON:
    return {
        "id": str(user_id),
        "username": name,
        "discriminator": "0",
        "global_name": name.title(),
        "avatar": None,
        "bot": bot,
        "public_flags": 0,
    }


def _member_payload(user: JSON, roles: tuple[int, ...] = (), permissions: int | None = None) -> JSON:
    member: JSON = {
        "user": user,
        "roles": [str(r) for r in roles],
        "joined_at": "2026-01-01T00:00:00+00:00",
        "deaf": False,
        "mute": False,
        "flags": 0,
        "nick": None,
    }
    if permissions is not None:
        member["permissions"] = str(permissions)
    return member


def _json(data: Any, status: int = 200) -> web.Response:
    # discord.py only decodes bodies whose Content-Type is exactly "application/json" (no charset).
    return web.Response(status=status, body=json.dumps(data).encode(), headers={"Content-Type": "application/json"})


@dataclass
class FakeUser:
    """A member of the fake Discord."""

    id: int
    name: str
    roles: tuple[int, ...] = ()
    permissions: int = 0
    dms_closed: bool = False

    @property
    def payload(self) -> JSON:
        return _user_payload(self.id, self.name)


@dataclass
class FakeGuild:
    """A guild with text channels and roles."""

    id: int
    name: str
    channel_ids: tuple[int, ...]
    role_ids: tuple[int, ...] = ()


@dataclass
class Sent:
    """A message the bot created (channel message, interaction response or follow-up)."""

    id: int
    channel_id: int
    content: str
    via: str  # "channel" | "followup" | "callback"
    ephemeral: bool = False
    dm_user_id: int | None = None
    payload: JSON = field(default_factory=dict)

    @property
    def components(self) -> list[JSON]:
        return list(self.payload.get("components") or [])

    @property
    def buttons(self) -> list[JSON]:
        return [c for row in self.components for c in row.get("components", []) if c.get("type") == 2]

    @property
    def allowed_mentions(self) -> JSON | None:
        return self.payload.get("allowed_mentions")

    @property
    def private(self) -> bool:
        """Only the user sees it: a DM or an ephemeral interaction message."""
        return self.ephemeral or self.dm_user_id is not None


@dataclass
class _InteractionState:
    id: int
    channel_id: int
    user_id: int
    message_id: int | None  # the clicked message for component interactions
    loading: bool = False
    ephemeral: bool = False
    original_id: int | None = None
    callbacks: list[JSON] = field(default_factory=list)


class FakeDiscord:
    """The fake server. Use as ``async with FakeDiscord() as fake:``; ``fake.patch()`` points discord.py at it."""

    def __init__(self) -> None:
        self._ids: Iterator[int] = itertools.count(1_000_000_000_000_000_000)
        self.bot = _user_payload(BOT_ID, "runbot", bot=True)
        self.users: dict[int, FakeUser] = {}
        self.guilds: dict[int, FakeGuild] = {}
        self.channel_guild: dict[int, int] = {}
        self.dm_channels: dict[int, int] = {}  # dm channel id -> user id
        self.messages: dict[int, JSON] = {}
        self.sent: list[Sent] = []
        self.edits: list[tuple[int, JSON]] = []
        self.deleted: list[int] = []
        self.requests: list[tuple[str, str, JSON | None]] = []
        self.unhandled: list[str] = []
        #: files the bot attached (multipart uploads): (request path, filename, bytes)
        self.uploads: list[tuple[str, str, bytes]] = []
        self.synced_commands: dict[str, list[JSON]] = {}
        self.identify: JSON | None = None
        #: every IDENTIFY payload, in order (one per shard connection)
        self.identifies: list[JSON] = []
        #: what GET /gateway/bot recommends (discord.AutoShardedClient asks when no shard count is configured)
        self.recommended_shards = 1
        self._socket_shard: dict[int, tuple[int, int]] = {}  # id(ws) -> (shard id, shard count)
        self.interactions: dict[str, _InteractionState] = {}
        #: modals the bot opened (interaction callback type 9): the modal's custom_id, title and components
        self.modals: list[JSON] = []
        self._sockets: list[web.WebSocketResponse] = []
        self._seq = 0
        self._changed = asyncio.Condition()
        self._identified = asyncio.Event()
        self._runner: web.AppRunner | None = None
        self.port = 0
        self.invalid_tokens: set[str] = set()
        #: channels where the bot lacks Send Messages (403, code 50013)
        self.forbidden_channels: set[int] = set()
        #: close the gateway with 4014 (disallowed intents) on IDENTIFY, as when Message Content is not enabled
        self.reject_intents = False
        self.token_seen: str | None = None

    # ----------------------------------------------------------------- lifecycle
    def new_id(self) -> int:
        return next(self._ids)

    async def __aenter__(self) -> FakeDiscord:
        app = web.Application(middlewares=[self._record])
        r = app.router
        r.add_get("/gateway", self._gateway)
        api = "/api/v10"
        r.add_get(api + "/gateway/bot", self._gateway_bot)
        r.add_get(api + "/users/@me", self._me)
        r.add_get(api + "/oauth2/applications/@me", self._application)
        r.add_put(api + "/applications/{app}/commands", self._sync_commands)
        r.add_put(api + "/applications/{app}/guilds/{guild}/commands", self._sync_commands)
        r.add_post(api + "/users/@me/channels", self._create_dm)
        r.add_get(api + "/users/{user}", self._get_user)
        r.add_post(api + "/channels/{channel}/messages", self._create_message)
        r.add_patch(api + "/channels/{channel}/messages/{message}", self._edit_message)
        r.add_post(api + "/interactions/{id}/{token}/callback", self._callback)
        r.add_post(api + "/webhooks/{app}/{token}", self._followup)
        r.add_patch(api + "/webhooks/{app}/{token}/messages/{message}", self._edit_webhook_message)
        r.add_delete(api + "/webhooks/{app}/{token}/messages/{message}", self._delete_webhook_message)
        r.add_route("*", "/{tail:.*}", self._unhandled)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        server = site._server
        assert server is not None
        self.port = server.sockets[0].getsockname()[1]  # type: ignore[attr-defined]
        return self

    async def __aexit__(self, *exc: object) -> None:
        for ws in list(self._sockets):
            await ws.close()
        if self._runner is not None:
            await self._runner.cleanup()

    @contextlib.contextmanager
    def patch(self) -> Iterator[None]:
        """Point discord.py's REST base and gateway at this server; restore afterwards."""
        old_base = discord.http.Route.BASE
        old_gateway = discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY
        discord.http.Route.BASE = f"http://127.0.0.1:{self.port}/api/v10"
        discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(f"ws://127.0.0.1:{self.port}/gateway")
        try:
            yield
        finally:
            discord.http.Route.BASE = old_base
            discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = old_gateway

    # ----------------------------------------------------------------- world building
    def add_user(self, name: str, *, roles: tuple[int, ...] = (), permissions: int = 0) -> FakeUser:
        user = FakeUser(self.new_id(), name, roles, permissions)
        self.users[user.id] = user
        return user

    def add_guild(
        self, name: str = "Running Club", channels: int = 2, roles: int = 1, *, guild_id: int | None = None
    ) -> FakeGuild:
        channel_ids = tuple(self.new_id() for _ in range(channels))
        gid = self.new_id() if guild_id is None else guild_id
        guild = FakeGuild(gid, name, channel_ids, tuple(self.new_id() for _ in range(roles)))
        self.guilds[guild.id] = guild
        for cid in guild.channel_ids:
            self.channel_guild[cid] = guild.id
        return guild

    @staticmethod
    def bot_role_id(guild: FakeGuild) -> int:
        """The managed role Discord gives the bot in each guild (people sometimes mention it instead of the bot)."""
        return guild.id + 1_000

    def dm_channel_of(self, user: FakeUser) -> int:
        for cid, uid in self.dm_channels.items():
            if uid == user.id:
                return cid
        cid = self.new_id()
        self.dm_channels[cid] = user.id
        return cid

    def _guild_payload(self, guild: FakeGuild) -> JSON:
        roles = [
            {"id": str(rid), "name": "everyone" if rid == guild.id else f"role{i}", "permissions": "0",
             "position": i, "color": 0, "hoist": False, "managed": False, "mentionable": False, "flags": 0}
            for i, rid in enumerate((guild.id, *guild.role_ids))
        ]
        roles.append({"id": str(self.bot_role_id(guild)), "name": "runbot", "permissions": "0", "position": 1,
                      "color": 0, "hoist": False, "managed": True, "mentionable": False, "flags": 0,
                      "tags": {"bot_id": str(BOT_ID)}})
        bot_member = _member_payload(self.bot, (self.bot_role_id(guild),))
        channels = [
            {"id": str(cid), "type": 0, "name": f"channel-{i}", "position": i, "guild_id": str(guild.id),
             "permission_overwrites": [], "nsfw": False, "parent_id": None, "topic": None}
            for i, cid in enumerate(guild.channel_ids)
        ]
        return {
            "id": str(guild.id), "name": guild.name, "icon": None, "owner_id": str(OWNER_ID), "roles": roles,
            "channels": channels, "members": [bot_member], "member_count": 2, "unavailable": False,
            "features": [], "emojis": [], "stickers": [], "threads": [], "voice_states": [], "presences": [],
            "large": False, "premium_tier": 0, "mfa_level": 0, "verification_level": 0,
            "explicit_content_filter": 0, "default_message_notifications": 0, "system_channel_flags": 0,
            "preferred_locale": "en-US", "nsfw_level": 0, "afk_timeout": 300,
            "joined_at": "2026-01-01T00:00:00+00:00",
        }

    # ----------------------------------------------------------------- recording
    @web.middleware
    async def _record(self, request: web.Request, handler: Callable[[web.Request], Any]) -> web.StreamResponse:
        body: JSON | None = None
        if request.can_read_body and request.content_type == "application/json":
            body = await request.json()
        elif request.can_read_body and request.content_type == "multipart/form-data":  # a message with files
            form = await request.post()
            body = json.loads(str(form.get("payload_json") or "{}"))
            for value in form.values():
                if isinstance(value, web.FileField):
                    self.uploads.append((request.path, value.filename, value.file.read()))
        self.requests.append((request.method, request.path_qs, body))
        request[_BODY] = body
        auth = request.headers.get("Authorization", "")
        if auth.startswith("Bot "):
            self.token_seen = auth[4:]
        response: web.StreamResponse = await handler(request)
        return response

    async def _unhandled(self, request: web.Request) -> web.Response:
        self.unhandled.append(f"{request.method} {request.path_qs}")
        return _json({"message": "404: Not Found", "code": 0}, status=404)

    def _authorized(self, request: web.Request) -> bool:
        return self.token_seen not in self.invalid_tokens

    async def _notify(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    # ----------------------------------------------------------------- REST handlers
    async def _me(self, request: web.Request) -> web.Response:
        if not self._authorized(request):
            return _json({"message": "401: Unauthorized", "code": 0}, status=401)
        return _json({**self.bot, "verified": True, "mfa_enabled": False, "flags": 0, "locale": "en-US"})

    async def _application(self, request: web.Request) -> web.Response:
        return _json({
            "id": str(APP_ID), "name": "runbot", "description": "", "icon": None, "bot_public": True,
            "bot_require_code_grant": False, "owner": _user_payload(OWNER_ID, "owner"), "verify_key": "0" * 64,
            "flags": 0, "team": None, "summary": "",
        })

    async def _sync_commands(self, request: web.Request) -> web.Response:
        commands: list[JSON] = request[_BODY] or []  # type: ignore[assignment]
        key = request.match_info.get("guild", "global")
        out = []
        for cmd in commands:
            out.append({**cmd, "id": str(self.new_id()), "application_id": str(APP_ID), "version": "1",
                        "type": cmd.get("type", 1), "default_member_permissions": cmd.get("default_member_permissions"),
                        "description": cmd.get("description", ""), "options": cmd.get("options", [])})
        self.synced_commands[key] = out
        return _json(out)

    async def _create_dm(self, request: web.Request) -> web.Response:
        body = request[_BODY] or {}
        user = self.users[int(body["recipient_id"])]
        cid = self.dm_channel_of(user)
        return _json({"id": str(cid), "type": 1, "recipients": [user.payload], "last_message_id": None})

    async def _get_user(self, request: web.Request) -> web.Response:
        user = self.users.get(int(request.match_info["user"]))
        if user is None:
            return _json({"message": "Unknown User", "code": 10013}, status=404)
        return _json(user.payload)

    def _message_payload(self, channel_id: int, author: JSON, body: JSON, *, flags: int = 0,
                         message_id: int | None = None) -> JSON:
        mid = message_id or self.new_id()
        payload: JSON = {
            "id": str(mid), "channel_id": str(channel_id), "author": author, "content": body.get("content") or "",
            "timestamp": "2026-01-01T09:00:00+00:00", "edited_timestamp": None, "tts": False,
            "mention_everyone": False, "mentions": [], "mention_roles": [], "attachments": [], "embeds": [],
            "pinned": False, "type": 0, "flags": flags | int(body.get("flags") or 0),
            "components": body.get("components") or [],
        }
        if channel_id in self.channel_guild:
            payload["guild_id"] = str(self.channel_guild[channel_id])
        if body.get("message_reference"):
            payload["message_reference"] = body["message_reference"]
            payload["type"] = 19
            quoted = self.messages.get(int(body["message_reference"].get("message_id") or 0))
            if quoted is not None:  # Discord includes the message a reply quotes
                payload["referenced_message"] = {k: v for k, v in quoted.items() if k != "referenced_message"}
        return payload

    def _store_sent(self, payload: JSON, body: JSON, via: str) -> Sent:
        channel_id = int(payload["channel_id"])
        sent = Sent(
            id=int(payload["id"]), channel_id=channel_id, content=payload["content"], via=via,
            ephemeral=bool(payload["flags"] & EPHEMERAL), dm_user_id=self.dm_channels.get(channel_id),
            payload={**body, "components": payload["components"]},
        )
        self.messages[sent.id] = payload
        self.sent.append(sent)
        return sent

    async def _create_message(self, request: web.Request) -> web.Response:
        channel_id = int(request.match_info["channel"])
        body: JSON = request[_BODY] or {}
        user_id = self.dm_channels.get(channel_id)
        if user_id is not None and self.users[user_id].dms_closed:
            return _json({"message": "Cannot send messages to this user", "code": 50007}, status=403)
        if channel_id in self.forbidden_channels:
            return _json({"message": "Missing Permissions", "code": 50013}, status=403)
        if user_id is None and channel_id not in self.channel_guild:
            return _json({"message": "Unknown Channel", "code": 10003}, status=404)
        payload = self._message_payload(channel_id, self.bot, body)
        self._store_sent(payload, body, "channel")
        await self._notify()
        return _json(payload)

    async def _edit_message(self, request: web.Request) -> web.Response:
        mid = int(request.match_info["message"])
        body: JSON = request[_BODY] or {}
        if mid not in self.messages:
            return _json({"message": "Unknown Message", "code": 10008}, status=404)
        self.messages[mid].update({k: v for k, v in body.items() if k in ("content", "components")})
        self.edits.append((mid, body))
        await self._notify()
        return _json(self.messages[mid])

    async def _callback(self, request: web.Request) -> web.Response:
        state = self.interactions.get(request.match_info["token"])
        if state is None:
            return _json({"message": "Unknown interaction", "code": 10062}, status=404)
        body: JSON = request[_BODY] or {}
        state.callbacks.append(body)
        cb_type = body.get("type")
        data: JSON = body.get("data") or {}
        ephemeral = bool(int(data.get("flags") or 0) & EPHEMERAL)
        resource: JSON = {"type": cb_type}
        if cb_type == 5:  # deferred channel message: a "thinking" message that the first follow-up replaces
            state.loading, state.ephemeral = True, ephemeral
            state.original_id = self.new_id()
            resource["message"] = self._message_payload(
                state.channel_id, self.bot, {"content": ""}, flags=(EPHEMERAL if ephemeral else 0) | 128,
                message_id=state.original_id)
            self.messages[state.original_id] = resource["message"]
        elif cb_type == 6:  # deferred update of the clicked message
            state.original_id = state.message_id
            if state.message_id is not None:
                resource["message"] = self.messages.get(state.message_id, {})
        elif cb_type == 4:
            payload = self._message_payload(state.channel_id, self.bot, data)
            state.original_id = int(payload["id"])
            self._store_sent(payload, data, "callback")
            resource["message"] = payload
        elif cb_type == 9:  # a modal (form) shown to the user instead of a message
            self.modals.append({**data, "channel_id": state.channel_id, "user_id": state.user_id})
        elif cb_type == 7 and state.message_id is not None:
            self.messages[state.message_id].update({k: v for k, v in data.items() if k in ("content", "components")})
            self.edits.append((state.message_id, data))
            state.original_id = state.message_id
            resource["message"] = self.messages[state.message_id]
        await self._notify()
        return _json({
            "interaction": {"id": str(state.id), "type": 2 if state.message_id is None else 3,
                            "response_message_id": str(state.original_id) if state.original_id else None,
                            "response_message_loading": state.loading, "response_message_ephemeral": ephemeral},
            "resource": resource,
        })

    async def _followup(self, request: web.Request) -> web.Response:
        state = self.interactions.get(request.match_info["token"])
        if state is None:
            return _json({"message": "Unknown Webhook", "code": 10015}, status=404)
        body: JSON = request[_BODY] or {}
        if state.loading:
            # Discord turns the first follow-up into the deferred response: it keeps the deferral's visibility.
            state.loading = False
            flags = EPHEMERAL if state.ephemeral else 0
            payload = self._message_payload(state.channel_id, self.bot, {**body, "flags": 0}, flags=flags,
                                            message_id=state.original_id)
        else:
            payload = self._message_payload(state.channel_id, self.bot, body)
        payload["webhook_id"] = str(APP_ID)
        self._store_sent(payload, body, "followup")
        await self._notify()
        if request.query.get("wait") in ("true", "1"):
            return _json(payload)
        return web.Response(status=204)

    def _resolve_webhook_message(self, request: web.Request) -> int | None:
        ref = request.match_info["message"]
        if ref == "@original":
            state = self.interactions.get(request.match_info["token"])
            return state.original_id if state else None
        return int(ref)

    async def _edit_webhook_message(self, request: web.Request) -> web.Response:
        mid = self._resolve_webhook_message(request)
        body: JSON = request[_BODY] or {}
        if mid is None or mid not in self.messages:
            return _json({"message": "Unknown Message", "code": 10008}, status=404)
        state = self.interactions.get(request.match_info["token"])
        if state is not None and state.loading and mid == state.original_id:
            state.loading = False
            payload = self._message_payload(state.channel_id, self.bot, body,
                                            flags=EPHEMERAL if state.ephemeral else 0, message_id=mid)
            self._store_sent(payload, body, "followup")
        else:
            self.messages[mid].update({k: v for k, v in body.items() if k in ("content", "components")})
            self.edits.append((mid, body))
        await self._notify()
        return _json(self.messages[mid])

    async def _delete_webhook_message(self, request: web.Request) -> web.Response:
        mid = self._resolve_webhook_message(request)
        state = self.interactions.get(request.match_info["token"])
        if state is not None and mid == state.original_id:
            state.loading = False
        if mid is not None:
            self.deleted.append(mid)
            self.messages.pop(mid, None)
        await self._notify()
        return web.Response(status=204)

    # ----------------------------------------------------------------- gateway
    async def _gateway_bot(self, request: web.Request) -> web.Response:
        return _json({
            "url": f"ws://127.0.0.1:{self.port}/gateway", "shards": self.recommended_shards,
            "session_start_limit": {"total": 1000, "remaining": 1000, "reset_after": 0, "max_concurrency": 1},
        })

    @staticmethod
    def shard_of(guild_id: int | None, shard_count: int) -> int:
        """Discord's rule: a guild's events go to shard (guild_id >> 22) % shard_count; DMs to shard 0."""
        return 0 if guild_id is None else (guild_id >> 22) % shard_count

    async def _gateway(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        self._sockets.append(ws)
        await ws.send_str(json.dumps({"op": 10, "d": {"heartbeat_interval": 41250}, "s": None, "t": None}))
        try:
            async for msg in ws:
                if msg.type != WSMsgType.TEXT:
                    continue
                data = json.loads(msg.data)
                op = data.get("op")
                if op == 1:
                    await ws.send_str(json.dumps({"op": 11, "d": None, "s": None, "t": None}))
                elif op == 2:
                    self.identify = data["d"]
                    self.identifies.append(data["d"])
                    shard_id, shard_count = data["d"].get("shard") or (0, 1)
                    self._socket_shard[id(ws)] = (int(shard_id), int(shard_count))
                    if self.reject_intents:
                        await ws.close(code=4014, message=b"Disallowed intent(s).")
                        break
                    await self._send_ready(ws)
        finally:
            self._sockets.remove(ws)
            self._socket_shard.pop(id(ws), None)
        return ws

    async def _send_ready(self, ws: web.WebSocketResponse) -> None:
        shard = self._socket_shard.get(id(ws), (0, 1))
        ready = {
            "v": 10, "user": {**self.bot, "verified": True, "mfa_enabled": False, "flags": 0},
            "guilds": [{"id": str(g), "unavailable": True} for g in self.guilds],
            "session_id": "fake-session", "resume_gateway_url": f"ws://127.0.0.1:{self.port}/gateway",
            "application": {"id": str(APP_ID), "flags": 0}, "shard": list(shard), "private_channels": [],
            "relationships": [],
        }
        ready["guilds"] = [g for g in ready["guilds"] if self.shard_of(int(g["id"]), shard[1]) == shard[0]]
        await self._send(ws, "READY", ready)
        for guild in self.guilds.values():
            if self.shard_of(guild.id, shard[1]) == shard[0]:
                await self._send(ws, "GUILD_CREATE", self._guild_payload(guild))
        self._identified.set()

    async def _send(self, ws: web.WebSocketResponse, event: str, data: JSON) -> None:
        self._seq += 1
        await ws.send_str(json.dumps({"op": 0, "t": event, "s": self._seq, "d": data}))

    async def dispatch(self, event: str, data: JSON) -> None:
        """Send a gateway event to every connected shard that Discord would send it to (by its guild_id)."""
        await asyncio.wait_for(self._identified.wait(), 10)
        guild = data.get("guild_id")
        for ws in list(self._sockets):
            shard_id, shard_count = self._socket_shard.get(id(ws), (0, 1))
            if self.shard_of(int(guild) if guild else None, shard_count) == shard_id:
                await self._send(ws, event, data)

    # ----------------------------------------------------------------- event helpers
    async def message(
        self,
        user: FakeUser,
        content: str,
        *,
        channel_id: int | None = None,
        mention_bot: bool = False,
        reply_to: int | None = None,
        mention_everyone: bool = False,
    ) -> JSON:
        """Dispatch MESSAGE_CREATE: a DM when ``channel_id`` is None, else a guild channel message."""
        if channel_id is None:
            channel_id = self.dm_channel_of(user)
        if mention_bot:
            content = f"<@{BOT_ID}> {content}"
        payload = self._message_payload(channel_id, user.payload, {"content": content})
        payload["mention_everyone"] = mention_everyone
        payload["mention_roles"] = re.findall(r"<@&(\d+)>", content)  # Discord resolves role mentions like this
        guild_id = self.channel_guild.get(channel_id)
        if guild_id is not None:
            payload["member"] = {k: v for k, v in _member_payload(user.payload, user.roles).items() if k != "user"}
        if mention_bot:
            mention = dict(self.bot)
            if guild_id is not None:
                mention["member"] = {k: v for k, v in _member_payload(self.bot).items() if k != "user"}
            payload["mentions"] = [mention]
        if reply_to is not None:
            ref = self.messages[reply_to]
            payload["type"] = 19
            payload["message_reference"] = {"message_id": str(reply_to), "channel_id": str(channel_id),
                                            **({"guild_id": str(guild_id)} if guild_id else {})}
            payload["referenced_message"] = ref
        self.messages[int(payload["id"])] = payload
        await self.dispatch("MESSAGE_CREATE", payload)
        return payload

    def _interaction_base(self, user: FakeUser, channel_id: int | None, itype: int, data: JSON,
                          message_id: int | None) -> JSON:
        if channel_id is None:
            channel_id = self.dm_channel_of(user)
        iid = self.new_id()
        token = f"tok-{iid}"
        self.interactions[token] = _InteractionState(iid, channel_id, user.id, message_id)
        guild_id = self.channel_guild.get(channel_id)
        payload: JSON = {
            "id": str(iid), "application_id": str(APP_ID), "type": itype, "data": data, "token": token,
            "version": 1, "channel_id": str(channel_id), "locale": "en-GB", "app_permissions": "2248473465835073",
            "attachment_size_limit": 10_485_760, "entitlements": [], "authorizing_integration_owners": {"0": "1"},
        }
        if guild_id is not None:
            payload["guild_id"] = str(guild_id)
            payload["guild_locale"] = "en-GB"
            payload["channel"] = {"id": str(channel_id), "type": 0, "guild_id": str(guild_id), "name": "general",
                                  "position": 0, "permission_overwrites": [], "nsfw": False, "parent_id": None}
            payload["member"] = _member_payload(user.payload, user.roles, user.permissions)
            payload["context"] = 0
        else:
            payload["channel"] = {"id": str(channel_id), "type": 1, "recipients": [user.payload]}
            payload["user"] = user.payload
            payload["context"] = 1
        if message_id is not None:
            payload["message"] = self.messages[message_id]
        return payload

    async def slash(self, user: FakeUser, name: str, *, channel_id: int | None = None,
                    options: JSON | None = None, subcommand: str | None = None) -> str:
        """Dispatch a slash-command INTERACTION_CREATE; returns the interaction token."""
        cmds = [c for key in ("global", *map(str, self.guilds)) for c in self.synced_commands.get(key, [])]
        found = [c for c in cmds if c["name"] == name]
        if not found:
            raise AssertionError(f"command /{name} was not synced")
        opts: list[JSON] = [{"name": k, "type": 3, "value": v} for k, v in (options or {}).items()]
        if subcommand is not None:
            opts = [{"name": subcommand, "type": 1, "options": opts}]
        data = {"id": found[0]["id"], "name": name, "type": 1, "options": opts}
        guild_id = self.channel_guild.get(channel_id) if channel_id is not None else None
        if guild_id is not None:
            data["guild_id"] = str(guild_id)
        payload = self._interaction_base(user, channel_id, 2, data, None)
        await self.dispatch("INTERACTION_CREATE", payload)
        return str(payload["token"])

    async def click(self, user: FakeUser, message: Sent | int, custom_id: str) -> str:
        """Dispatch a button click on a message the bot sent; returns the interaction token."""
        mid = message if isinstance(message, int) else message.id
        stored = self.messages[mid]
        payload = self._interaction_base(user, int(stored["channel_id"]), 3,
                                         {"custom_id": custom_id, "component_type": 2}, mid)
        await self.dispatch("INTERACTION_CREATE", payload)
        return str(payload["token"])

    async def submit_modal(self, user: FakeUser, modal: JSON, values: dict[str, str]) -> str:
        """Dispatch a MODAL_SUBMIT interaction for a modal the bot opened, with ``values`` by input custom_id (the
        inputs not given keep their prefilled value, as Discord sends every input); returns the token."""
        inputs = [c for row in modal["components"] for c in row.get("components", [row.get("component", row)])]
        data = {"custom_id": modal["custom_id"], "components": [
            {"type": 1, "components": [{"type": 4, "custom_id": c["custom_id"],
                                        "value": values.get(c["custom_id"], c.get("value") or "")}]}
            for c in inputs if c.get("type") == 4
        ]}
        payload = self._interaction_base(user, modal["channel_id"], 5, data, None)
        await self.dispatch("INTERACTION_CREATE", payload)
        return str(payload["token"])

    async def wait_modal(self, since: int = 0, within: float = 5.0) -> JSON:
        """The first modal the bot opened after position ``since`` of ``modals``."""
        async with asyncio.timeout(within), self._changed:
            await self._changed.wait_for(lambda: len(self.modals) > since)
        return self.modals[since]

    # ----------------------------------------------------------------- waiting
    def mark(self) -> int:
        """The position in ``sent`` from which a later wait counts."""
        return len(self.sent)

    async def wait_sent(
        self, count: int = 1, *, since: int = 0, where: Callable[[Sent], bool] | None = None, within: float = 5.0
    ) -> list[Sent]:
        """Wait until the bot has sent ``count`` messages (matching ``where``) after ``since``; return them."""

        def matching() -> list[Sent]:
            return [s for s in self.sent[since:] if where is None or where(s)]

        async def wait() -> list[Sent]:
            async with self._changed:
                await self._changed.wait_for(lambda: len(matching()) >= count)
            return matching()

        try:
            return await asyncio.wait_for(wait(), within)
        except TimeoutError:
            got = [(s.via, s.content[:60]) for s in matching()]
            raise AssertionError(f"expected {count} sent message(s), got {got}") from None

    @staticmethod
    async def wait_until(predicate: Callable[[], bool], within: float = 5.0) -> None:
        """Poll ``predicate()`` until it holds (for state outside the fake, e.g. the adapter's counters)."""
        async with asyncio.timeout(within):
            while not predicate():  # noqa: ASYNC110 - the state lives outside the fake, nothing to await on
                await asyncio.sleep(0.01)
