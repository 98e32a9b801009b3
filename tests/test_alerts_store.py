"""The alert queue in the store: matching inside the storing transaction, the percolator
kept in step with other connections, claims, outcomes and chat changes."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

from news.query import parse_query
from storage import Store
from storage.alerts import AlertOutcome
from tests.test_alerts import BARRIER, CUP, article

NOW = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


async def follow(store: Store, chat_id: int, text: str) -> int:
    query = parse_query(text)
    result = await store.subscribe(chat_id, query.canonical, query.display)
    assert result.subscription is not None
    return result.subscription.id


def rows(db_path: Path, sql: str) -> list[tuple[object, ...]]:
    with sqlite3.connect(db_path) as db:
        return [tuple(row) for row in db.execute(sql)]


async def test_matching_follows_another_connections_subscriptions(db_path: Path) -> None:
    bot, ingest = await Store.open(db_path), await Store.open(db_path)
    try:
        await ingest.add_articles([article("Warm-up", "Loads the percolator.")])
        await follow(bot, 1, "barrier")
        await follow(bot, 2, "cup OR league")
        [barrier, cup] = [r.story_id for r in await ingest.add_articles([BARRIER, CUP])]
        assert rows(db_path, "SELECT chat_id, story_id FROM alerts ORDER BY id") == [
            (1, barrier),
            (2, cup),
        ]
        await bot.unsubscribe(1, "barrier")
        await bot.deactivate_chat(2, "blocked the bot")
        await ingest.add_articles([article("Barrier cup final", "Barrier and cup news.")])
        assert len(rows(db_path, "SELECT id FROM alerts")) == 2
        # A log pruned past what this connection holds makes it reload everything.
        await follow(bot, 3, "final")
        with sqlite3.connect(db_path) as db:
            db.execute("DELETE FROM subscription_changes")
            db.execute("UPDATE alert_state SET changes_kept_from = subscriptions_version + 1")
        [final] = [r.story_id for r in await ingest.add_articles([article("The final", "x")])]
        assert rows(db_path, f"SELECT chat_id FROM alerts WHERE story_id = {final}") == [(3,)]
    finally:
        await bot.close()
        await ingest.close()


async def test_claims_are_exclusive_in_arrival_order_one_per_chat(db_path: Path) -> None:
    one, two = await Store.open(db_path), await Store.open(db_path)
    try:
        for chat in (1, 2, 3):
            await follow(one, chat, "barrier")
        await one.add_articles([article(f"Barrier {n}", f"Barrier item {n}.") for n in range(3)])
        first = await one.claim_alerts("a", NOW, 10)
        assert [(a.chat_id, a.story_id) for a in first] == [(1, 1), (2, 1), (3, 1)]
        assert first[0].topics == ("barrier",)
        assert first[0].highlight == ""
        assert first[0].lead.startswith("Barrier item 0.")
        second = await two.claim_alerts("b", NOW, 10, exclude={2})
        assert [(a.chat_id, a.story_id) for a in second] == [(1, 2), (3, 2)]
        # Outcomes count only for the claim that holds the alert.
        await two.record_outcomes("b", [AlertOutcome(first[0].id, "sent")], NOW)
        await one.record_outcomes(
            "a",
            [
                AlertOutcome(first[0].id, "sent"),
                AlertOutcome(first[1].id, "queued", "later", NOW + timedelta(minutes=5)),
            ],
            NOW,
        )
        # A retry waits for its time; the chat's later stories do not wait for it.
        third = await two.claim_alerts("b", NOW, 10)
        assert [(a.chat_id, a.story_id) for a in third] == [(2, 2), (1, 3), (3, 3)]
        later = await two.claim_alerts("b", NOW + timedelta(minutes=6), 5)
        assert [(a.chat_id, a.story_id, a.attempts) for a in later] == [(2, 1, 2)]
        stats = await one.stats()
        assert stats["alerts_sent"] == 1
        assert stats["alerts_sending"] == 7
        assert stats["alerts_queued"] == 1
        # Claims a dead process left behind are failed after a while, never sent again.
        assert await one.fail_stale_sending(NOW + timedelta(minutes=10)) == 7
        # Whether Telegram got them is unknown: counted apart from real failures.
        after = await one.stats()
        assert (after["alerts_unknown"], after["alerts_failed"]) == (7, 0)
    finally:
        await one.close()
        await two.close()


async def test_migration_moves_topics_settings_and_queued_alerts(db_path: Path) -> None:
    store = await Store.open(db_path)
    try:
        await follow(store, -5, "barrier")
        await follow(store, -5, "cup")
        await store.set_digest(-5, None, None, NOW, chat_type="group")
        await store.set_timezone(-5, "Europe/Minsk", None, NOW, chat_type="group")
        await store.add_articles([BARRIER, CUP])
        [claimed] = await store.claim_alerts("t", NOW, 1)
        await store.migrate_chat(-5, -1005, NOW, alert_ids=[claimed.id])
        old, new = await store.chat(-5), await store.chat(-1005)
        assert old is not None
        assert new is not None
        assert (old.active, old.inactive_reason, old.migrated_to) == (False, "migrated", -1005)
        assert (new.active, new.type, new.timezone) == (True, "supergroup", "Europe/Minsk")
        assert [s.display for s in await store.subscriptions(-1005)] == ["barrier", "cup"]
        assert await store.subscriptions(-5) == []
        assert rows(db_path, "SELECT chat_id, state, attempts FROM alerts ORDER BY id") == [
            (-1005, "queued", 0),
            (-1005, "queued", 0),
        ]
        # The old id never comes back to life.
        assert not await store.activate_chat(-5)
        [story] = [r.story_id for r in await store.add_articles([article("Cup final", "x")])]
        assert rows(db_path, f"SELECT chat_id FROM alerts WHERE story_id = {story}") == [(-1005,)]
    finally:
        await store.close()


async def test_daily_topics_queue_digest_alerts_and_stats_count_everything(
    db_path: Path,
) -> None:
    store = await Store.open(db_path)
    try:
        await follow(store, 1, "barrier")
        await store.set_digest(1, "08:00", NOW + timedelta(hours=20), NOW)
        await follow(store, 1, "council")  # daily too: the chat has a digest
        await follow(store, 2, "council")
        await store.add_articles([BARRIER])
        assert rows(db_path, "SELECT chat_id, kind, topics FROM alerts ORDER BY id") == [
            (1, "digest", '["barrier", "council"]'),
            (2, "instant", '["council"]'),
        ]
        assert await store.due_digests(NOW) == []
        [due] = await store.due_digests(NOW + timedelta(days=1))
        assert due.id == 1
        assert [a.kind for a in await store.claim_digest(1, "t", NOW)] == ["digest"]
        stats = await store.stats()
        assert {k: stats[k] for k in ("chats", "subscriptions", "alerts_queued")} == {
            "chats": 2,
            "subscriptions": 3,
            "alerts_queued": 1,
        }
    finally:
        await store.close()


async def test_newsbot_stats_reports_chats_subscriptions_and_alerts(db_path: Path) -> None:
    store = await Store.open(db_path)
    try:
        await follow(store, 1, "barrier")
        await follow(store, 2, "cup")
        await store.add_articles([BARRIER, CUP])
        [first, second] = await store.claim_alerts("t", NOW, 5)
        await store.record_outcomes(
            "t", [AlertOutcome(first.id, "sent"), AlertOutcome(second.id, "failed")], NOW
        )
    finally:
        await store.close()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TELEGRAM_", "NEWSBOT_"))}
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        "stats",
        env={**env, "NEWSBOT_DB": str(db_path)},
        cwd=db_path.parent,
        stdout=asyncio.subprocess.PIPE,
    )
    out, _ = await asyncio.wait_for(process.communicate(), 60)
    lines = out.decode().splitlines()
    for line in (
        "stories: 2",
        "chats: 2",
        "subscriptions: 2",
        "alerts_queued: 0",
        "alerts_sent: 1",
        "alerts_failed: 1",
    ):
        assert line in lines, lines
