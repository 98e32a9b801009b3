"""Topic subscriptions and the alert queue (issue 3).

A new story is matched against every subscription inside the transaction that stores it
(`_queue_alerts`), through a `news.match.Percolator` kept in memory and loaded from the
`subscriptions` table. Other processes change subscriptions too (the bot while `newsbot
ingest` runs, or a second bot by mistake), so every transaction that changes them bumps
`alert_state.subscriptions_version` and logs the ids it touched in `subscription_changes`;
before matching (inside BEGIN IMMEDIATE, so nobody can write meanwhile) the percolator
applies the logged changes since the version it holds, or reloads when the log no longer
reaches back that far.

One alert row per (chat, story) is the proof that a story is alerted to a chat at most once:
UNIQUE(chat_id, story_id), across restarts, re-imports and processes. Its life:
queued -> sending (claimed by one process, with its token) -> sent | failed | skipped;
a RetryAfter or a transient error puts it back to queued with `next_attempt_at`.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Collection, Iterable, Sequence, Sized
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import aiosqlite

from news.articles import Article
from news.match import Percolator
from news.query import Doc, QueryError, parse_query
from storage.base import StoreBase, from_iso

log = logging.getLogger(__name__)

Frequency = Literal["instant", "daily"]
AlertKind = Literal["instant", "digest"]
OutcomeState = Literal["sent", "queued", "failed", "skipped"]

MAX_TOPICS = 50
# The error of an alert a killed process left 'sending' (see fail_stale_sending).
INTERRUPTED = "interrupted while sending; not resent (at most once)"
# What a stats count means when its name alone does not say it (`newsbot stats`, /stats).
STAT_NOTES = {"alerts_unknown": "interrupted while sending: delivered or not, nobody knows"}
# How many subscription versions the change log keeps; a process further behind reloads.
_CHANGES_KEPT = 10_000
# Ids per `IN (...)` list, well under SQLite's bound-parameter limit.
_CHUNK = 500
# The start of a story's body the alert needs for its highlight, when it has none.
_LEAD_CHARS = 600


def _ts(moment: datetime) -> str:
    """A UTC timestamp as stored: ISO 8601 with microseconds, so text order is time order."""
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


async def _fetch(db: aiosqlite.Connection, sql: str, params: Sequence[Any] = ()) -> list[Any]:
    """All rows of one statement in one trip to aiosqlite's thread (RETURNING included)."""
    return list(await db.execute_fetchall(sql, params))


def _chunks(items: Sequence[int]) -> Iterable[Sequence[int]]:
    for start in range(0, len(items), _CHUNK):
        yield items[start : start + _CHUNK]


def _marks(items: Sized) -> str:
    return ",".join("?" * len(items))


@dataclass(frozen=True, slots=True)
class Chat:
    """A chat that has (or had) topics."""

    id: int
    type: str
    title: str | None
    active: bool
    inactive_reason: str | None
    migrated_to: int | None
    digest_time: str | None
    timezone: str
    next_digest_at: datetime | None
    last_digest_at: datetime | None


@dataclass(frozen=True, slots=True)
class Subscription:
    """One topic of one chat."""

    id: int
    chat_id: int
    canonical: str
    display: str
    frequency: Frequency


@dataclass(frozen=True, slots=True)
class SubscribeResult:
    """What `/subscribe` did: added, already there, or refused at the per-chat limit."""

    status: Literal["added", "exists", "limit"]
    subscription: Subscription | None
    count: int  # the chat's topics afterwards


@dataclass(frozen=True, slots=True)
class ClaimedAlert:
    """An alert claimed for sending, with what its message shows of the story."""

    id: int
    chat_id: int
    story_id: int
    kind: AlertKind
    topics: tuple[str, ...]
    attempts: int  # including this one
    title: str
    highlight: str  # the publisher's first highlight, else our first generated one, or ""
    lead: str  # the start of the body, for a first sentence when there is no highlight


@dataclass(frozen=True, slots=True)
class AlertOutcome:
    """How one send of a claimed alert ended."""

    alert_id: int
    state: OutcomeState
    error: str | None = None
    retry_at: datetime | None = None  # for state "queued"
    counted: bool = True  # False: the attempt does not count (RetryAfter, chat migrated)


@dataclass(frozen=True, slots=True)
class _Topic:
    chat_id: int
    display: str
    frequency: Frequency


_CHAT_COLUMNS = (
    "id, type, title, active, inactive_reason, migrated_to, digest_time, timezone, "
    "next_digest_at, last_digest_at"
)
_SUB_COLUMNS = "id, chat_id, canonical, display, frequency"


def _chat(row: Sequence[Any]) -> Chat:
    return Chat(
        id=row[0],
        type=row[1],
        title=row[2],
        active=bool(row[3]),
        inactive_reason=row[4],
        migrated_to=row[5],
        digest_time=row[6],
        timezone=row[7],
        next_digest_at=from_iso(row[8]),
        last_digest_at=from_iso(row[9]),
    )


def _subscription(row: Sequence[Any]) -> Subscription:
    return Subscription(row[0], row[1], row[2], row[3], row[4])


class AlertsStore(StoreBase):
    """Subscriptions, matching of new stories and the alert queue."""

    def __init__(self, db: aiosqlite.Connection, path: Path) -> None:
        super().__init__(db, path)
        self._percolator = Percolator()
        self._topics: dict[int, _Topic] = {}  # subscription id -> what an alert needs
        self._percolator_version: int | None = None  # None: never loaded
        # Called (synchronously) when alerts were queued: the running bot wakes its
        # delivery job with it instead of waiting for the next tick.
        self.on_alerts_queued: Callable[[], None] | None = None

    # -- matching new stories ----------------------------------------------------------

    @property
    def matches_topics(self) -> bool:
        """Whether new stories are matched against subscriptions (as far as this process
        knows): an importer then prepares each story's `Doc` ahead, off the event loop."""
        return len(self._percolator) > 0

    async def _queue_alerts(
        self, db: aiosqlite.Connection, new: Sequence[tuple[int, Article, Doc | None]]
    ) -> None:
        """Queue one alert per (chat, story) for the new stories (id, article, prepared
        Doc or None) that match a chat's subscriptions, inside the transaction that stores
        them."""
        await self._sync_percolator(db)
        if not len(self._percolator) or not new:
            return
        now = _ts(datetime.now(UTC))
        rows: list[tuple[int, int, str, str, str]] = []
        for story_id, article, prepared in new:
            doc = prepared or Doc.from_article(article)
            by_chat: dict[int, list[_Topic]] = {}
            for sub_id in self._percolator.match(doc):  # sorted: topics in the order added
                topic = self._topics[sub_id]
                by_chat.setdefault(topic.chat_id, []).append(topic)
            for chat_id, topics in by_chat.items():
                # A story matching an instant and a daily topic of one chat is alerted
                # once, at once.
                instant = any(t.frequency == "instant" for t in topics)
                names = list(dict.fromkeys(t.display for t in topics))
                rows.append(
                    (
                        chat_id,
                        story_id,
                        "instant" if instant else "digest",
                        json.dumps(names, ensure_ascii=False),
                        now,
                    )
                )
        if not rows:
            return
        await db.executemany(
            """INSERT INTO alerts (chat_id, story_id, kind, topics, created_at)
               VALUES (?, ?, ?, ?, ?) ON CONFLICT (chat_id, story_id) DO NOTHING""",
            rows,
        )
        if self.on_alerts_queued is not None:
            self.on_alerts_queued()

    async def _sync_percolator(self, db: aiosqlite.Connection) -> None:
        """Bring the in-memory percolator up to the database's subscriptions version."""
        [(version, kept_from)] = await _fetch(
            db, "SELECT subscriptions_version, changes_kept_from FROM alert_state"
        )
        loaded = self._percolator_version
        if loaded == version:
            return
        if loaded is None or loaded + 1 < kept_from or loaded > version:
            await self._reload_percolator(db)
        else:
            changed = [
                row[0]
                for row in await _fetch(
                    db,
                    "SELECT DISTINCT subscription_id FROM subscription_changes WHERE version > ?",
                    (loaded,),
                )
            ]
            for chunk in _chunks(changed):
                for sub_id in chunk:
                    self._percolator.remove(sub_id)
                    self._topics.pop(sub_id, None)
                rows = await _fetch(
                    db,
                    f"""SELECT s.id, s.chat_id, s.canonical, s.display, s.frequency
                        FROM subscriptions s JOIN chats c ON c.id = s.chat_id
                        WHERE c.active = 1 AND s.id IN ({_marks(chunk)})""",
                    chunk,
                )
                self._index(rows)
        self._percolator_version = version

    async def _reload_percolator(self, db: aiosqlite.Connection) -> None:
        self._percolator = Percolator()
        self._topics = {}
        rows = await _fetch(
            db,
            """SELECT s.id, s.chat_id, s.canonical, s.display, s.frequency
               FROM subscriptions s JOIN chats c ON c.id = s.chat_id WHERE c.active = 1""",
        )
        self._index(rows)
        log.debug("loaded %d subscriptions into the percolator", len(self._topics))

    def _index(self, rows: Iterable[Sequence[Any]]) -> None:
        for sub_id, chat_id, canonical, display, frequency in rows:
            try:
                query = parse_query(canonical)
            except QueryError:
                # Stored by an older parser that accepted it: keep the row, skip matching.
                log.warning("subscription %s (%r) no longer parses; not matched", sub_id, display)
                continue
            self._percolator.add(sub_id, query)
            self._topics[sub_id] = _Topic(chat_id, display, frequency)

    async def _changed(self, db: aiosqlite.Connection, sub_ids: Collection[int]) -> None:
        """Record, in the current transaction, that these subscriptions changed."""
        [(version, kept_from)] = await _fetch(
            db, "SELECT subscriptions_version, changes_kept_from FROM alert_state"
        )
        version += 1
        if version % 100 == 0:
            kept_from = max(kept_from, version - _CHANGES_KEPT + 1)
            await db.execute("DELETE FROM subscription_changes WHERE version < ?", (kept_from,))
        await db.execute(
            "UPDATE alert_state SET subscriptions_version = ?, changes_kept_from = ?",
            (version, kept_from),
        )
        await db.executemany(
            "INSERT INTO subscription_changes (version, subscription_id) VALUES (?, ?)",
            [(version, sub_id) for sub_id in sub_ids],
        )

    async def _chat_subscription_ids(self, db: aiosqlite.Connection, chat_id: int) -> list[int]:
        rows = await _fetch(db, "SELECT id FROM subscriptions WHERE chat_id = ?", (chat_id,))
        return [row[0] for row in rows]

    # -- chats -------------------------------------------------------------------------

    async def chat(self, chat_id: int) -> Chat | None:
        """The chat with this id, if it ever had topics."""
        rows = await self._all(f"SELECT {_CHAT_COLUMNS} FROM chats WHERE id = ?", (chat_id,))
        return _chat(rows[0]) if rows else None

    async def _upsert_chat(
        self,
        db: aiosqlite.Connection,
        chat_id: int,
        chat_type: str,
        title: str | None,
        now: datetime,
    ) -> None:
        """Create the chat, or refresh it; a chat that talks to us is reachable again."""
        rows = await _fetch(db, "SELECT active, migrated_to FROM chats WHERE id = ?", (chat_id,))
        if not rows:
            await db.execute(
                """INSERT INTO chats (id, type, title, created_at, updated_at)
                   VALUES (?, ?, ?, ?, ?)""",
                (chat_id, chat_type, title, _ts(now), _ts(now)),
            )
            return
        await db.execute(
            "UPDATE chats SET type = ?, title = ?, updated_at = ? WHERE id = ?",
            (chat_type, title, _ts(now), chat_id),
        )
        active, migrated_to = rows[0]
        if not active and migrated_to is None:
            await self._set_active(db, chat_id, now)

    async def _set_active(self, db: aiosqlite.Connection, chat_id: int, now: datetime) -> None:
        await db.execute(
            "UPDATE chats SET active = 1, inactive_reason = NULL, updated_at = ? WHERE id = ?",
            (_ts(now), chat_id),
        )
        await self._changed(db, await self._chat_subscription_ids(db, chat_id))

    async def activate_chat(self, chat_id: int, now: datetime | None = None) -> bool:
        """Resume alerts for a chat that blocked or removed us and came back (/start, added
        again); True when it was inactive. A group that became a supergroup stays off."""
        state = await self._all("SELECT active, migrated_to FROM chats WHERE id = ?", (chat_id,))
        if not state or state[0][0] or state[0][1] is not None:
            return False  # the common case costs no write transaction
        async with self.transaction() as db:
            rows = await _fetch(
                db,
                "SELECT 1 FROM chats WHERE id = ? AND active = 0 AND migrated_to IS NULL",
                (chat_id,),
            )
            if not rows:
                return False
            await self._set_active(db, chat_id, now or datetime.now(UTC))
        log.info("chat %s is active again", chat_id)
        return True

    async def deactivate_chat(
        self,
        chat_id: int,
        reason: str,
        now: datetime | None = None,
        *,
        alert_ids: Sequence[int] = (),
    ) -> int:
        """Stop alerts for a chat that blocked or removed us: the chat inactive, its queued
        alerts (and `alert_ids`, claimed ones whose send was refused) skipped. Returns how
        many alerts were skipped."""
        moment = _ts(now or datetime.now(UTC))
        async with self.transaction() as db:
            cursor = await db.execute(
                """UPDATE chats SET active = 0, inactive_reason = ?, updated_at = ?
                   WHERE id = ? AND active = 1""",
                (reason, moment, chat_id),
            )
            if cursor.rowcount:
                await self._changed(db, await self._chat_subscription_ids(db, chat_id))
            skipped = await db.execute(
                f"""UPDATE alerts SET state = 'skipped', error = ?
                    WHERE chat_id = ? AND (state = 'queued'
                        OR (state = 'sending' AND id IN ({_marks(alert_ids)})))""",
                (reason, chat_id, *alert_ids),
            )
        log.info("chat %s inactive (%s): %d alerts skipped", chat_id, reason, skipped.rowcount)
        return skipped.rowcount

    async def migrate_chat(
        self,
        old_id: int,
        new_id: int,
        now: datetime | None = None,
        *,
        alert_ids: Sequence[int] = (),
    ) -> None:
        """A group became a supergroup: its settings, topics and queued alerts (and
        `alert_ids`, claimed ones refused for the old id) move to the new id."""
        moment = _ts(now or datetime.now(UTC))
        async with self.transaction() as db:
            await db.execute(
                """INSERT INTO chats (id, type, title, digest_time, timezone, next_digest_at,
                        last_digest_at, created_at, updated_at)
                    SELECT ?, 'supergroup', title, digest_time, timezone, next_digest_at,
                        last_digest_at, ?, ?
                    FROM chats WHERE id = ?
                    ON CONFLICT (id) DO UPDATE SET active = 1, inactive_reason = NULL,
                        updated_at = excluded.updated_at""",
                (new_id, moment, moment, old_id),
            )
            moved = await self._chat_subscription_ids(db, old_id)
            await db.execute(
                "UPDATE OR IGNORE subscriptions SET chat_id = ? WHERE chat_id = ?",
                (new_id, old_id),
            )
            await db.execute("DELETE FROM subscriptions WHERE chat_id = ?", (old_id,))
            # The refused sends were not delivered: queued again, the attempt not counted.
            await db.execute(
                f"""UPDATE alerts SET state = 'queued', attempts = max(attempts - 1, 0),
                        next_attempt_at = NULL
                    WHERE chat_id = ? AND state = 'sending' AND id IN ({_marks(alert_ids)})""",
                (old_id, *alert_ids),
            )
            await db.execute(
                """UPDATE OR IGNORE alerts SET chat_id = ?
                   WHERE chat_id = ? AND state = 'queued'""",
                (new_id, old_id),
            )
            await db.execute(
                """UPDATE alerts SET state = 'skipped', error = 'chat migrated'
                   WHERE chat_id = ? AND state = 'queued'""",
                (old_id,),
            )
            await db.execute(
                """UPDATE chats SET active = 0, inactive_reason = 'migrated', migrated_to = ?,
                       updated_at = ? WHERE id = ?""",
                (new_id, moment, old_id),
            )
            await self._changed(db, moved)
        log.info("chat %s migrated to %s", old_id, new_id)

    # -- subscriptions -----------------------------------------------------------------

    async def subscribe(
        self,
        chat_id: int,
        canonical: str,
        display: str,
        *,
        chat_type: str = "private",
        title: str | None = None,
        limit: int = MAX_TOPICS,
        now: datetime | None = None,
    ) -> SubscribeResult:
        """Add a topic to a chat (creating the chat); its frequency follows the chat's
        digest setting. Refused past `limit` topics; a repeat returns the existing one."""
        moment = now or datetime.now(UTC)
        async with self.transaction() as db:
            await self._upsert_chat(db, chat_id, chat_type, title, moment)
            rows = await _fetch(
                db,
                f"SELECT {_SUB_COLUMNS} FROM subscriptions WHERE chat_id = ? AND canonical = ?",
                (chat_id, canonical),
            )
            [(count,)] = await _fetch(
                db, "SELECT count(*) FROM subscriptions WHERE chat_id = ?", (chat_id,)
            )
            if rows:
                return SubscribeResult("exists", _subscription(rows[0]), count)
            if count >= limit:
                return SubscribeResult("limit", None, count)
            [(digest_time,)] = await _fetch(
                db, "SELECT digest_time FROM chats WHERE id = ?", (chat_id,)
            )
            frequency: Frequency = "daily" if digest_time else "instant"
            cursor = await db.execute(
                """INSERT INTO subscriptions (chat_id, canonical, display, frequency, created_at)
                   VALUES (?, ?, ?, ?, ?)""",
                (chat_id, canonical, display, frequency, _ts(moment)),
            )
            sub_id = cursor.lastrowid
            assert sub_id is not None
            await self._changed(db, [sub_id])
        return SubscribeResult(
            "added", Subscription(sub_id, chat_id, canonical, display, frequency), count + 1
        )

    async def subscriptions(self, chat_id: int) -> list[Subscription]:
        """A chat's topics, oldest first."""
        rows = await self._all(
            f"SELECT {_SUB_COLUMNS} FROM subscriptions WHERE chat_id = ? ORDER BY id",
            (chat_id,),
        )
        return [_subscription(row) for row in rows]

    async def unsubscribe(self, chat_id: int, canonical: str) -> Subscription | None:
        """Remove the chat's topic with this canonical form; the removed one, or None."""
        return await self._remove_one(chat_id, "canonical", canonical)

    async def remove_subscription(self, chat_id: int, sub_id: int) -> Subscription | None:
        """Remove one topic of the chat by id; the removed one, or None."""
        return await self._remove_one(chat_id, "id", sub_id)

    async def _remove_one(
        self, chat_id: int, column: Literal["canonical", "id"], value: str | int
    ) -> Subscription | None:
        async with self.transaction() as db:
            rows = await _fetch(
                db,
                f"""DELETE FROM subscriptions WHERE chat_id = ? AND {column} = ?
                    RETURNING {_SUB_COLUMNS}""",
                (chat_id, value),
            )
            if rows:
                await self._changed(db, [rows[0][0]])
        return _subscription(rows[0]) if rows else None

    async def unsubscribe_all(self, chat_id: int) -> int:
        """Remove every topic of the chat; how many there were."""
        async with self.transaction() as db:
            rows = await _fetch(
                db, "DELETE FROM subscriptions WHERE chat_id = ? RETURNING id", (chat_id,)
            )
            if rows:
                await self._changed(db, [row[0] for row in rows])
        return len(rows)

    async def set_frequency(
        self, chat_id: int, sub_id: int, frequency: Frequency
    ) -> Subscription | None:
        """Make one topic instant or daily; the updated topic, or None if it is gone."""
        async with self.transaction() as db:
            rows = await _fetch(
                db,
                f"""UPDATE subscriptions SET frequency = ? WHERE chat_id = ? AND id = ?
                    RETURNING {_SUB_COLUMNS}""",
                (frequency, chat_id, sub_id),
            )
            if rows:
                await self._changed(db, [sub_id])
        return _subscription(rows[0]) if rows else None

    async def set_digest(
        self,
        chat_id: int,
        digest_time: str | None,
        next_digest_at: datetime | None,
        now: datetime,
        *,
        chat_type: str = "private",
        title: str | None = None,
        switch_topics: bool = True,
    ) -> int:
        """Turn the chat's daily digest on at `digest_time` (all its topics daily, unless
        not `switch_topics`) or off (None: all topics instant, and what waited for the
        digest is sent as alerts). Returns how many topics were switched."""
        frequency: Frequency = "daily" if digest_time else "instant"
        async with self.transaction() as db:
            await self._upsert_chat(db, chat_id, chat_type, title, now)
            await db.execute(
                """UPDATE chats SET digest_time = ?, next_digest_at = ?, updated_at = ?
                   WHERE id = ?""",
                (
                    digest_time,
                    _ts(next_digest_at) if next_digest_at else None,
                    _ts(now),
                    chat_id,
                ),
            )
            changed: list[Any] = []
            if switch_topics or digest_time is None:
                changed = await _fetch(
                    db,
                    "UPDATE subscriptions SET frequency = ? WHERE chat_id = ? RETURNING id",
                    (frequency, chat_id),
                )
            if digest_time is None:
                await db.execute(
                    """UPDATE alerts SET kind = 'instant'
                       WHERE chat_id = ? AND state = 'queued' AND kind = 'digest'""",
                    (chat_id,),
                )
            if changed:
                await self._changed(db, [row[0] for row in changed])
        return len(changed)

    async def set_timezone(
        self,
        chat_id: int,
        zone: str,
        next_digest_at: datetime | None,
        now: datetime,
        *,
        chat_type: str = "private",
        title: str | None = None,
    ) -> None:
        """Set the chat's time zone (and the next digest moment it implies)."""
        async with self.transaction() as db:
            await self._upsert_chat(db, chat_id, chat_type, title, now)
            await db.execute(
                """UPDATE chats SET timezone = ?, next_digest_at = ?, updated_at = ?
                   WHERE id = ?""",
                (zone, _ts(next_digest_at) if next_digest_at else None, _ts(now), chat_id),
            )

    # -- delivery ----------------------------------------------------------------------

    async def claim_alerts(
        self,
        token: str,
        now: datetime,
        limit: int,
        exclude: Collection[int] = (),
    ) -> list[ClaimedAlert]:
        """Claim up to `limit` due instant alerts for sending, oldest first and at most one
        per chat, leaving out the chats in `exclude` (busy or paced). The claim is one
        UPDATE ... WHERE state = 'queued' in a write transaction: two processes never
        claim the same alert."""
        if limit <= 0:
            return []
        async with self.transaction() as db:
            rows = await _fetch(
                db,
                """SELECT min(id) FROM alerts
                   WHERE state = 'queued' AND kind = 'instant'
                     AND (next_attempt_at IS NULL OR next_attempt_at <= ?)
                     AND chat_id NOT IN (SELECT value FROM json_each(?))
                   GROUP BY chat_id ORDER BY 1 LIMIT ?""",
                (_ts(now), json.dumps(sorted(exclude)), limit),
            )
            ids = [row[0] for row in rows]
            if not ids:
                return []
            claimed = await _fetch(
                db,
                f"""UPDATE alerts SET state = 'sending', claim = ?, claimed_at = ?,
                        attempts = attempts + 1
                    WHERE state = 'queued' AND id IN ({_marks(ids)}) RETURNING id""",
                (token, _ts(now), *ids),
            )
            return await self._claimed(db, [row[0] for row in claimed], token)

    async def claim_digest(
        self, chat_id: int, token: str, now: datetime, limit: int = 1000
    ) -> list[ClaimedAlert]:
        """Claim the chat's queued digest alerts, oldest first."""
        async with self.transaction() as db:
            claimed = await _fetch(
                db,
                """UPDATE alerts SET state = 'sending', claim = ?, claimed_at = ?,
                       attempts = attempts + 1
                   WHERE id IN (SELECT id FROM alerts
                                WHERE chat_id = ? AND kind = 'digest' AND state = 'queued'
                                ORDER BY id LIMIT ?)
                   RETURNING id""",
                (token, _ts(now), chat_id, limit),
            )
            return await self._claimed(db, [row[0] for row in claimed], token)

    async def _claimed(
        self, db: aiosqlite.Connection, ids: Sequence[int], token: str
    ) -> list[ClaimedAlert]:
        if not ids:
            return []
        rows = await _fetch(
            db,
            f"""SELECT a.id, a.chat_id, a.story_id, a.kind, a.topics, a.attempts, s.title,
                    s.highlights, s.generated_highlights, substr(s.body, 1, {_LEAD_CHARS})
                FROM alerts a JOIN stories s ON s.id = a.story_id
                WHERE a.claim = ? AND a.state = 'sending' AND a.id IN ({_marks(ids)})
                ORDER BY a.id""",
            (token, *ids),
        )
        return [
            ClaimedAlert(
                id=row[0],
                chat_id=row[1],
                story_id=row[2],
                kind=row[3],
                topics=tuple(json.loads(row[4])),
                attempts=row[5],
                title=row[6],
                highlight=(row[7] or row[8] or "").split("\n", 1)[0],
                lead=row[9] or "",
            )
            for row in rows
        ]

    async def record_outcomes(
        self, token: str, outcomes: Sequence[AlertOutcome], now: datetime
    ) -> None:
        """Record how sends ended, in one transaction (only for alerts this claim holds)."""
        if not outcomes:
            return
        moment = _ts(now)
        sent = [(moment, o.alert_id, token) for o in outcomes if o.state == "sent"]
        final = [
            (o.state, o.error, o.alert_id, token)
            for o in outcomes
            if o.state in ("failed", "skipped")
        ]
        again = [
            (
                0 if o.counted else 1,
                _ts(o.retry_at) if o.retry_at else None,
                o.error,
                o.alert_id,
                token,
            )
            for o in outcomes
            if o.state == "queued"
        ]
        async with self.transaction() as db:
            await db.executemany(
                """UPDATE alerts SET state = 'sent', sent_at = ?, error = NULL
                   WHERE id = ? AND claim = ? AND state = 'sending'""",
                sent,
            )
            await db.executemany(
                """UPDATE alerts SET state = ?, error = ?
                   WHERE id = ? AND claim = ? AND state = 'sending'""",
                final,
            )
            await db.executemany(
                """UPDATE alerts SET state = 'queued', attempts = max(attempts - ?, 0),
                       next_attempt_at = ?, error = ?
                   WHERE id = ? AND claim = ? AND state = 'sending'""",
                again,
            )

    async def fail_stale_sending(self, before: datetime) -> int:
        """Alerts claimed before `before` and never settled belong to a process that died
        mid-send: whether Telegram got them is unknown, so they are marked failed, never
        sent again (at most once). Returns how many."""
        async with self.transaction() as db:
            cursor = await db.execute(
                """UPDATE alerts SET state = 'failed', error = ?
                   WHERE state = 'sending' AND claimed_at < ?""",
                (INTERRUPTED, _ts(before)),
            )
        if cursor.rowcount:
            log.warning("%d alerts were interrupted mid-send and are not resent", cursor.rowcount)
        return cursor.rowcount

    # -- digests -----------------------------------------------------------------------

    async def due_digests(self, now: datetime, limit: int = 100) -> list[Chat]:
        """Active chats whose digest moment has come."""
        rows = await self._all(
            f"""SELECT {_CHAT_COLUMNS} FROM chats
                WHERE next_digest_at IS NOT NULL AND next_digest_at <= ? AND active = 1
                ORDER BY next_digest_at LIMIT ?""",
            (_ts(now), limit),
        )
        return [_chat(row) for row in rows]

    async def finish_digest(
        self, chat_id: int, next_digest_at: datetime | None, now: datetime, *, sent: bool
    ) -> None:
        """Move the chat's digest on to its next moment (`sent`: one went out now)."""
        async with self.transaction() as db:
            await db.execute(
                """UPDATE chats SET next_digest_at = ?,
                       last_digest_at = CASE WHEN ? THEN ? ELSE last_digest_at END
                   WHERE id = ? AND digest_time IS NOT NULL""",
                (
                    _ts(next_digest_at) if next_digest_at else None,
                    sent,
                    _ts(now),
                    chat_id,
                ),
            )

    # -- counts ------------------------------------------------------------------------

    async def _alert_stats(self) -> dict[str, int]:
        """Counts for `newsbot stats`: chats, subscriptions, queued/sent/failed alerts."""
        chats = dict(await self._all("SELECT active, count(*) FROM chats GROUP BY active"))
        states = dict(await self._all("SELECT state, count(*) FROM alerts GROUP BY state"))
        # Alerts a killed process left 'sending' are marked failed (never resent), but
        # whether Telegram delivered them is unknown: they are counted apart.
        unknown = int(
            await self._one(
                "SELECT count(*) FROM alerts WHERE state = 'failed' AND error = ?",
                (INTERRUPTED,),
            )
        )
        return {
            "chats": chats.get(1, 0),
            "chats_inactive": chats.get(0, 0),
            "subscriptions": int(await self._one("SELECT count(*) FROM subscriptions")),
            "alerts_queued": states.get("queued", 0),
            "alerts_sending": states.get("sending", 0),
            "alerts_sent": states.get("sent", 0),
            "alerts_failed": states.get("failed", 0) - unknown,
            "alerts_unknown": unknown,
            "alerts_skipped": states.get("skipped", 0),
        }
