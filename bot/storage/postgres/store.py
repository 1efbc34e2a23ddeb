"""The PostgreSQL store: many bot processes on one database, through asyncpg (``database.url: postgresql://...``)."""

from __future__ import annotations

from bot.storage.common import translate_errors
from bot.storage.postgres.base import PG_ERRORS, PostgresBase
from bot.storage.postgres.buffers import PgBuffers
from bot.storage.postgres.followups import PgFollowupRows
from bot.storage.postgres.users import PgUserRows


@translate_errors(PG_ERRORS)
class PostgresStore(PgUserRows, PgFollowupRows, PgBuffers, PostgresBase):
    """Per-user state, the safety log, unanswered questions, follow-ups and counters, shared by every process.

    ``serialized`` holds a user's advisory lock for the message's whole turn (one transaction), so two processes
    never interleave one runner's triage steps; follow-up claims skip rows another process is claiming; counters and
    the unanswered log are written by adding upserts.
    """
