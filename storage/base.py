"""The connection every part of the store shares, and its transaction discipline."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Self

import aiosqlite

from storage.migrations import migrate


def iso(moment: datetime | None) -> str | None:
    """A datetime as stored: ISO 8601 in UTC, to the second (text order is time order)."""
    return moment.astimezone(UTC).isoformat(timespec="seconds") if moment else None


def from_iso(text: str | None) -> datetime | None:
    """A stored ISO 8601 text back as an aware datetime (None stays None)."""
    return datetime.fromisoformat(text) if text else None


class StoreBase:
    """One aiosqlite connection (WAL, foreign keys on) with a write lock and helpers."""

    def __init__(self, db: aiosqlite.Connection, path: Path) -> None:
        self._db = db
        self.path = path
        # One connection serves every handler: a transaction must not interleave with
        # another coroutine's statements, so writes take this lock.
        self._write_lock = asyncio.Lock()

    @classmethod
    async def open(cls, path: str | Path) -> Self:
        """Open (creating and migrating as needed) the database at `path`."""
        path = Path(path)
        if not path.parent.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
        db = await aiosqlite.connect(path, isolation_level=None)
        try:
            await db.execute("PRAGMA busy_timeout = 10000")
            await db.execute("PRAGMA journal_mode = WAL")
            # FULL: a commit is on disk before it returns, so an alert marked sent stays
            # marked even after a power cut, not only after a crash of the process.
            await db.execute("PRAGMA synchronous = FULL")
            await db.execute("PRAGMA wal_autocheckpoint = 10000")
            await db.execute("PRAGMA foreign_keys = ON")
            # 64 MB of page cache (the default is 2 MB): imports update the FTS index and
            # the LSH bands all over the file.
            await db.execute("PRAGMA cache_size = -65536")
            await migrate(db)
        except BaseException:
            await db.close()
            raise
        return cls(db, path)

    async def close(self) -> None:
        """Close the connection; committed data is already safe on disk."""
        await self._db.close()

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[aiosqlite.Connection]:
        """One write transaction: committed on success, rolled back on any error."""
        async with self._write_lock:
            await self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                await self._db.execute("ROLLBACK")
                raise
            await self._db.execute("COMMIT")

    async def _one(self, sql: str, params: Sequence[Any] = ()) -> Any:
        async with self._db.execute(sql, params) as cursor:
            row = await cursor.fetchone()
        return None if row is None else row[0]

    async def _all(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        async with self._db.execute(sql, params) as cursor:
            return list(await cursor.fetchall())
