"""The terminal adapter: `runbot chat`. Choices are numbered; type the number to pick one."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable, Sequence
from typing import TextIO

from bot.core.messages import ChatRef, Choice, IncomingMessage, Reply
from bot.core.ports import DeliveryError

CONSOLE_USER = "console-user"


class ConsoleAdapter:
    """Reads lines from stdin without blocking the event loop; prints replies with numbered choices."""

    platform = "console"

    def __init__(
        self,
        engine: object,
        *,
        user_id: str = CONSOLE_USER,
        out: TextIO | None = None,
        read_line: Callable[[], str] | None = None,
    ) -> None:
        self.engine = engine
        self.user_id = user_id
        self.out = out or sys.stdout
        self._read_line = read_line or sys.stdin.readline
        self._choices: list[Choice] = []
        self._lock = asyncio.Lock()

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None

    async def send(self, target: ChatRef, replies: Sequence[Reply]) -> None:
        """Follow-ups that fall due while chatting are shown like any reply."""
        if target.user_id != self.user_id:
            raise DeliveryError("no such console user", permanent=True)
        async with self._lock:
            self.render(replies)
            self.out.write("> ")
            self.out.flush()

    async def notify_moderators(self, text: str) -> bool:
        """The terminal has no moderators' chat (the operator reads the log)."""
        return False

    def render(self, replies: Sequence[Reply]) -> None:
        self._choices = []
        for reply in replies:
            self.out.write("\n" + reply.text.strip() + "\n")
            if reply.attachment is not None:  # a terminal has no files: the file's text, under its name
                body = reply.attachment.data.decode("utf-8", "replace")
                self.out.write(f"--- {reply.attachment.filename} ---\n{body.rstrip()}\n--- end ---\n")
            for choice in reply.choices:
                self._choices.append(choice)
                self.out.write(f"  {len(self._choices)}. {choice.label}\n")
        self.out.flush()

    def to_message(self, line: str) -> IncomingMessage:
        text = line.strip()
        if text.isdigit() and 1 <= int(text) <= len(self._choices):
            choice = self._choices[int(text) - 1]
            return IncomingMessage(
                "console", self.user_id, self.user_id, text=choice.label, choice=choice.payload, is_moderator=True
            )
        # the operator at the keyboard: moderator reports (/faq unanswered, /faq stats) answer here
        return IncomingMessage("console", self.user_id, self.user_id, text=text, is_moderator=True)

    async def chat(self) -> None:
        """The read-answer loop, until end of input or /quit."""
        loop = asyncio.get_running_loop()
        self.out.write("runbot — ask about lower back pain after running. /help for commands, /quit to leave.\n")
        while True:
            self.out.write("> ")
            self.out.flush()
            line = await loop.run_in_executor(None, self._read_line)
            if not line:
                self.out.write("\n")
                return
            if line.strip().lower() in ("/quit", "/exit", "quit", "exit"):
                return
            if not line.strip():
                continue
            outcome = await self.engine.handle(self.to_message(line))  # type: ignore[attr-defined]
            async with self._lock:
                self.render(outcome.replies)
