"""A fake Telegram Bot API on 127.0.0.1 for driving the real python-telegram-bot client in tests.

It serves ``/bot{token}/{method}`` like api.telegram.org: every answer is wrapped as
``{"ok": true, "result": ...}``; ``getUpdates`` is a real long poll that wakes when an update is
queued and honours ``offset`` and ``timeout``. Every call is recorded (``calls``) and any method
the fake does not know is recorded in ``unknown`` so tests can assert there were none.

The library posts form data: every value arrives as a string, non-string values (numbers,
booleans, ``reply_markup``, ``commands``) JSON-encoded. ``_coerce`` undoes that.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import math
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

JSON = dict[str, Any]

#: Parameters whose values are JSON-encoded by the library (everything that is not a plain string).
_JSON_PARAMS = frozenset(
    {
        "chat_id",
        "user_id",
        "message_id",
        "message_thread_id",
        "offset",
        "limit",
        "timeout",
        "reply_markup",
        "commands",
        "allowed_updates",
        "drop_pending_updates",
        "show_alert",
        "cache_time",
        "max_connections",
        "reply_parameters",
        "link_preview_options",
        "disable_notification",
        "protect_content",
        "scope",
        "entities",
    }
)

_COMMAND_RE = re.compile(r"^/[A-Za-z0-9_]+(?:@[A-Za-z0-9_]+)?")
_MENTION_RE = re.compile(r"(?<![\w@])@[A-Za-z][A-Za-z0-9_]{3,31}")


def _utf16_len(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def compute_entities(text: str) -> list[JSON]:
    """The ``bot_command`` and ``mention`` entities Telegram would attach (offsets in UTF-16 units)."""
    entities: list[JSON] = []
    command = _COMMAND_RE.match(text)
    if command:
        entities.append({"type": "bot_command", "offset": 0, "length": _utf16_len(command.group())})
    for mention in _MENTION_RE.finditer(text):
        if command and mention.start() < command.end():
            continue
        entities.append(
            {
                "type": "mention",
                "offset": _utf16_len(text[: mention.start()]),
                "length": _utf16_len(mention.group()),
            }
        )
    return entities


@dataclass
class Call:
    """One request the client made."""

    method: str
    params: JSON
    #: time.monotonic() when the call was recorded
    at: float = field(default_factory=time.monotonic)


@dataclass
class FakeBotAPI:
    """The fake server. ``await start()``, then build PTB with ``.base_url(api.base_url)``."""

    token: str = "123456:TEST-token"
    bot_id: int = 123456
    bot_username: str = "runbot_test_bot"
    host: str = "127.0.0.1"
    port: int = 0
    calls: list[Call] = field(default_factory=list)
    unknown: list[Call] = field(default_factory=list)
    #: files the bot uploaded with sendDocument: {"chat_id", "filename", "data"}
    documents: list[JSON] = field(default_factory=list)
    bad_token_calls: int = 0
    #: chat ids whose sendMessage answers 403 "Forbidden: bot was blocked by the user".
    blocked_chats: set[int] = field(default_factory=set)
    #: methods that answer 429 with ``retry_after`` exactly once (consumed on use).
    flood_once: dict[str, int] = field(default_factory=dict)
    #: chat id -> {user id: "administrator" | "creator"}; anybody else is a "member".
    chat_admins: dict[int, dict[int, str]] = field(default_factory=dict)
    #: method -> (HTTP status, description) answered instead of the result, every time.
    failing: dict[str, tuple[int, str]] = field(default_factory=dict)
    #: method -> seconds to wait before answering (simulates a slow API).
    delays: dict[str, float] = field(default_factory=dict)
    #: chat id -> seconds sendMessage to that chat waits before answering (one hanging chat).
    chat_delays: dict[int, float] = field(default_factory=dict)
    #: called with the ids of the updates a getUpdates offset is about to confirm (before they are forgotten).
    on_confirm: Callable[[list[int]], None] | None = None

    def __post_init__(self) -> None:
        self._updates: list[JSON] = []
        self._update_ids = itertools.count(1)
        self._message_ids = itertools.count(1000)
        self._callback_ids = itertools.count(1)
        self._messages: dict[tuple[int, int], JSON] = {}
        self._sent_to: dict[int, list[JSON]] = {}  # chat id -> the bot's messages there, in order (the same dicts)
        self._sent_count = 0
        self._chats: dict[int, JSON] = {}
        self._changed = asyncio.Condition()
        self._closing = False
        self._runner: web.AppRunner | None = None
        self.confirmed_offset = 0
        self.last_update_id = 0
        self.polls: list[JSON] = []
        self._throttled: dict[int, float] = {}  # chat id -> monotonic time until which sendMessage answers 429

    def throttle(self, chat_id: int, seconds: float) -> None:
        """Flood control for one chat: sendMessage to it answers 429 with the remaining retry_after until then."""
        self._throttled[chat_id] = time.monotonic() + seconds

    # ----------------------------------------------------------------- server lifecycle

    @property
    def base_url(self) -> str:
        """What ``ApplicationBuilder().base_url(...)`` wants (the token is appended by PTB)."""
        return f"http://{self.host}:{self.port}/bot"

    @property
    def bot_user(self) -> JSON:
        return {"id": self.bot_id, "is_bot": True, "first_name": "Runbot", "username": self.bot_username}

    async def start(self) -> None:
        app = web.Application()
        app.router.add_route("*", "/bot{token}/{method}", self._handle)
        self._runner = web.AppRunner(app, shutdown_timeout=1.0, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        server = site._server
        assert server is not None and server.sockets  # type: ignore[attr-defined]
        self.port = server.sockets[0].getsockname()[1]  # type: ignore[attr-defined]

    async def stop(self) -> None:
        self._closing = True
        await self._notify()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _notify(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    # ----------------------------------------------------------------- building updates

    def user(self, user_id: int, first_name: str = "Runner") -> JSON:
        return {"id": user_id, "is_bot": False, "first_name": first_name, "language_code": "en"}

    def _chat(self, chat_id: int, chat_type: str, user: JSON) -> JSON:
        if chat_id not in self._chats:
            if chat_type == "private":
                self._chats[chat_id] = {"id": chat_id, "type": "private", "first_name": user["first_name"]}
            else:
                self._chats[chat_id] = {"id": chat_id, "type": chat_type, "title": f"Club {chat_id}"}
        return self._chats[chat_id]

    def _chat_for_send(self, chat_id: int) -> JSON:
        if chat_id in self._chats:
            return self._chats[chat_id]
        if chat_id > 0:
            return {"id": chat_id, "type": "private", "first_name": "Runner"}
        return {"id": chat_id, "type": "supergroup", "title": f"Club {chat_id}"}

    async def queue_update(self, update: JSON) -> int:
        update_id = next(self._update_ids)
        update["update_id"] = self.last_update_id = update_id
        self._updates.append(update)
        await self._notify()
        return update_id

    def build_message(
        self,
        *,
        user_id: int,
        text: str,
        chat_id: int | None = None,
        chat_type: str = "private",
        first_name: str = "Runner",
        reply_to_message_id: int | None = None,
        thread_id: int | None = None,
    ) -> JSON:
        """A ``Message`` dict as Telegram would deliver it (entities computed from the text)."""
        user = self.user(user_id, first_name)
        chat = self._chat(user_id if chat_id is None else chat_id, chat_type, user)
        message: JSON = {
            "message_id": next(self._message_ids),
            "date": int(time.time()),
            "chat": chat,
            "from": user,
            "text": text,
        }
        entities = compute_entities(text)
        if entities:
            message["entities"] = entities
        if thread_id is not None:  # a forum topic in a supergroup
            message["message_thread_id"], message["is_topic_message"] = thread_id, True
        if reply_to_message_id is not None:
            message["reply_to_message"] = self._messages[(chat["id"], reply_to_message_id)]
        self._messages[(chat["id"], message["message_id"])] = message
        return message

    async def send_text(self, **kwargs: Any) -> JSON:
        """Queue a text message update (see ``build_message``); returns the message."""
        message = self.build_message(**kwargs)
        await self.queue_update({"message": message})
        return message

    async def press(self, *, user_id: int, message: JSON, data: str, first_name: str = "Runner") -> str:
        """Queue a button press on a message the bot sent; returns the callback query id."""
        query_id = f"cb{next(self._callback_ids)}"
        stored = self._messages[(message["chat"]["id"], message["message_id"])]
        await self.queue_update(
            {
                "callback_query": {
                    "id": query_id,
                    "from": self.user(user_id, first_name),
                    "chat_instance": f"ci{message['chat']['id']}",
                    "message": stored,
                    "data": data,
                }
            }
        )
        return query_id

    # ----------------------------------------------------------------- inspecting

    def calls_to(self, method: str) -> list[Call]:
        return [call for call in self.calls if call.method == method]

    def sent(self, chat_id: int | None = None) -> list[JSON]:
        """Messages the bot sent (``sendMessage`` answers), optionally to one chat."""
        if chat_id is not None:
            return list(self._sent_to.get(chat_id, ()))
        return [
            msg
            for (cid, _), msg in self._messages.items()
            if msg.get("from", {}).get("id") == self.bot_id and (chat_id is None or cid == chat_id)
        ]

    def message(self, chat_id: int, message_id: int) -> JSON:
        return self._messages[(chat_id, message_id)]

    async def wait_for(self, predicate: Callable[[], bool], within: float = 5.0) -> None:
        """Wait until ``predicate()`` holds; re-checked after every recorded call."""

        async def _wait() -> None:
            async with self._changed:
                await self._changed.wait_for(predicate)

        try:
            await asyncio.wait_for(_wait(), within)
        except TimeoutError:
            raise AssertionError(f"timed out; calls so far: {[c.method for c in self.calls]}") from None

    async def wait_sent(self, chat_id: int, count: int, within: float = 5.0) -> list[JSON]:
        """Wait until at least ``count`` messages went to ``chat_id``; returns them all."""
        await self.wait_for(lambda: len(self.sent(chat_id)) >= count, within)
        return self.sent(chat_id)

    # ----------------------------------------------------------------- the API

    @staticmethod
    def _coerce(name: str, value: str) -> Any:
        if name in _JSON_PARAMS:
            try:
                return json.loads(value)
            except ValueError:
                return value
        return value

    async def _params(self, request: web.Request) -> JSON:
        params: JSON = {k: self._coerce(k, v) for k, v in request.query.items()}
        if request.content_type == "application/json":
            body = await request.json()
            params.update(body if isinstance(body, dict) else {})
        elif request.can_read_body:
            form = await request.post()
            params.update({k: self._coerce(k, v) for k, v in form.items() if isinstance(v, str)})
            # uploaded files (sendDocument): name and bytes
            params.update({k: {"filename": v.filename, "data": v.file.read()} for k, v in form.items()
                           if isinstance(v, web.FileField)})
        return params

    async def _handle(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        if request.match_info["token"] != self.token:
            self.bad_token_calls += 1
            return web.json_response({"ok": False, "error_code": 401, "description": "Unauthorized"}, status=401)
        params = await self._params(request)
        call = Call(method, params)
        if method in self.delays:
            await asyncio.sleep(self.delays[method])
        handler = getattr(self, f"_api_{method}", None)
        if handler is None:
            self.unknown.append(call)
            self.calls.append(call)
            await self._notify()
            return web.json_response(
                {"ok": False, "error_code": 404, "description": "Not Found: method not found"}, status=404
            )
        if method in self.flood_once:
            retry_after = self.flood_once.pop(method)
            self.calls.append(call)
            await self._notify()
            return web.json_response(
                {
                    "ok": False,
                    "error_code": 429,
                    "description": f"Too Many Requests: retry after {retry_after}",
                    "parameters": {"retry_after": retry_after},
                },
                status=429,
            )
        try:
            if method in self.failing:
                raise _ApiError(*self.failing[method])
            result = await handler(params)
        except _ApiError as err:
            self.calls.append(call)
            await self._notify()
            body: JSON = {"ok": False, "error_code": err.code, "description": err.description}
            if err.retry_after is not None:
                body["parameters"] = {"retry_after": err.retry_after}
            return web.json_response(body, status=err.code)
        if method != "getUpdates":  # recorded below, after the long poll returns
            self.calls.append(call)
            await self._notify()
        return web.json_response({"ok": True, "result": result})

    async def _api_getMe(self, params: JSON) -> JSON:
        return {
            **self.bot_user,
            "can_join_groups": True,
            "can_read_all_group_messages": False,
            "supports_inline_queries": False,
        }

    async def _api_deleteWebhook(self, params: JSON) -> bool:
        return True

    async def _api_setWebhook(self, params: JSON) -> bool:
        return True

    async def _api_setMyCommands(self, params: JSON) -> bool:
        commands = params.get("commands")
        if not isinstance(commands, list):
            raise _ApiError(400, "Bad Request: commands must be a list")
        return True

    async def _api_getUpdates(self, params: JSON) -> list[JSON]:
        self.polls.append(params)  # when the poll starts (``calls`` records it when it returns)
        offset = int(params.get("offset") or 0)
        timeout = float(params.get("timeout") or 0)
        limit = int(params.get("limit") or 100)
        if offset:
            # Telegram forgets every update below the offset: that is how updates are confirmed.
            if offset > self.confirmed_offset and self.on_confirm is not None:
                self.on_confirm([u["update_id"] for u in self._updates if u["update_id"] < offset])
            self.confirmed_offset = max(self.confirmed_offset, offset)
            self._updates = [u for u in self._updates if u["update_id"] >= offset]

        def ready() -> bool:
            return self._closing or any(u["update_id"] >= offset for u in self._updates)

        if timeout > 0:
            async with self._changed:
                try:
                    await asyncio.wait_for(self._changed.wait_for(ready), timeout)
                except TimeoutError:
                    pass
        result = [u for u in self._updates if u["update_id"] >= offset][:limit]
        self.calls.append(Call("getUpdates", params))
        await self._notify()
        return result

    def _store_sent(self, chat_id: int, params: JSON) -> JSON:
        message: JSON = {
            "message_id": next(self._message_ids),
            "date": int(time.time()),
            "chat": self._chat_for_send(chat_id),
            "from": self.bot_user,
            "text": params["text"],
        }
        if params.get("reply_markup"):
            message["reply_markup"] = params["reply_markup"]
        quoted = (params.get("reply_parameters") or {}).get("message_id")
        if quoted is not None and (chat_id, int(quoted)) in self._messages:
            original = dict(self._messages[(chat_id, int(quoted))])
            original.pop("reply_to_message", None)  # Telegram includes one level
            message["reply_to_message"] = original
        if params.get("message_thread_id"):
            message["message_thread_id"] = params["message_thread_id"]
        self._messages[(chat_id, message["message_id"])] = message
        self._sent_to.setdefault(chat_id, []).append(message)
        self._sent_count += 1
        return message

    @property
    def sent_count(self) -> int:
        """How many messages the bot sent (cheap, for waiting on many chats)."""
        return self._sent_count

    async def _api_sendMessage(self, params: JSON) -> JSON:
        chat_id = int(params["chat_id"])
        if chat_id in self.chat_delays:
            await asyncio.sleep(self.chat_delays[chat_id])
        left = self._throttled.get(chat_id, 0.0) - time.monotonic()
        if left > 0:
            raise _ApiError(429, f"Too Many Requests: retry after {math.ceil(left)}", retry_after=math.ceil(left))
        text = params.get("text", "")
        if not text:
            raise _ApiError(400, "Bad Request: message text is empty")
        if len(text) > 4096:
            raise _ApiError(400, "Bad Request: message is too long")
        if chat_id in self.blocked_chats:
            raise _ApiError(403, "Forbidden: bot was blocked by the user")
        markup = params.get("reply_markup")
        if markup:
            for row in markup.get("inline_keyboard", []):
                for button in row:
                    if len(button.get("callback_data", "").encode()) > 64:
                        raise _ApiError(400, "Bad Request: BUTTON_DATA_INVALID")
        return self._store_sent(chat_id, params)

    async def _api_sendDocument(self, params: JSON) -> JSON:
        """A file upload (the /mydata export): kept in ``documents``, not among the text messages ``sent`` lists."""
        chat_id = int(params["chat_id"])
        document = params.get("document")
        if not isinstance(document, dict):
            raise _ApiError(400, "Bad Request: there is no document in the request")
        if chat_id in self.blocked_chats:
            raise _ApiError(403, "Forbidden: bot was blocked by the user")
        self.documents.append({"chat_id": chat_id, **document})
        return {
            "message_id": next(self._message_ids), "date": int(time.time()), "chat": self._chat_for_send(chat_id),
            "from": self.bot_user, "document": {"file_id": f"doc{len(self.documents)}",
                                                "file_unique_id": f"u{len(self.documents)}",
                                                "file_name": document["filename"]},
        }

    async def _api_answerCallbackQuery(self, params: JSON) -> bool:
        if not params.get("callback_query_id"):
            raise _ApiError(400, "Bad Request: query id is empty")
        return True

    def _existing(self, params: JSON) -> JSON:
        key = (int(params["chat_id"]), int(params["message_id"]))
        if key not in self._messages:
            raise _ApiError(400, "Bad Request: message to edit not found")
        return self._messages[key]

    async def _api_editMessageText(self, params: JSON) -> JSON:
        message = self._existing(params)
        message["text"] = params["text"]
        message["edit_date"] = int(time.time())
        if params.get("reply_markup"):
            message["reply_markup"] = params["reply_markup"]
        else:
            message.pop("reply_markup", None)
        return message

    async def _api_editMessageReplyMarkup(self, params: JSON) -> JSON:
        message = self._existing(params)
        if params.get("reply_markup") and params["reply_markup"].get("inline_keyboard"):
            message["reply_markup"] = params["reply_markup"]
        else:
            message.pop("reply_markup", None)
        message["edit_date"] = int(time.time())
        return message

    async def _api_getChatMember(self, params: JSON) -> JSON:
        chat_id, user_id = int(params["chat_id"]), int(params["user_id"])
        status = self.chat_admins.get(chat_id, {}).get(user_id, "member")
        user = self.user(user_id)
        if status == "creator":
            return {"status": "creator", "user": user, "is_anonymous": False}
        if status == "administrator":
            rights = (
                "can_be_edited is_anonymous can_manage_chat can_delete_messages can_manage_video_chats "
                "can_restrict_members can_promote_members can_change_info can_invite_users "
                "can_post_stories can_edit_stories can_delete_stories"
            ).split()
            return {"status": "administrator", "user": user, **{r: r == "can_manage_chat" for r in rights}}
        return {"status": "member", "user": user}


class _ApiError(Exception):
    def __init__(self, code: int, description: str, *, retry_after: int | None = None) -> None:
        super().__init__(description)
        self.code = code
        self.description = description
        self.retry_after = retry_after
