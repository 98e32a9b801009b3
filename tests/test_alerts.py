"""Topic alerts end to end: the real Application polling the fake Bot API server, stories
stored by another connection or another process, alerts arriving in the right chats."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import sys
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from bot.app import build_application, running
from bot.delivery import DeliveryConfig, Limits
from bot.jobs import DELIVERY_CONFIG
from handlers.context import CLOCK
from news.articles import Article
from storage import Store
from tests.chat import Reader
from tests.fakes.botapi import FakeBotAPI, SentMessage

# Short intervals keep the suite fast; the per-chat second is shortened too except where
# a test checks the real limits.
FAST = DeliveryConfig(
    interval=0.05,
    digest_interval=0.05,
    limits=Limits(per_second=30, chat_interval=0.05, group_per_minute=1000),
    backoff_base=0.05,
    backoff_max=0.2,
    max_attempts=3,
    flush_seconds=0.02,
)
START = datetime(2025, 3, 1, 7, 0, tzinfo=UTC)


@dataclass
class Clock:
    """A clock the test moves by hand."""

    now: datetime = START

    def __call__(self) -> datetime:
        return self.now


def article(title: str, *body: str, **fields: Any) -> Article:
    fields.setdefault("source", "Test Wire")
    return Article(title=title, body=body or (f"{title}. More text.",), **fields)


BARRIER = article(
    "Council approves tidal barrier",
    "The council voted to build a tidal barrier across the estuary. Work starts in spring.",
    highlights=("Councillors voted 31 to 4 for the barrier.",),
    category="local",
)
CUP = article("Rovers win the cup", "Rovers won the county cup with a late header.")


async def add(db_path: Path, *articles: Article) -> list[int]:
    """Store stories through a connection of their own, as another process would."""
    store = await Store.open(db_path)
    try:
        return [r.story_id for r in await store.add_articles(list(articles))]
    finally:
        await store.close()


def alerts_in(db_path: Path) -> list[tuple[int, int, str, str]]:
    """(chat, story, state, kind) of every alert row."""
    with sqlite3.connect(db_path) as db:
        rows = db.execute("SELECT chat_id, story_id, state, kind FROM alerts ORDER BY id")
        return [tuple(row) for row in rows]


async def idle(seconds: float) -> None:
    """Let the bot run for a while (to show that something does not happen)."""
    await asyncio.sleep(seconds)


async def until(check: Callable[[], bool], within: float = 10) -> None:
    """Wait until `check()` holds (the bot records a send just after making it)."""
    deadline = asyncio.get_running_loop().time() + within
    while not check():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.02)


def states(db_path: Path) -> list[tuple[str, str]]:
    """(state, kind) of every alert row."""
    return [(row[2], row[3]) for row in alerts_in(db_path)]


def labels(message: SentMessage) -> list[str]:
    assert message.reply_markup is not None
    return [b["text"] for row in message.reply_markup["inline_keyboard"] for b in row]


AppFactory = Callable[..., Any]


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def alert_bot(settings: Any, clock: Clock) -> AsyncIterator[Any]:
    """The real Application with fast delivery jobs and a hand-moved clock."""
    app = build_application(settings)
    app.bot_data.extras[DELIVERY_CONFIG] = FAST
    app.bot_data.extras[CLOCK] = clock
    async with running(app):
        yield app


@pytest.fixture
def reader(botapi: FakeBotAPI) -> Reader:
    return Reader(botapi, 5001)


async def wait_alerts(api: FakeBotAPI, chat_id: int, n: int, within: float = 10) -> list[Any]:
    """The first `n` alert messages (🔔) sent to a chat."""

    def is_alert(call: Any) -> bool:
        return (
            call.method == "sendMessage"
            and call.ok
            and call.params.get("chat_id") == chat_id
            and str(call.params.get("text", "")).startswith("🔔")
        )

    return await api.wait_for_async(is_alert, n, within)


def alert_calls(api: FakeBotAPI, chat_id: int | None = None) -> list[Any]:
    return [
        c
        for c in api.calls("sendMessage")
        if c.ok
        and str(c.params.get("text", "")).startswith("🔔")
        and (chat_id is None or c.params.get("chat_id") == chat_id)
    ]


# -- subscribing ---------------------------------------------------------------------------


async def test_alert_reaches_only_the_matching_chat_from_another_process(
    alert_bot: Any, botapi: FakeBotAPI, reader: Reader, db_path: Path, tmp_path: Path
) -> None:
    other = Reader(botapi, 5002)
    assert "Subscribed to" in await reader.ask("/subscribe tidal barrier")
    assert "Subscribed to" in await other.ask("/subscribe football")
    archive = tmp_path / "new.jsonl"
    records = [
        {
            "id": "1",
            "title": BARRIER.title,
            "text": "\n\n".join(BARRIER.body),
            "category": "local",
            "published": None,
            "url": None,
        },
        {"id": "2", "title": "Night buses return", "text": "Buses run at night again."},
    ]
    archive.write_text("\n".join(json.dumps(r) for r in records) + "\n")
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        "ingest",
        "--no-progress",
        str(archive),
        env={"NEWSBOT_DB": str(db_path), "PATH": "/usr/bin:/bin"},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), 120)
    assert process.returncode == 0, err.decode()
    assert "2 new" in out.decode()
    [call] = await wait_alerts(botapi, 5001, 1)
    text = call.params["text"]
    assert text.startswith("🔔 tidal barrier")
    assert "<b>Council approves tidal barrier</b>" in text
    await until(lambda: states(db_path) == [("sent", "instant")])
    [(chat, story_id, state, kind)] = alerts_in(db_path)
    assert f"/read_{story_id}" in text
    assert labels(reader_message(botapi, call)) == ["Summary", "Full text"]
    # The story holds no highlight in this archive: the body's first sentence stands in.
    assert "The council voted to build a tidal barrier across the estuary." in text
    await idle(0.3)
    assert alert_calls(botapi, 5002) == []
    assert len(alert_calls(botapi)) == 1
    assert (chat, state, kind) == (5001, "sent", "instant")
    [summary] = await reader.press(reader_message(botapi, call), "Summary")
    assert "Summary" in summary.plain_text


def reader_message(api: FakeBotAPI, call: Any) -> SentMessage:
    [message] = [m for m in api.sent_messages() if m.message_id == call.result["message_id"]]
    return message


async def test_subscribe_replies_usage_duplicates_errors_and_limits(
    alert_bot: Any, reader: Reader, db_path: Path
) -> None:
    assert "/subscribe belarus protests" in await reader.ask("/subscribe")
    added = await reader.ask("/subscribe Belarus  protests")
    assert "Subscribed to Belarus protests" in added
    assert "already subscribed" in await reader.ask("/subscribe protests belarus")
    assert "Add at least one word" in await reader.ask("/subscribe -football")
    too_long = await reader.ask("/subscribe " + "word " * 50)
    assert "at most 200" in too_long
    store = await Store.open(db_path)
    for n in range(49):
        await store.subscribe(5001, f"topic{n}", f"topic{n}")
    await store.close()
    refused = await reader.ask("/subscribe one too many")
    assert "50 topics" in refused
    listing = await reader.ask("/subscriptions")
    assert "(50 of 50)" in listing


async def test_subscriptions_buttons_remove_and_switch_topics(
    alert_bot: Any, botapi: FakeBotAPI, reader: Reader
) -> None:
    assert "no topics yet" in await reader.ask("/subscriptions")
    await reader.ask("/subscribe belarus")
    await reader.ask('/subscribe "climate change"')
    [listing] = await reader.say("/subscriptions")
    assert "1. belarus — instant" in listing.plain_text
    assert '2. "climate change" — instant' in listing.plain_text
    assert labels(listing) == ["✖ 1. belarus", "1. → daily", '✖ 2. "climate change"', "2. → daily"]
    [edited] = await reader.press(listing, "1. → daily")
    assert edited.method == "editMessageText"
    assert "1. belarus — daily digest at 08:00 UTC" in edited.plain_text
    assert '2. "climate change" — instant' in edited.plain_text
    [after] = await reader.press(edited, '✖ 2. "climate change"')
    assert "climate change" not in after.plain_text
    assert labels(after) == ["✖ 1. belarus", "1. → instant"]
    toasts = [c.params.get("text") for c in botapi.calls("answerCallbackQuery")]
    assert any("Daily digest at 08:00" in str(t) for t in toasts)
    assert any("Stopped" in str(t) for t in toasts)


async def test_unsubscribe_one_topic_or_all(alert_bot: Any, reader: Reader) -> None:
    assert "/unsubscribe all" in await reader.ask("/unsubscribe")
    await reader.ask("/subscribe belarus protests")
    await reader.ask("/subscribe football")
    assert "not subscribed to" in await reader.ask("/unsubscribe cricket")
    assert "Stopped belarus protests" in await reader.ask("/unsubscribe protests Belarus")
    assert "Stopped all 1 topic" in await reader.ask("/unsubscribe all")
    assert "follows no topics" in await reader.ask("/unsubscribe all")


async def test_only_group_admins_change_a_groups_topics(
    alert_bot: Any, botapi: FakeBotAPI, db_path: Path
) -> None:
    group = -100555
    member = Reader(botapi, group, user_id=7001, chat_type="supergroup")
    admin = Reader(botapi, group, user_id=7002, chat_type="supergroup")
    botapi.set_admins(group, [7002], creator=7003)
    assert "only its admins" in await member.ask("/subscribe football")
    assert "only its admins" in await member.ask("/digest 09:00")
    assert "Subscribed to football" in await admin.ask("/subscribe football")
    [listing] = await member.say("/subscriptions")  # anyone may look
    assert "1. football" in listing.plain_text
    before = len(botapi.calls("answerCallbackQuery"))
    botapi.callback_query("topic:rm:1", group, listing.message_id or 0, 7001)
    [answer] = (await botapi.wait_for_async("answerCallbackQuery", before + 1))[before:]
    assert answer.params.get("show_alert") is True
    store = await Store.open(db_path)
    assert [s.display for s in await store.subscriptions(group)] == ["football"]
    await store.close()
    creator = Reader(botapi, group, user_id=7003, chat_type="supergroup")
    assert "Stopped football" in await creator.ask("/unsubscribe football")


# -- matching ------------------------------------------------------------------------------


async def test_a_story_matching_several_topics_is_one_alert_naming_them(
    alert_bot: Any, botapi: FakeBotAPI, reader: Reader, db_path: Path
) -> None:
    await reader.ask("/subscribe barrier")
    await reader.ask("/subscribe category:local")
    await reader.ask("/subscribe cup")
    [story_id] = await add(db_path, BARRIER)
    [call] = await wait_alerts(botapi, 5001, 1)
    assert call.params["text"].startswith("🔔 barrier · category:local\n")
    assert "Councillors voted 31 to 4 for the barrier." in call.params["text"]
    # Storing the same story again (a re-import) is a duplicate: no second alert.
    await add(db_path, BARRIER)
    await add(db_path, CUP)
    await wait_alerts(botapi, 5001, 2)
    await until(lambda: states(db_path) == [("sent", "instant")] * 2)
    assert alerts_in(db_path)[0][:3] == (5001, story_id, "sent")
    assert len(alert_calls(botapi, 5001)) == 2


async def test_subscriptions_made_while_another_connection_stores_are_seen(
    alert_bot: Any, botapi: FakeBotAPI, reader: Reader, db_path: Path
) -> None:
    ingest = await Store.open(db_path)  # a long-lived ingest process
    try:
        await ingest.add_articles([article("Warm-up story", "Nothing to see.")])
        await reader.ask("/subscribe orchards")
        await ingest.add_articles([article("Orchards blossom early", "Blossom in March.")])
        await wait_alerts(botapi, 5001, 1)
        await reader.ask("/unsubscribe orchards")
        await ingest.add_articles([article("Orchards hit by frost", "Frost in April.")])
    finally:
        await ingest.close()
    assert [row[0] for row in alerts_in(db_path)] == [5001]


async def test_a_story_matching_instant_and_daily_topics_is_alerted_once_at_once(
    alert_bot: Any, botapi: FakeBotAPI, reader: Reader, db_path: Path
) -> None:
    await reader.ask("/digest 08:00")
    await reader.ask("/subscribe barrier")  # daily: the chat has a digest
    [listing] = await reader.say("/subscriptions")
    assert "daily digest at 08:00 UTC" in listing.plain_text
    await reader.ask("/subscribe estuary")
    [listing] = await reader.say("/subscriptions")
    await reader.press(listing, "2. → instant")
    await add(db_path, BARRIER)
    [call] = await wait_alerts(botapi, 5001, 1)
    assert call.params["text"].startswith("🔔 barrier · estuary\n")
    await until(lambda: states(db_path) == [("sent", "instant")])


# -- daily digests -------------------------------------------------------------------------


async def test_digest_at_the_chats_hour_lists_every_story_once(
    alert_bot: Any, botapi: FakeBotAPI, reader: Reader, clock: Clock, db_path: Path
) -> None:
    reply = await reader.ask("/digest 8:00")
    assert "Daily digest at 08:00 UTC" in reply
    assert "Next: 1 Mar, 08:00 UTC" in reply
    await reader.ask("/subscribe barrier OR cup")
    ids = await add(db_path, BARRIER, CUP, article("Unrelated news", "Nothing."))
    before = len(botapi.sent_messages(5001))
    clock.now = START + timedelta(minutes=59)
    await idle(0.3)
    assert len(botapi.sent_messages(5001)) == before  # not yet 08:00
    assert {r[2] for r in alerts_in(db_path)} == {"queued"}
    clock.now = START + timedelta(hours=1, seconds=5)
    [digest] = (await botapi.wait_for_messages(before + 1, chat_id=5001))[before:]
    assert digest.plain_text.startswith("📰 Your daily digest · 2 stories")
    assert f"/read_{ids[0]}" in digest.plain_text
    assert f"/read_{ids[1]}" in digest.plain_text
    assert "Council approves tidal barrier" in digest.plain_text
    assert "Unrelated" not in digest.plain_text
    await until(lambda: {r[2] for r in alerts_in(db_path)} == {"sent"})
    # The next day: a new story goes in the next digest only, and old ones never again.
    [later] = await add(db_path, article("Barrier opens", "The barrier opened."))
    clock.now = START + timedelta(days=1, hours=1, seconds=5)
    [second] = (await botapi.wait_for_messages(before + 2, chat_id=5001))[before + 1 :]
    assert second.plain_text.startswith("📰 Your daily digest · 1 story")
    assert f"/read_{later}" in second.plain_text
    assert f"/read_{ids[0]}" not in second.plain_text
    await idle(0.3)
    assert len(botapi.sent_messages(5001)) == before + 2


async def test_digest_follows_the_chats_time_zone(
    alert_bot: Any, botapi: FakeBotAPI, reader: Reader, clock: Clock, db_path: Path
) -> None:
    reply = await reader.ask("/timezone europe/minsk")
    assert "Time zone set to Europe/Minsk (it is 10:00 there now)" in reply
    reply = await reader.ask("/digest 09:30")
    assert "Next: 2 Mar, 09:30 Europe/Minsk" in reply  # 09:30 in Minsk is 06:30 UTC
    await reader.ask("/subscribe barrier")
    await add(db_path, BARRIER)
    before = len(botapi.sent_messages(5001))
    clock.now = datetime(2025, 3, 2, 6, 29, tzinfo=UTC)
    await idle(0.3)
    assert len(botapi.sent_messages(5001)) == before
    clock.now = datetime(2025, 3, 2, 6, 31, tzinfo=UTC)
    [digest] = (await botapi.wait_for_messages(before + 1, chat_id=5001))[before:]
    assert "Council approves tidal barrier" in digest.plain_text


async def test_digest_and_timezone_commands_check_what_they_get(
    alert_bot: Any, reader: Reader, db_path: Path
) -> None:
    assert "Off: topics arrive as instant alerts" in await reader.ask("/digest")
    assert "off already" in await reader.ask("/digest off")
    for bad in ("/digest 25:00", "/digest soon", "/digest 8"):
        assert "24-hour clock" in await reader.ask(bad), bad
    assert "UTC" in await reader.ask("/timezone")
    for bad in ("/timezone Mars/Olympus", "/timezone UTC+15", "/timezone ../../etc/passwd"):
        assert "Europe/Minsk" in await reader.ask(bad), bad
    assert "UTC+05:30" in await reader.ask("/timezone UTC+5:30")
    await reader.ask("/subscribe barrier")
    await reader.ask("/digest 18:30")
    assert "Every day at 18:30 UTC+05:30" in await reader.ask("/digest")
    await add(db_path, BARRIER)
    assert states(db_path) == [("queued", "digest")]
    # Digest off: everything goes back to instant, and what waited is sent now.
    assert "Daily digest off" in await reader.ask("/digest off")
    for _ in range(100):
        if alerts_in(db_path)[0][2] == "sent":
            break
        await idle(0.05)
    await until(lambda: states(db_path) == [("sent", "instant")])
