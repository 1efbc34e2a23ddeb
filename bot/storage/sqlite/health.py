"""What is wrong with a database file, in one line an operator can act on; and whether it is still the same file."""

from __future__ import annotations

import asyncio
import logging
import os
import sqlite3
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING

import aiosqlite

from bot.core.ports import StartupError
from bot.storage.common import SchemaTooNew
from bot.storage.sqlite.rows import fetch_one

log = logging.getLogger(__name__)

#: how long one statement waits for another process's write lock before SQLite gives up ("database is locked");
#: short, because every statement of this process queues behind a waiting one on the connection's thread
BUSY_TIMEOUT_MS = 1000


class DatabaseUnusable(StartupError):
    """The database file cannot be opened or used; the message names the file and what to do (one line)."""


def file_identity(path: str) -> tuple[int, int] | None:
    """(device, inode) of the file at ``path``, None when nothing is there: a new pair means a different file."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_dev, st.st_ino)


def describe_open_error(path: str, exc: BaseException) -> str:
    """One line naming the database file, what is wrong with it and what to do (blocking: call in a thread)."""
    p = Path(path)
    text = str(exc).lower()
    where = f"database {path}"
    if isinstance(exc, SchemaTooNew):
        return (
            f"{where} has schema version {exc.found}, made by a newer runbot (this one knows up to {exc.newest}): "
            "upgrade runbot, or set database.path (or --db) to another file"
        )
    if p.is_dir():
        return f"{where} is a folder, not a file: set database.path (or --db) to a file name, e.g. {p / 'runbot.db'}"
    if "full" in text or getattr(exc, "errno", None) == 28:
        return f"{where}: the disk is full; free some space and start runbot again"
    if "locked" in text or "busy" in text:
        return f"{where} is locked by another program (another runbot?); stop it and start again"
    if "not a database" in text or "malformed" in text or "corrupt" in text:
        return (
            f"{where} is not a readable SQLite database (damaged, truncated or another kind of file): move it aside "
            "and restore a backup, or set database.path (or --db) to a new file"
        )
    if "readonly" in text or "read-only" in text or not _writable(p):
        return (
            f"{where} is read-only: let the user running runbot write to the file and its folder (SQLite also "
            f"writes {p.name}-wal and {p.name}-shm next to it)"
        )
    if "unable to open" in text:
        return f"{where} cannot be opened: check that its folder exists and runbot may write there"
    first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return f"{where} cannot be used ({first}): move it aside or set database.path (or --db) to another file"


def _writable(p: Path) -> bool:
    folder = p.parent if str(p.parent) else Path(".")
    if p.exists() and not os.access(p, os.W_OK):
        return False
    return os.access(folder, os.W_OK | os.X_OK)


def recovered_path(path: str) -> str:
    return f"{path}.recovered"


def lost_file_message(path: str, *, replaced: bool, saved: str | None) -> str:
    what = "was replaced by another file" if replaced else "was deleted"
    if saved is None:
        return (f"database {path} {what} while runbot was running and its data could not be copied: stop runbot and "
                "restore a backup (what runbot stores from now on is lost when it stops)")
    if replaced:
        return (f"database {path} {what} while runbot was running; runbot's data was copied to {saved} (again when "
                "it stops): stop runbot, compare the two files and keep the right one as the database")
    return (f"database {path} {what} while runbot was running; its data was copied to {saved} (again when it "
            "stops) and the next start puts it back. Find out what deleted it")


def adopt_recovered(path: str) -> bool:
    """At start: a missing database with a ``.recovered`` copy next to it gets the copy back (blocking: a thread)."""
    copy = recovered_path(path)
    if os.path.exists(path) or not os.path.exists(copy):
        return False
    for suffix in ("-wal", "-shm"):  # left by the lost file: they must never be applied to the copy
        if os.path.exists(path + suffix):
            os.replace(path + suffix, path + suffix + ".stale")
    os.replace(copy, path)
    log.warning("database %s was missing: put back the copy saved when it disappeared (%s)", path, copy)
    return True


class FileChecks:
    """Part of the Store: is the file usable at start, and is it still there while running."""

    path: str
    _identity: tuple[int, int] | None
    file_lost: bool
    on_problem: Callable[[str], Awaitable[None]] | None
    db: aiosqlite.Connection

    if TYPE_CHECKING:

        async def schema_version(self) -> int: ...

    async def _quick_check(self) -> None:
        """A truncated or damaged file can still have a valid header: read every page once (fast for a club's data)."""
        row = await fetch_one(self.db, "PRAGMA quick_check(1)")
        if row is None or row[0] != "ok":
            raise sqlite3.DatabaseError(f"database disk image is malformed: {row[0] if row else 'no answer'}")

    async def _write_probe(self) -> None:
        """SQLite opens a file it cannot write read-only without a word: find out now, not at the first write."""
        version = await self.schema_version()
        try:
            await self.db.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:
            if "locked" in str(exc) or "busy" in str(exc):
                return  # another runbot is writing: the file is writable
            raise
        try:
            await self.db.execute(f"PRAGMA user_version = {version}")  # no change, but a write
        finally:
            await self.db.execute("ROLLBACK")

    # ----------------------------------------------------------------- the file itself
    async def check_file(self) -> None:
        """Notice the database file deleted or replaced while running and keep its data.

        SQLite keeps writing to the open (unlinked) file, so every user would be gone at the next start. Instead
        everything is copied to ``<path>.recovered`` (again at shutdown), which the next start adopts when the file
        is still missing; reported once (log and ``on_problem``). Called with every flush (every few seconds).
        """
        if self._identity is None or self.file_lost:
            return
        now = await asyncio.to_thread(file_identity, self.path)
        if now == self._identity:
            return
        self.file_lost = True
        saved = await self._save_recovered()
        message = lost_file_message(self.path, replaced=now is not None, saved=saved)
        log.error("%s", message)
        if self.on_problem is not None:
            try:
                await self.on_problem(message)
            except Exception:
                log.exception("could not report the database problem")

    async def _save_recovered(self) -> str | None:
        """Copy the open database with SQLite's backup API to ``<path>.recovered`` (atomically replaced)."""
        final = recovered_path(self.path)
        try:
            target = await aiosqlite.connect(final + ".tmp", isolation_level=None)
            try:
                await self.db.backup(target)
            finally:
                await _close_quietly(target)
            await asyncio.to_thread(os.replace, final + ".tmp", final)
        except Exception as exc:
            log.error("could not copy the open database to %s: %s", final, exc)
            return None
        return final


async def _close_quietly(db: aiosqlite.Connection) -> None:
    """Close a connection and always end its (non-daemon) thread, whatever state the database is in."""
    try:
        await asyncio.wait_for(db.close(), timeout=BUSY_TIMEOUT_MS / 1000 + 5)
    except BaseException:  # closing must never raise over the error that led here
        db.stop()
