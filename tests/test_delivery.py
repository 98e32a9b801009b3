"""Alert delivery against the fake Bot API server: Telegram's errors and limits, and every
alert sent exactly once across restarts, kill -9 and two bot processes on one database."""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
import signal
import sqlite3
import sys
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from telegram.ext import ExtBot

from bot.app import build_application, running
from bot.config import Secret, Settings
from bot.delivery import Delivery, Limits, may_have_arrived
from bot.jobs import DELIVERY_CONFIG
from storage import Store
from tests.chat import Reader
from tests.conftest import ADMIN_ID
from tests.fakes.botapi import FakeBotAPI
from tests.test_alerts import (
    BARRIER,
    FAST,
    add,
    alert_calls,
    alerts_in,
    article,
    idle,
    states,
    until,
    wait_alerts,
)


@pytest.fixture
async def alert_bot(settings: Any) -> AsyncIterator[Any]:
    app = build_application(settings)
    app.bot_data.extras[DELIVERY_CONFIG] = FAST
    async with running(app):
        yield app


async def subscribe(db_path: Path, chat_id: int, topic: str, chat_type: str = "private") -> None:
    store = await Store.open(db_path)
    try:
        await store.subscribe(chat_id, topic, topic, chat_type=chat_type)
    finally:
        await store.close()


def attempts(db_path: Path) -> list[int]:
    with sqlite3.connect(db_path) as db:
        return [row[0] for row in db.execute("SELECT attempts FROM alerts ORDER BY id")]


# -- Telegram's errors ---------------------------------------------------------------------


async def test_retry_after_pauses_alerts_once_and_then_sends(
    alert_bot: Any, botapi: FakeBotAPI, db_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="telegram.ext")
    await subscribe(db_path, 5001, "barrier")
    await subscribe(db_path, 5002, "barrier")
    botapi.fail_next("sendMessage", chat_id=5001, error=botapi.retry_after(1))
    await add(db_path, BARRIER)
    await wait_alerts(botapi, 5001, 1)
    await wait_alerts(botapi, 5002, 1)
    calls = [c for c in botapi.calls("sendMessage") if c.params.get("chat_id") == 5001]
    assert [c.status for c in calls] == [429, 200]
    # One pause of retry_after, not two (PTB's limiter does not sleep on it as well).
    assert 1.0 <= calls[1].time - calls[0].time < 1.9
    assert botapi.too_many_requests == 1
    assert not [r for r in caplog.records if "Rate limit hit" in r.getMessage()]
    await until(lambda: states(db_path) == [("sent", "instant")] * 2)
    assert attempts(db_path)[0] == 1  # a RetryAfter is not a failed attempt


async def test_blocked_chat_stops_its_alerts_and_start_resumes_them(
    alert_bot: Any, botapi: FakeBotAPI, db_path: Path
) -> None:
    reader = Reader(botapi, 5001)
    await subscribe(db_path, 5001, "barrier")
    botapi.fail_next("sendMessage", chat_id=5001, error=botapi.forbidden())
    await add(db_path, BARRIER, article("Barrier delayed", "The barrier is late."))
    await until(lambda: sorted(s for s, _ in states(db_path)) == ["skipped", "skipped"])
    assert alert_calls(botapi, 5001) == []
    await add(db_path, article("Barrier cost rises", "The barrier costs more."))
    assert len(alerts_in(db_path)) == 2  # an inactive chat gets nothing queued
    store = await Store.open(db_path)
    stats = await store.stats()
    await store.close()
    assert (stats["chats"], stats["chats_inactive"], stats["alerts_skipped"]) == (0, 1, 2)
    [welcome, _help] = await reader.say("/start", replies=2)
    assert "Welcome back" in welcome.plain_text
    [story_id] = await add(db_path, article("Barrier opens", "The barrier opened today."))
    [call] = await wait_alerts(botapi, 5001, 1)
    assert f"/read_{story_id}" in call.params["text"]
    assert "Welcome back" not in await reader.ask("/start")


async def test_removed_from_a_group_stops_alerts_and_adding_back_resumes(
    alert_bot: Any, botapi: FakeBotAPI, db_path: Path
) -> None:
    group = -100900
    await subscribe(db_path, group, "barrier", chat_type="supergroup")
    botapi.my_chat_member(group, 7001, "member", "kicked", chat_type="supergroup")
    store = await Store.open(db_path)
    try:
        await until_async(lambda: chat_active(store, group), False)
        await store.add_articles([BARRIER])
        assert alerts_in(db_path) == []
        botapi.my_chat_member(group, 7001, "left", "member", chat_type="supergroup")
        await until_async(lambda: chat_active(store, group), True)
    finally:
        await store.close()
    [story_id] = await add(db_path, article("Barrier opens", "The barrier opened today."))
    [call] = await wait_alerts(botapi, group, 1)
    assert f"/read_{story_id}" in call.params["text"]


async def chat_active(store: Store, chat_id: int) -> bool:
    chat = await store.chat(chat_id)
    assert chat is not None
    return chat.active


async def until_async(check: Any, expected: object, within: float = 10) -> None:
    deadline = asyncio.get_running_loop().time() + within
    while await check() != expected:
        assert asyncio.get_running_loop().time() < deadline, "condition not met in time"
        await asyncio.sleep(0.02)


async def test_chat_migrated_moves_topics_and_the_alert_to_the_supergroup(
    alert_bot: Any, botapi: FakeBotAPI, db_path: Path
) -> None:
    old, new = -555, -100555
    await subscribe(db_path, old, "barrier", chat_type="group")
    botapi.fail_next("sendMessage", chat_id=old, error=botapi.chat_migrated(new))
    [story_id] = await add(db_path, BARRIER)
    [call] = await wait_alerts(botapi, new, 1)
    assert f"/read_{story_id}" in call.params["text"]
    assert alert_calls(botapi, old) == []
    moved = Reader(botapi, new, user_id=7001, chat_type="supergroup")
    assert "1. barrier" in await moved.ask("/subscriptions")
    [later] = await add(db_path, article("Barrier opens", "The barrier opened today."))
    await wait_alerts(botapi, new, 2)
    assert alert_calls(botapi, old) == []
    await until(lambda: [r[0] for r in alerts_in(db_path)] == [new, new])
    assert later == story_id + 1


async def test_server_errors_are_retried_with_backoff_and_then_given_up(
    alert_bot: Any, botapi: FakeBotAPI, db_path: Path
) -> None:
    await subscribe(db_path, 5001, "barrier")
    await subscribe(db_path, 5002, "barrier")
    botapi.fail_next("sendMessage", chat_id=5001, times=2, error=botapi.server_error())
    botapi.fail_next("sendMessage", chat_id=5002, times=None, error=botapi.server_error())
    await add(db_path, BARRIER)
    await wait_alerts(botapi, 5001, 1)
    tries = [c for c in botapi.calls("sendMessage") if c.params.get("chat_id") == 5001]
    assert [c.status for c in tries] == [500, 500, 200]
    # Exponential backoff: waits of at least 0.05 s, then 0.1 s (load can only lengthen
    # them, so only the lower bounds are checked).
    first, second = tries[1].time - tries[0].time, tries[2].time - tries[1].time
    assert first >= 0.045
    assert second >= 0.09
    await until(lambda: sorted(s for s, _ in states(db_path)) == ["failed", "sent"])
    failing = [c for c in botapi.calls("sendMessage") if c.params.get("chat_id") == 5002]
    assert len(failing) == FAST.max_attempts
    store = await Store.open(db_path)
    stats = await store.stats()
    await store.close()
    assert (stats["alerts_sent"], stats["alerts_failed"], stats["alerts_queued"]) == (1, 1, 0)
    botapi.clear()
    admin = Reader(botapi, ADMIN_ID)
    text = await admin.ask("/stats")
    for line in ("chats: 2", "subscriptions: 2", "alerts queued: 0", "alerts sent: 1"):
        assert line in text
    assert "alerts failed: 1" in text


def test_no_answer_means_the_alert_may_have_arrived() -> None:
    import httpx
    from telegram.error import NetworkError, TimedOut

    def wrapped(error: NetworkError, cause: Exception | None) -> NetworkError:
        error.__cause__ = cause
        return error

    assert may_have_arrived(wrapped(TimedOut(), httpx.ReadTimeout("read")))
    assert may_have_arrived(wrapped(NetworkError("x"), httpx.RemoteProtocolError("gone")))
    assert not may_have_arrived(wrapped(TimedOut(), httpx.ConnectTimeout("connect")))
    assert not may_have_arrived(wrapped(NetworkError("x"), httpx.ConnectError("refused")))
    assert not may_have_arrived(wrapped(NetworkError("Internal Server Error (500)"), None))


# -- Telegram's limits ---------------------------------------------------------------------


async def test_real_limits_one_message_a_second_per_chat_and_no_429(db_path: Path) -> None:
    config = replace(FAST, limits=Limits())
    with FakeBotAPI(enforce_limits=True) as api:
        settings = Settings(
            token=Secret("123456:TEST-token"), api_base_url=api.base_url, db_path=db_path
        )
        for chat, kind in ((5001, "private"), (5002, "private"), (-100777, "supergroup")):
            await subscribe(db_path, chat, "barrier", kind)
        app = build_application(settings)
        app.bot_data.extras[DELIVERY_CONFIG] = config
        async with running(app):
            await add(
                db_path, *(article(f"Barrier news {n}", f"Barrier item {n}.") for n in range(3))
            )
            for chat in (5001, 5002, -100777):
                await wait_alerts(api, chat, 3)
            for chat in (5001, 5002, -100777):
                times = [c.time for c in alert_calls(api, chat)]
                assert all(b - a >= 1.0 for a, b in itertools.pairwise(times)), times
        assert api.too_many_requests == 0


# -- exactly once ----------------------------------------------------------------------------


async def test_two_deliveries_on_one_database_never_send_an_alert_twice(db_path: Path) -> None:
    chats = list(range(6001, 6041))
    store_a, store_b = await Store.open(db_path), await Store.open(db_path)
    config = replace(FAST, limits=None, max_in_flight=8)
    with FakeBotAPI() as api:
        bots = [ExtBot("123456:TEST-token", base_url=api.base_url) for _ in range(2)]
        try:
            for chat in chats:
                await store_a.subscribe(chat, "barrier", "barrier")
            await store_b.add_articles(
                [article(f"Barrier news {n}", f"Barrier item {n}.") for n in range(5)]
            )
            for bot in bots:
                await bot.initialize()
            one = Delivery(store_a, bots[0], config=config)
            two = Delivery(store_b, bots[1], config=config)
            sent = await asyncio.gather(one.drain(), two.drain())
        finally:
            for bot in bots:
                await bot.shutdown()
            await store_a.close()
            await store_b.close()
        assert sum(sent) == len(chats) * 5
        assert min(sent) > 0  # both took part
        delivered = [(c.params["chat_id"], c.params["text"]) for c in alert_calls(api)]
        assert len(delivered) == len(set(delivered)) == len(chats) * 5
    assert {s for s, _ in states(db_path)} == {"sent"}


# -- real processes: kill -9, restart, two bots ----------------------------------------------

TOKEN = "987654:SECRET-delivery"


def bot_env(db_path: Path, api: FakeBotAPI) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TELEGRAM_", "NEWSBOT_"))}
    env.update(
        NEWSBOT_DB=str(db_path), TELEGRAM_BOT_TOKEN=TOKEN, TELEGRAM_API_BASE_URL=api.base_url
    )
    return env


async def start_bot(db_path: Path, api: FakeBotAPI) -> asyncio.subprocess.Process:
    before = len(api.calls("deleteWebhook"))
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        "run",
        cwd=db_path.parent,
        env=bot_env(db_path, api),
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    # run_polling starts the jobs right after deleteWebhook is answered.
    await api.wait_for_async("deleteWebhook", before + 1, 60)
    await asyncio.sleep(0.5)
    return process


async def stop(process: asyncio.subprocess.Process, how: signal.Signals) -> None:
    if process.returncode is None:
        process.send_signal(how)
    await asyncio.wait_for(process.wait(), 60)


async def test_kill_9_between_queueing_and_sending_then_restart_sends_each_once(
    db_path: Path,
) -> None:
    await subscribe(db_path, 5001, "barrier")
    with FakeBotAPI() as api:
        first = await start_bot(db_path, api)
        # From now on Telegram takes the bot's sends but holds every answer back.
        api.latency = 30.0
        ids = await add(
            db_path, *(article(f"Barrier news {n}", f"Barrier item {n}.") for n in range(3))
        )
        await wait_alerts(api, 5001, 1, within=30)
        await until(lambda: [s for s, _ in states(db_path)] == ["sending", "queued", "queued"])
        # Killed with one alert in flight (Telegram has it) and two queued, never sent.
        await stop(first, signal.SIGKILL)
        assert [s for s, _ in states(db_path)] == ["sending", "queued", "queued"]
        api.latency = 0.0
        second = await start_bot(db_path, api)
        try:
            await wait_alerts(api, 5001, 3, within=30)
            await until(lambda: [s for s, _ in states(db_path)] == ["sending", "sent", "sent"])
            await idle(1.5)  # time enough for a wrong second send of the first one
        finally:
            await stop(second, signal.SIGTERM)
        assert second.returncode == 0
        texts = [c.params["text"] for c in alert_calls(api, 5001)]
    # Every story alerted exactly once: the one in flight at the kill is never resent.
    assert sorted(next(i for i in ids if f"/read_{i}" in t) for t in texts) == ids


async def test_two_bot_processes_on_one_database_send_nothing_twice(db_path: Path) -> None:
    chats = list(range(6001, 6031))
    store = await Store.open(db_path)
    for chat in chats:
        await store.subscribe(chat, "barrier", "barrier")
    await store.close()
    with FakeBotAPI() as api:
        bots = [await start_bot(db_path, api), await start_bot(db_path, api)]
        try:
            await add(
                db_path, *(article(f"Barrier news {n}", f"Barrier item {n}.") for n in range(3))
            )
            await until(lambda: {s for s, _ in states(db_path)} == {"sent"}, within=60)
            await idle(1.0)
        finally:
            for bot in bots:
                await stop(bot, signal.SIGTERM)
        delivered = [(c.params["chat_id"], c.params["text"]) for c in alert_calls(api)]
    assert len(delivered) == len(set(delivered)) == len(chats) * 3
    with sqlite3.connect(db_path) as db:
        claims = {row[0] for row in db.execute("SELECT DISTINCT claim FROM alerts")}
    assert len(claims) == 2, "both processes delivered"
