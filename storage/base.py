"""The connection every part of the store shares, and its transaction discipline."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import stat
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Self

import aiosqlite

from storage.migrations import NewerDatabaseError, migrate
from storage.models import StorageError


def iso(moment: datetime | None) -> str | None:
    """A datetime as stored: ISO 8601 in UTC, to the second (text order is time order)."""
    return moment.astimezone(UTC).isoformat(timespec="seconds") if moment else None


def from_iso(text: str | None) -> datetime | None:
    """A stored ISO 8601 text back as an aware datetime (None stays None)."""
    return datetime.fromisoformat(text) if text else None


class UnusableDatabase(StorageError):
    """The database cannot be opened or used; the message names the file and the cause in
    one line, and says what to do."""


def database_problem(path: Path, error: sqlite3.Error | OSError | ValueError) -> str:
    """One line saying what is wrong with the database at `path`, from SQLite's error."""
    text = str(error)
    lowered = text.lower()
    if isinstance(error, ValueError):  # "embedded null byte"
        return f"cannot open the database {path!r}: {text}; set NEWSBOT_DB to a file path"
    if isinstance(error, OSError) and not isinstance(error, sqlite3.Error):
        return f"cannot open the database {path}: {error.strerror or text}"
    if "not a database" in lowered:
        return (
            f"{path} is not a newsbot database (not SQLite, or its header is damaged); "
            "point NEWSBOT_DB at the right file or move this one away"
        )
    if "malformed" in lowered or "corrupt" in lowered:
        return f"the database {path} is corrupt ({text}); restore it from a backup"
    if "full" in lowered:
        return (
            f"the disk holding {path} is full ({text}); free some space and run the command "
            "again (everything already committed is kept)"
        )
    if "readonly" in lowered or "read-only" in lowered:
        return f"the database {path} is read-only ({text}); newsbot needs to write to it"
    if "unable to open" in lowered:
        folder = path.parent
        if not os.access(folder, os.W_OK):
            return (
                f"cannot open the database {path}: its folder {folder} is not writable "
                "(newsbot needs to create its journal files there)"
            )
        return f"cannot open the database {path} ({text})"
    if "locked" in lowered or "busy" in lowered:
        return f"the database {path} is locked by another process ({text})"
    return f"database error on {path}: {text}"


def _check_path(path: Path) -> None:
    """Refuse a path that cannot be a database file before SQLite sees it."""
    if "\x00" in str(path):
        raise UnusableDatabase(
            f"cannot open the database {str(path)!r}: the path contains a NUL character"
        )
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        return
    except OSError as error:
        raise UnusableDatabase(database_problem(path, error)) from None
    if stat.S_ISDIR(mode):
        raise UnusableDatabase(
            f"cannot open the database {path}: it is a folder; set NEWSBOT_DB to a file "
            f"inside it, such as {path / 'newsbot.db'}"
        )
    if not stat.S_ISREG(mode):
        raise UnusableDatabase(
            f"cannot open the database {path}: it is not a regular file (a device, pipe or "
            "socket); set NEWSBOT_DB to a file path"
        )


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
        _check_path(path)
        try:
            if not path.parent.exists():
                path.parent.mkdir(parents=True, exist_ok=True)
            db = await aiosqlite.connect(path, isolation_level=None)
        except (OSError, sqlite3.Error) as error:
            raise UnusableDatabase(database_problem(path, error)) from error
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
        except NewerDatabaseError as error:
            await db.close()
            raise UnusableDatabase(f"cannot open the database {path}: {error}") from error
        except sqlite3.Error as error:
            await db.close()
            raise UnusableDatabase(database_problem(path, error)) from error
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
