"""Committing a moderator's change when the knowledge folder is a git work tree: one commit per change, authored by
the moderator, committed by runbot. git runs as an asyncio subprocess, so the event loop never waits on it."""

from __future__ import annotations

import asyncio
import logging
import os
import re
from pathlib import Path

log = logging.getLogger(__name__)

#: a commit that takes longer than this is abandoned (the change itself is already written and recorded)
GIT_TIMEOUT = 20.0
_UNSAFE = re.compile(r"[<>\n\r\0]")


class GitCommitter:
    """Commits single files of one folder; finds out once whether the folder is in a work tree."""

    def __init__(self, folder: Path, *, enabled: bool = True) -> None:
        self.folder = folder
        self.enabled = enabled
        self._work_tree: bool | None = None

    async def _git(self, *args: str) -> tuple[int, str]:
        env = {**os.environ, "GIT_COMMITTER_NAME": "runbot", "GIT_COMMITTER_EMAIL": "runbot@localhost",
               "GIT_TERMINAL_PROMPT": "0"}
        proc = await asyncio.create_subprocess_exec(
            "git", "-C", str(self.folder), *args,
            stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
            env=env,
        )
        try:
            out, _ = await asyncio.wait_for(proc.communicate(), GIT_TIMEOUT)
        except TimeoutError:
            proc.kill()
            await proc.wait()
            return -1, "timed out"
        return proc.returncode or 0, out.decode("utf-8", "replace").strip()

    async def is_work_tree(self) -> bool:
        if self._work_tree is None:
            try:
                code, out = await self._git("rev-parse", "--is-inside-work-tree")
                self._work_tree = code == 0 and out == "true"
            except OSError:  # no git on this machine
                self._work_tree = False
        return self._work_tree

    async def commit(self, file: str, message: str, author: str, email: str) -> str | None:
        """Commit ``file`` alone; returns the short hash, or None (not a work tree, switched off, or it failed)."""
        if not self.enabled or not await self.is_work_tree():
            return None
        name = _UNSAFE.sub("", author).strip() or "moderator"
        try:
            code, out = await self._git("add", "--", file)
            if code == 0:
                code, out = await self._git(
                    "commit", "-q", "--no-verify", "-m", message, f"--author={name} <{_UNSAFE.sub('', email)}>",
                    "--", file,
                )
            if code != 0:
                log.warning("git commit of a moderator's change to %s failed: %s", file, out.splitlines()[:1])
                return None
            code, out = await self._git("rev-parse", "--short", "HEAD")
            return out if code == 0 else None
        except OSError as exc:
            log.warning("git commit of a moderator's change to %s failed: %s", file, exc)
            return None
