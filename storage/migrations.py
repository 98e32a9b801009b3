"""The schema as an ordered list of named migrations, each applied once, in a transaction
together with its record (sqlite-utils/datasette style). Never edit a released step: add one."""

from __future__ import annotations

import logging
import sqlite3
from dataclasses import dataclass

import aiosqlite

from news.text import FTS_TOKENIZE

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Migration:
    """One named schema step."""

    name: str
    sql: str


MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        "001_stories",
        f"""
        CREATE TABLE stories (
            id INTEGER PRIMARY KEY,
            title TEXT NOT NULL,
            source TEXT,
            author TEXT,
            place TEXT,
            published TEXT,              -- ISO 8601, UTC, sortable
            utc_offset INTEGER,          -- the article's own zone, minutes east of UTC
            zone TEXT,                   -- its name as the article gave it (IST)
            url TEXT,
            guid TEXT,
            external_id TEXT,
            category TEXT,
            category_key TEXT NOT NULL DEFAULT '',
            source_key TEXT NOT NULL DEFAULT '',
            highlights TEXT NOT NULL DEFAULT '',      -- the publisher's, one per line
            generated_highlights TEXT,                -- ours, computed once on demand
            body TEXT NOT NULL,                       -- paragraphs separated by a blank line
            related_links TEXT NOT NULL DEFAULT '[]', -- JSON [[title, url], ...]
            summary TEXT,                             -- JSON list, computed once on demand
            image_url TEXT,
            caption TEXT,
            content_hash TEXT NOT NULL,
            added_at TEXT NOT NULL
        );
        CREATE UNIQUE INDEX stories_url ON stories(url) WHERE url IS NOT NULL;
        CREATE UNIQUE INDEX stories_hash ON stories(content_hash);
        CREATE INDEX stories_guid ON stories(guid) WHERE guid IS NOT NULL;
        CREATE INDEX stories_latest ON stories(coalesce(published, added_at) DESC, id DESC);
        CREATE INDEX stories_title ON stories(title COLLATE NOCASE);
        CREATE VIRTUAL TABLE stories_fts USING fts5(
            title, highlights, body,
            content='stories', content_rowid='id',
            tokenize='{FTS_TOKENIZE}'
        );
        CREATE VIRTUAL TABLE stories_vocab USING fts5vocab(stories_fts, 'row');
        CREATE TABLE saved_queries (
            id INTEGER PRIMARY KEY,
            query TEXT NOT NULL UNIQUE
        );
        """,
    ),
    # -- 002: topic alerts (issue 3) go here --
    # -- 003: feeds (issue 4) go here --
)


async def migrate(db: aiosqlite.Connection) -> list[str]:
    """Apply every migration not yet recorded; return the names applied."""
    await db.execute(
        "CREATE TABLE IF NOT EXISTS migrations (name TEXT PRIMARY KEY, applied_at TEXT NOT NULL)"
    )
    async with db.execute("SELECT name FROM migrations") as cursor:
        done = {row[0] for row in await cursor.fetchall()}
    applied: list[str] = []
    for migration in MIGRATIONS:
        if migration.name in done:
            continue
        # executescript() would commit on its own; run statement by statement instead so
        # the step and its record commit together or not at all.
        try:
            await db.execute("BEGIN IMMEDIATE")
            async with db.execute(
                "SELECT 1 FROM migrations WHERE name = ?", (migration.name,)
            ) as c:
                if await c.fetchone():  # another process applied it meanwhile
                    await db.execute("ROLLBACK")
                    continue
            for statement in _statements(migration.sql):
                await db.execute(statement)
            await db.execute(
                "INSERT INTO migrations (name, applied_at) VALUES (?, datetime('now'))",
                (migration.name,),
            )
            await db.execute("COMMIT")
        except BaseException:
            await db.execute("ROLLBACK")
            raise
        log.info("applied migration %s", migration.name)
        applied.append(migration.name)
    return applied


def _statements(script: str) -> list[str]:
    """Split a migration script into whole statements (triggers with inner ';' included)."""
    statements: list[str] = []
    pending = ""
    for line in script.splitlines(keepends=True):
        pending += line
        if sqlite3.complete_statement(pending):
            statements.append(pending.strip())
            pending = ""
    if pending.strip():
        raise ValueError(f"incomplete SQL statement in migration: {pending.strip()[:60]}")
    return statements
