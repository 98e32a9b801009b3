"""Delivery benchmark: queued alerts sent by the real Application and its delivery job to
the fake Bot API server.

    .venv/bin/python -m benchmarks.delivery [--quick] [--alerts N] [--chats N] [--rounds N]

(a) limits on: N alerts (10,000; --quick 1,000) over 1,000 private chats, the fake server
    enforcing Telegram's limits (30 messages/s overall, 1/s per chat, 20/min per group) and
    answering 429 beyond them. Target: no 429, total time within 5% of N/30 s.
(b) limits off (no rate limiter, a fake that enforces nothing): our delivery's messages/s
    beside bare python-telegram-bot `send_message` calls to the same fake server in the
    same run, run as concurrent tasks over one connection pool (the best of several
    concurrency levels is the baseline). Target: at least 0.8x the bare rate.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from telegram import Bot, InlineKeyboardButton, InlineKeyboardMarkup
from telegram.request import HTTPXRequest

from benchmarks.common import print_table, write_json
from bot.app import build_application, running
from bot.config import Secret, Settings
from bot.delivery import DeliveryConfig
from bot.jobs import DELIVERY_CONFIG
from news.articles import Article
from storage import Store
from tests.fakes.botapi import FakeBotAPI

TOKEN = "123456:BENCH-token"
TOPIC = "harbour"
BARE_CONCURRENCY = (16, 64, 256)  # bare PTB at each; its best is the baseline


def stories(count: int) -> list[Article]:
    """`count` distinct stories matching the benchmark topic, sized like real alerts."""
    return [
        Article(
            title=f"Harbour authority publishes report number {n} on the new quay",
            body=(
                f"The harbour authority published report {n} on Monday. It covers the new "
                "quay, the dredging schedule and the costs so far.",
                "Local traders welcomed the report but asked for more detail.",
            ),
            highlights=(f"Report {n} covers the quay, dredging and costs.",),
            source="Bench Wire",
        )
        for n in range(count)
    ]


async def prepare(db_path: Path, chats: int) -> None:
    """A database whose `chats` private chats all follow the topic."""
    store = await Store.open(db_path)
    try:
        for chat in range(1, chats + 1):
            await store.subscribe(100_000 + chat, TOPIC, TOPIC)
    finally:
        await store.close()


def count_alerts(api: FakeBotAPI) -> int:
    """Alert messages the fake server accepted."""
    return sum(
        1
        for c in api.calls("sendMessage")
        if c.ok and str(c.params.get("text", "")).startswith("🔔")
    )


def serve(enforce_limits: bool) -> None:
    """`--serve`: run the fake server in this process until stdin closes; print its URL,
    and its counts whenever a line arrives on stdin."""
    with FakeBotAPI(enforce_limits=enforce_limits) as api:
        print(api.base_url, flush=True)
        for _ in sys.stdin:
            counts = {"alerts": count_alerts(api), "too_many_requests": api.too_many_requests}
            print(json.dumps(counts), flush=True)


class Server:
    """The fake Bot API server in a process of its own, as Telegram is: the bot under
    test (and bare PTB) then have this process's CPU to themselves."""

    def __init__(self, process: asyncio.subprocess.Process, base_url: str) -> None:
        self.process = process
        self.base_url = base_url

    @classmethod
    async def start(cls, *, enforce_limits: bool) -> Server:
        """Start the server process and wait for its URL."""
        args = ["--serve"] + (["--enforce-limits"] if enforce_limits else [])
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "benchmarks.delivery",
            *args,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
        )
        assert process.stdout is not None
        line = await asyncio.wait_for(process.stdout.readline(), 30)
        return cls(process, line.decode().strip())

    async def counts(self) -> dict[str, int]:
        """Alerts accepted and 429 answers so far."""
        assert self.process.stdin is not None
        assert self.process.stdout is not None
        self.process.stdin.write(b"?\n")
        await self.process.stdin.drain()
        counts: dict[str, int] = json.loads(await self.process.stdout.readline())
        return counts

    async def wait_sent(self, wanted: int, limit: float) -> float:
        """Wait until `wanted` alerts were accepted; the monotonic time then."""
        deadline = time.monotonic() + limit
        while (await self.counts())["alerts"] < wanted:
            if time.monotonic() > deadline:
                raise TimeoutError(f"not all {wanted} alerts were sent in {limit:.0f} s")
            await asyncio.sleep(0.05)
        return time.monotonic()

    async def stop(self) -> None:
        """Close stdin: the server stops."""
        assert self.process.stdin is not None
        self.process.stdin.close()
        await asyncio.wait_for(self.process.wait(), 30)


async def all_recorded(db_path: Path, wanted: int) -> int:
    """How many alerts the database holds as sent once the delivery recorded them."""
    store = await Store.open(db_path)
    try:
        for _ in range(200):
            stats = await store.stats()
            if stats["alerts_sent"] >= wanted:
                break
            await asyncio.sleep(0.05)
        return int(stats["alerts_sent"])
    finally:
        await store.close()


async def run_delivery(folder: Path, alerts: int, chats: int, *, limits: bool) -> dict[str, Any]:
    """Queue `alerts` alerts over `chats` chats, start the bot, time until all are sent."""
    db_path = folder / f"delivery-{'limits' if limits else 'free'}-{time.monotonic_ns()}.db"
    await prepare(db_path, chats)
    per_chat = alerts // chats
    server = await Server.start(enforce_limits=limits)
    try:
        settings = Settings(token=Secret(TOKEN), api_base_url=server.base_url, db_path=db_path)
        app = build_application(settings, rate_limits=limits)
        config = DeliveryConfig() if limits else DeliveryConfig(limits=None)
        app.bot_data.extras[DELIVERY_CONFIG] = config
        async with running(app):
            store = app.bot_data.store
            assert store is not None
            # Stored in the bot's process: the delivery wakes at once, as after an import.
            started = time.monotonic()
            await store.add_articles(stories(per_chat))
            queued_s = time.monotonic() - started
            finished = await server.wait_sent(per_chat * chats, limit=alerts / 25 + 120)
            too_many = (await server.counts())["too_many_requests"]
        recorded = await all_recorded(db_path, per_chat * chats)
    finally:
        await server.stop()
    total = finished - started
    return {
        "alerts": per_chat * chats,
        "chats": chats,
        "seconds": total,
        "queue_seconds": queued_s,
        "messages_per_s": per_chat * chats / total,
        "too_many_requests": too_many,
        "recorded_sent": recorded,
    }


async def run_bare(alerts: int, concurrency: int) -> dict[str, Any]:
    """Bare PTB: `alerts` send_message calls as concurrent tasks (at most `concurrency`
    at once, over a pool of as many connections) to a fresh fake server."""
    markup = InlineKeyboardMarkup(
        [
            [
                InlineKeyboardButton("Summary", callback_data="summary:1"),
                InlineKeyboardButton("Full text", callback_data="full:1"),
            ]
        ]
    )
    text = (
        "🔔 harbour\n<b>Harbour authority publishes report number 1 on the new quay</b>\n\n"
        "Report 1 covers the quay, dredging and costs.\n\n/read_1"
    )
    server = await Server.start(enforce_limits=False)
    try:
        bot = Bot(
            TOKEN,
            base_url=server.base_url,
            request=HTTPXRequest(connection_pool_size=concurrency),
        )
        async with bot:
            gate = asyncio.Semaphore(concurrency)

            async def send(n: int) -> None:
                async with gate:
                    await bot.send_message(
                        100_000 + n % 1000, text, parse_mode="HTML", reply_markup=markup
                    )

            started = time.monotonic()
            await asyncio.gather(*(send(n) for n in range(alerts)))
            total = time.monotonic() - started
        assert (await server.counts())["alerts"] == alerts
    finally:
        await server.stop()
    return {"concurrency": concurrency, "seconds": total, "messages_per_s": alerts / total}


async def measure(alerts: int, chats: int, rounds: int) -> dict[str, Any]:
    """Both parts; (b) runs in rounds, ours between bare PTB at each concurrency level, so
    that load from elsewhere on the machine hits both alike."""
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        limited = await run_delivery(folder, alerts, chats, limits=True)
        ours: list[dict[str, Any]] = []
        bare: list[dict[str, Any]] = []
        ratios: list[float] = []
        for _ in range(rounds):
            low, *high = BARE_CONCURRENCY
            this_round = [await run_bare(alerts, low)]
            ours.append(await run_delivery(folder, alerts, chats, limits=False))
            this_round += [await run_bare(alerts, c) for c in high]
            bare += this_round
            best = max(r["messages_per_s"] for r in this_round)
            ratios.append(ours[-1]["messages_per_s"] / best)
    best_ours = max(ours, key=lambda r: r["messages_per_s"])
    best_bare = max(bare, key=lambda r: r["messages_per_s"])
    return {
        "limited": limited,
        "ideal_seconds": limited["alerts"] / 30,
        "limited_ratio": limited["seconds"] / (limited["alerts"] / 30),
        "unlimited_ours": ours,
        "unlimited_bare": bare,
        "best_ours": best_ours,
        "best_bare": best_bare,
        "round_ratios": ratios,
        "median_round_ratio": statistics.median(ratios),
        "throughput_ratio": best_ours["messages_per_s"] / best_bare["messages_per_s"],
    }


def main() -> None:
    """Run the benchmark, print the table and write benchmarks/results/delivery.json."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--alerts", type=int, default=10_000)
    parser.add_argument("--chats", type=int, default=1_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="1,000 alerts, 3 rounds")
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--enforce-limits", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.enforce_limits)
        return
    if args.quick:
        args.alerts, args.rounds = 1_000, 3
    logging.basicConfig(level=logging.ERROR)
    result = asyncio.run(measure(args.alerts, min(args.chats, args.alerts), args.rounds))
    limited = result["limited"]
    ours, bare = result["best_ours"], result["best_bare"]
    rows = [
        [
            f"(a) {limited['alerts']:,} alerts, limits enforced: seconds",
            f"{limited['seconds']:.1f}",
            f"<= {result['ideal_seconds'] * 1.05:.1f} (N/30 s + 5%)",
            f"{result['limited_ratio']:.3f}x N/30 s",
        ],
        ["(a) 429 answers", limited["too_many_requests"], "0", ""],
        [
            "(b) limits off: our delivery, messages/s (best round)",
            ours["messages_per_s"],
            ">= 0.8x bare",
            f"{result['throughput_ratio']:.2f}x bare (best vs best)",
        ],
        [
            "(b) ours / bare PTB, median of rounds",
            f"{result['median_round_ratio']:.2f}",
            ">= 0.8",
            ", ".join(f"{r:.2f}" for r in result["round_ratios"]),
        ],
        [
            f"(b) bare PTB send_message, {bare['concurrency']} concurrent tasks, messages/s",
            bare["messages_per_s"],
            "baseline",
            "",
        ],
    ]
    print_table(["measure", "value", "target", "ratio"], rows)
    result["quick"] = args.quick
    print(f"wrote {write_json('delivery', result)}")


if __name__ == "__main__":
    main()
