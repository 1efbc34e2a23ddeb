"""The inboxes' batched done marks (bot/storage/inbox_marks.py), shared by the SQLite and PostgreSQL inboxes: kept
while the database cannot take them, one warning, written once it can."""

from __future__ import annotations

import asyncio
import logging

import pytest

from bot.core.store import InboxUnavailable
from bot.storage import inbox_marks
from bot.storage.inbox_marks import DoneMarks


async def test_marks_are_kept_while_writing_fails_and_written_once_it_works(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(inbox_marks, "RETRY_SECONDS", 0.01)
    written: list[list[int]] = []
    failures = [InboxUnavailable("database is locked")] * 3

    async def write(ids: list[int]) -> None:
        if failures:
            raise failures.pop()
        written.append(ids)

    marks = DoneMarks(write, lambda: True)
    with caplog.at_level(logging.INFO, logger="bot.storage.inbox_marks"):
        marks.add(1)
        marks.add(2)
        for _ in range(500):
            if written:
                break
            await asyncio.sleep(0.01)
        assert written == [[1, 2]]  # one batch, after three failed tries
        marks.add(3)
        await marks.flush()
        assert written == [[1, 2], [3]]
        await marks.close()
    messages = [r.getMessage() for r in caplog.records]
    assert messages == ["inbox: cannot mark updates answered (database is locked); retrying", "inbox: writing again"]


async def test_a_closed_inbox_keeps_its_marks_and_close_says_what_may_be_answered_again(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def write(ids: list[int]) -> None:
        raise InboxUnavailable("disk full")

    is_open = [False]
    marks = DoneMarks(write, lambda: is_open[0])
    marks.add(7)  # not open: nothing is tried
    await marks.flush()
    is_open[0] = True
    with caplog.at_level(logging.WARNING, logger="bot.storage.inbox_marks"):
        await marks.close()
    assert [r.getMessage() for r in caplog.records] == [
        "inbox: could not record the last answered updates (disk full); they may be answered again"
    ]
