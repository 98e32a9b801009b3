"""Feeds the bot polls, and their polling state (issue 4)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from storage.base import StoreBase, from_iso, iso
from storage.models import Feed, NotFoundError

_FEED_COLUMNS = (
    "id, url, title, interval_s, etag, last_modified, next_poll_at, last_poll_at, "
    "last_success_at, last_error, consecutive_failures, first_failure_at, paused_at, "
    "stories_imported, added_at, ttl_minutes, max_age_s"
)


def _feed(row: Sequence[Any]) -> Feed:
    added = from_iso(row[14])
    assert added is not None
    return Feed(
        id=row[0],
        url=row[1],
        title=row[2],
        interval_s=row[3],
        etag=row[4],
        last_modified=row[5],
        next_poll_at=from_iso(row[6]),
        last_poll_at=from_iso(row[7]),
        last_success_at=from_iso(row[8]),
        last_error=row[9],
        consecutive_failures=row[10],
        first_failure_at=from_iso(row[11]),
        paused_at=from_iso(row[12]),
        stories_imported=row[13],
        added_at=added,
        ttl_minutes=row[15],
        max_age_s=row[16],
    )


class FeedsStore(StoreBase):
    """Feeds, their polling state and their dedup keys."""

    async def add_feed(
        self,
        url: str,
        interval_s: int,
        *,
        title: str | None = None,
        first_poll_at: datetime | None = None,
    ) -> tuple[Feed, bool]:
        """Add a feed (by canonical URL); returns it and whether it is new. An existing
        feed keeps its state, but a paused one is resumed."""
        now = iso(datetime.now(UTC))
        async with self.transaction() as db:
            cursor = await db.execute(
                "INSERT INTO feeds (url, title, interval_s, next_poll_at, added_at) "
                "VALUES (?, ?, ?, ?, ?) ON CONFLICT (url) DO NOTHING",
                (url, title, interval_s, iso(first_poll_at), now),
            )
            created = cursor.rowcount == 1
            if not created:
                await db.execute(
                    "UPDATE feeds SET paused_at = NULL, consecutive_failures = 0, "
                    "first_failure_at = NULL, next_poll_at = NULL "
                    "WHERE url = ? AND paused_at IS NOT NULL",
                    (url,),
                )
        return await self.feed(url), created

    async def feed(self, key: int | str) -> Feed:
        """The feed with this id or URL; NotFoundError when there is none."""
        column = "id" if isinstance(key, int) else "url"
        rows = await self._all(f"SELECT {_FEED_COLUMNS} FROM feeds WHERE {column} = ?", (key,))
        if not rows:
            raise NotFoundError(f"no feed {key}")
        return _feed(rows[0])

    async def feeds(self) -> list[Feed]:
        """Every feed, oldest first."""
        return [
            _feed(r) for r in await self._all(f"SELECT {_FEED_COLUMNS} FROM feeds ORDER BY id")
        ]

    async def remove_feed(self, key: int | str) -> Feed:
        """Stop polling a feed, by id or URL (its stories stay); NotFoundError when there
        is none."""
        feed = await self.feed(key)
        async with self.transaction() as db:
            await db.execute("DELETE FROM feeds WHERE id = ?", (feed.id,))
        return feed

    async def due_feeds(self, now: datetime) -> list[Feed]:
        """Feeds not paused whose next poll time has come, the longest waiting first."""
        rows = await self._all(
            f"SELECT {_FEED_COLUMNS} FROM feeds WHERE paused_at IS NULL "
            "AND (next_poll_at IS NULL OR next_poll_at <= ?) "
            "ORDER BY next_poll_at IS NOT NULL, next_poll_at, id",
            (iso(now),),
        )
        return [_feed(r) for r in rows]

    async def schedule_feeds(self, times: Sequence[tuple[int, datetime]]) -> None:
        """Set the next poll time of feeds (id, when): spreading a burst of due feeds."""
        async with self.transaction() as db:
            await db.executemany(
                "UPDATE feeds SET next_poll_at = ? WHERE id = ?",
                [(iso(when), feed_id) for feed_id, when in times],
            )

    async def save_poll(
        self,
        feed_id: int,
        *,
        polled_at: datetime,
        next_poll_at: datetime | None,
        consecutive_failures: int,
        first_failure_at: datetime | None,
        last_success_at: datetime | None,
        last_error: str | None,
        imported: int = 0,
        etag: str | None = None,
        last_modified: str | None = None,
        title: str | None = None,
        new_url: str | None = None,
        paused: bool = False,
        hints: tuple[int | None, int | None] | None = None,
    ) -> None:
        """Record the outcome of one poll: state, validators, counts, a moved URL, and
        (after a successful one) the feed's hints (ttl minutes, Cache-Control max-age)."""
        async with self.transaction() as db:
            await db.execute(
                """UPDATE feeds SET last_poll_at = ?, next_poll_at = ?,
                       consecutive_failures = ?, first_failure_at = ?, last_success_at = ?,
                       last_error = ?, stories_imported = stories_imported + ?,
                       etag = coalesce(?, etag), last_modified = coalesce(?, last_modified),
                       title = coalesce(?, title), paused_at = ?
                   WHERE id = ?""",
                (
                    iso(polled_at),
                    iso(next_poll_at),
                    consecutive_failures,
                    iso(first_failure_at),
                    iso(last_success_at),
                    last_error,
                    imported,
                    etag,
                    last_modified,
                    title,
                    iso(polled_at) if paused else None,
                    feed_id,
                ),
            )
            if hints is not None:
                await db.execute(
                    "UPDATE feeds SET ttl_minutes = ?, max_age_s = ? WHERE id = ?",
                    (*hints, feed_id),
                )
            if new_url:
                # A permanent redirect: follow it from now on, unless that feed exists.
                await db.execute(
                    "UPDATE feeds SET url = ? WHERE id = ? "
                    "AND NOT EXISTS (SELECT 1 FROM feeds WHERE url = ?)",
                    (new_url, feed_id, new_url),
                )

    async def known_story(
        self, *, guid: str | None, url: str | None, title: str | None
    ) -> tuple[int, str] | None:
        """The stored story a feed item is, and why ("same guid", "same URL and title"),
        checked before fetching the item's page so known items cost nothing; None when it
        may be new. An item with a guid is known by its guid only: one link may be shared
        by many items (a podcast's homepage)."""
        if guid:
            found = await self._one("SELECT min(id) FROM stories WHERE guid = ?", (guid,))
            return (int(found), "same guid") if found is not None else None
        if url and title:
            found = await self._one(
                "SELECT min(id) FROM stories WHERE url = ? AND title = ? COLLATE NOCASE",
                (url, title),
            )
            if found is not None:
                return int(found), "same URL and title"
        return None

    async def _feed_stats(self) -> dict[str, int]:
        """Counts for `newsbot stats`: feeds (active, paused)."""
        rows = await self._all(
            "SELECT count(*), count(paused_at), coalesce(sum(stories_imported), 0) FROM feeds"
        )
        total, paused, imported = rows[0]
        return {"feeds": total - paused, "feeds_paused": paused, "feed_stories": imported}
