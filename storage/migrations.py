"""The schema as an ordered list of named migrations, each applied once, in a transaction
together with its record (sqlite-utils/datasette style). Never edit a released step: add one."""

from __future__ import annotations

import logging
import sqlite3
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version

import aiosqlite

from news.text import FTS_TOKENIZE

log = logging.getLogger(__name__)


class NewerDatabaseError(Exception):
    """The database holds migrations this code does not know: a newer newsbot wrote it."""


def newsbot_version() -> str:
    """The installed newsbot's version, recorded beside each migration it applies."""
    try:
        return version("newsbot")
    except PackageNotFoundError:  # run from a source tree that was never installed
        return "unknown"


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
    Migration(
        "002_alerts",
        """
        CREATE TABLE chats (
            id INTEGER PRIMARY KEY,                   -- Telegram's chat id
            type TEXT NOT NULL DEFAULT 'private',
            title TEXT,
            active INTEGER NOT NULL DEFAULT 1,        -- 0: blocked us, kicked us or migrated
            inactive_reason TEXT,
            migrated_to INTEGER,                      -- the supergroup a group became
            digest_time TEXT,                         -- 'HH:MM' in the chat's zone; NULL: none
            timezone TEXT NOT NULL DEFAULT 'UTC',     -- IANA name or 'UTC+03:00'
            next_digest_at TEXT,                      -- ISO 8601 UTC
            last_digest_at TEXT,
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL
        );
        CREATE INDEX chats_next_digest ON chats(next_digest_at)
            WHERE next_digest_at IS NOT NULL;
        CREATE TABLE subscriptions (
            id INTEGER PRIMARY KEY,
            chat_id INTEGER NOT NULL REFERENCES chats(id) ON DELETE CASCADE,
            canonical TEXT NOT NULL,                  -- Query.canonical: the identity
            display TEXT NOT NULL,                    -- as the reader typed it
            frequency TEXT NOT NULL DEFAULT 'instant'
                CHECK (frequency IN ('instant', 'daily')),
            created_at TEXT NOT NULL,
            UNIQUE (chat_id, canonical)
        );
        CREATE TABLE alert_state (
            id INTEGER PRIMARY KEY CHECK (id = 1),
            subscriptions_version INTEGER NOT NULL,   -- bumped by every subscription change
            changes_kept_from INTEGER NOT NULL        -- oldest version still in the log
        );
        INSERT INTO alert_state (id, subscriptions_version, changes_kept_from) VALUES (1, 0, 1);
        CREATE TABLE subscription_changes (
            version INTEGER NOT NULL,
            subscription_id INTEGER NOT NULL
        );
        CREATE INDEX subscription_changes_version ON subscription_changes(version);
        CREATE TABLE alerts (
            id INTEGER PRIMARY KEY,                   -- arrival order
            chat_id INTEGER NOT NULL REFERENCES chats(id),
            story_id INTEGER NOT NULL REFERENCES stories(id) ON DELETE CASCADE,
            kind TEXT NOT NULL CHECK (kind IN ('instant', 'digest')),
            topics TEXT NOT NULL,                     -- JSON list of topic display forms
            state TEXT NOT NULL DEFAULT 'queued'
                CHECK (state IN ('queued', 'sending', 'sent', 'failed', 'skipped')),
            attempts INTEGER NOT NULL DEFAULT 0,
            next_attempt_at TEXT,                     -- ISO 8601 UTC; NULL: at once
            claim TEXT,                               -- who is sending it
            claimed_at TEXT,
            created_at TEXT NOT NULL,
            sent_at TEXT,
            error TEXT,
            UNIQUE (chat_id, story_id)                -- the proof: one alert per chat and story
        );
        CREATE INDEX alerts_queue ON alerts(kind, chat_id, id, next_attempt_at)
            WHERE state = 'queued';
        CREATE INDEX alerts_state ON alerts(state, claimed_at);
        CREATE INDEX alerts_story ON alerts(story_id);
        """,
    ),
    Migration(
        "003_feeds",
        """
        CREATE TABLE feeds (
            id INTEGER PRIMARY KEY,
            url TEXT NOT NULL UNIQUE,              -- canonical; a permanent redirect moves it
            title TEXT,
            interval_s INTEGER NOT NULL,
            etag TEXT,
            last_modified TEXT,
            next_poll_at TEXT,                     -- ISO 8601 UTC; NULL: due now
            last_poll_at TEXT,
            last_success_at TEXT,
            last_error TEXT,
            consecutive_failures INTEGER NOT NULL DEFAULT 0,
            first_failure_at TEXT,
            paused_at TEXT,                        -- set after days of failures
            stories_imported INTEGER NOT NULL DEFAULT 0,
            added_at TEXT NOT NULL
        );
        CREATE INDEX feeds_due ON feeds(next_poll_at) WHERE paused_at IS NULL;
        """,
    ),
    Migration(
        "004_neardup_related",
        """
        CREATE TABLE story_signatures (
            story_id INTEGER PRIMARY KEY REFERENCES stories(id) ON DELETE CASCADE,
            signature BLOB NOT NULL,               -- MinHash values (news.neardup)
            bands BLOB NOT NULL                    -- its LSH band keys, int64 (storage.bands)
        );
        CREATE TABLE related_model (
            id INTEGER PRIMARY KEY CHECK (id = 1),
            model BLOB NOT NULL,                   -- news.related.RelatedModel.to_bytes()
            fitted_on INTEGER NOT NULL,
            fitted_at TEXT NOT NULL
        );
        CREATE TABLE story_vectors (
            story_id INTEGER PRIMARY KEY REFERENCES stories(id) ON DELETE CASCADE,
            vector BLOB NOT NULL                   -- float32, from the current model
        );
        """,
    ),
    Migration(
        "005_feed_hints_shared_urls",
        """
        -- The feed's own polling hints seen on its last successful poll: they lengthen its
        -- interval, and `feeds list` says so.
        ALTER TABLE feeds ADD COLUMN ttl_minutes INTEGER;
        ALTER TABLE feeds ADD COLUMN max_age_s INTEGER;
        -- Distinct stories may share one link (a podcast's homepage, a live page): a URL
        -- is a dedup key only together with the text (storage.store).
        DROP INDEX stories_url;
        CREATE INDEX stories_url ON stories(url) WHERE url IS NOT NULL;
        """,
    ),
    Migration(
        "006_saved_searches",
        """
        -- Saved queries were numbered from 1, so a forged button showed another reader's
        -- search: they are now named by a random token and belong to one chat.
        DROP TABLE saved_queries;
        CREATE TABLE saved_searches (
            token TEXT PRIMARY KEY,                -- random, unguessable (secrets)
            chat_id INTEGER NOT NULL,              -- the chat whose buttons may use it
            user_id INTEGER,                       -- who searched
            query TEXT NOT NULL,
            created_at TEXT NOT NULL
        );
        CREATE INDEX saved_searches_created ON saved_searches(created_at);
        """,
    ),
)


async def migrate(
    db: aiosqlite.Connection, migrations: tuple[Migration, ...] = MIGRATIONS
) -> list[str]:
    """Apply every migration not yet recorded; return the names applied. Raises
    NewerDatabaseError, writing nothing, when the database has steps `migrations` lacks."""
    await db.execute(
        "CREATE TABLE IF NOT EXISTS migrations (name TEXT PRIMARY KEY, applied_at TEXT NOT NULL)"
    )
    await _add_version_column(db)
    async with db.execute("SELECT name, newsbot_version FROM migrations") as cursor:
        recorded = {row[0]: row[1] for row in await cursor.fetchall()}
    known = {migration.name for migration in migrations}
    unknown = sorted(set(recorded) - known)
    if unknown:
        # Old code must not write into a schema it does not understand.
        makers = sorted({recorded[name] for name in unknown if recorded[name]})
        made_by = f"newsbot {', '.join(makers)}" if makers else "a newer newsbot"
        raise NewerDatabaseError(
            f"it was written by {made_by} (schema steps {', '.join(unknown)} are unknown "
            f"to this newsbot {newsbot_version()}); upgrade newsbot to use it"
        )
    done = set(recorded)
    applied: list[str] = []
    for migration in migrations:
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
                "INSERT INTO migrations (name, applied_at, newsbot_version)"
                " VALUES (?, datetime('now'), ?)",
                (migration.name, newsbot_version()),
            )
            await db.execute("COMMIT")
        except BaseException:
            await db.execute("ROLLBACK")
            raise
        log.info("applied migration %s", migration.name)
        applied.append(migration.name)
    return applied


async def _add_version_column(db: aiosqlite.Connection) -> None:
    """The bookkeeping table's own upgrade: which newsbot applied each step, so a newer
    database can be refused naming the version that made it."""
    async with db.execute(
        "SELECT 1 FROM pragma_table_info('migrations') WHERE name = ?", ("newsbot_version",)
    ) as c:
        if await c.fetchone():
            return
    await db.execute("BEGIN IMMEDIATE")
    try:
        async with db.execute(
            "SELECT 1 FROM pragma_table_info('migrations') WHERE name = ?", ("newsbot_version",)
        ) as c:
            if not await c.fetchone():  # another process may have added it meanwhile
                await db.execute("ALTER TABLE migrations ADD COLUMN newsbot_version TEXT")
        await db.execute("COMMIT")
    except BaseException:
        await db.execute("ROLLBACK")
        raise


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
