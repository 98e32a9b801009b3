"""Stall benchmark: does one chat reading a very long story keep other chats waiting?

    .venv/bin/python -m benchmarks.stall [--quick] [--parts N] [--samples N]

The real Application (build_application, as `newsbot run` builds it: its update processor
and rate limiter) long-polls the fake Bot API server on 127.0.0.1, which enforces
Telegram's flood limits (1 message a second per chat, 20 a minute per group, 30 a second
overall, 429 with retry_after beyond them). Each sample is a `/start` from a new private
chat, timed from the moment the update is queued on the server to the moment the server
receives the bot's reply.

1. idle: `/start` samples with nothing else going on (the floor);
2. loaded: one reader asks for every part of a story of N messages (100; --quick 20) at
   once (`/full ID`, `/full_ID_2`, ...) and taps Full text ten times, then `/start`
   samples run while that reader's messages flow at its one-a-second limit.

Target: loaded p95 <= 1.5x idle p95, no 429, the reader's messages all arrive, in order.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import re
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.common import print_table, summary_ms, write_json
from bot.app import build_application, running
from bot.config import Secret, Settings
from handlers.stories import FULL_MESSAGES
from news.articles import Article
from storage import Store
from tests.fakes.botapi import FakeBotAPI

TOKEN = "123456:BENCH-token"
READER = 900_001
FIRST_SAMPLE_CHAT = 910_000
TARGET_RATIO = 1.5


def long_story(messages: int) -> Article:
    """A story whose full text takes about `messages` messages: distinct paragraphs of
    about 950 characters, three to a message."""
    paragraphs = tuple(
        f"Paragraph {n} of the inquiry report. "
        + " ".join(f"finding{n}-{i} was recorded by the panel" for i in range(24))
        for n in range(messages * 3)
    )
    return Article(title="The harbour inquiry: the full report", body=paragraphs)


async def sample(api: FakeBotAPI, chat_id: int) -> float:
    """One `/start` from a new chat: seconds from queuing the update to the reply."""
    queued = time.time()
    api.message("/start", chat_id)
    [reply] = await api.wait_for_messages(1, chat_id=chat_id, timeout=60)
    return reply.time - queued


async def run(parts: int, samples: int) -> dict[str, Any]:
    """Both phases against one database and one fake server; the results."""
    with tempfile.TemporaryDirectory() as folder, FakeBotAPI(enforce_limits=True) as api:
        db_path = Path(folder) / "stall.db"
        store = await Store.open(db_path)
        [added] = await store.add_articles([long_story(parts)])
        await store.close()
        assert added.story_id is not None
        story_id = added.story_id
        settings = Settings(
            token=Secret(TOKEN), api_base_url=api.base_url, db_path=db_path, poll_seconds=60
        )
        app = build_application(settings)
        chat_ids = iter(range(FIRST_SAMPLE_CHAT, FIRST_SAMPLE_CHAT + 10 * samples))
        async with running(app):
            for _ in range(3):  # warm-up: connections, the store's caches
                await sample(api, next(chat_ids))
            idle = [await sample(api, next(chat_ids)) for _ in range(samples)]

            started = time.monotonic()
            api.message(f"/full {story_id}", READER)
            [first] = await api.wait_for_messages(1, chat_id=READER, timeout=60)
            total = int(re.match(r"\((\d+)/(\d+)\)", first.plain_text).group(2))  # type: ignore[union-attr]
            batches = -(-total // FULL_MESSAGES)
            for part in range(2, batches + 1):
                api.message(f"/full_{story_id}_{part}", READER)
            for _ in range(10):
                api.callback_query(f"full:{story_id}", READER, message_id=first.message_id or 1)
            loaded: list[float] = []
            while len(loaded) < samples and len(api.sent_messages(READER)) < total:
                loaded.append(await sample(api, next(chat_ids)))
                await asyncio.sleep(0.4)
            sent = await api.wait_for_messages(total, chat_id=READER, timeout=total * 3 + 60)
            reading_s = time.monotonic() - started
        numbers = [int(re.match(r"\((\d+)/", m.plain_text).group(1)) for m in sent]  # type: ignore[union-attr]
        return {
            "story_messages": total,
            "reader_messages": len(sent),
            "reader_in_order": numbers == list(range(1, total + 1)),
            "reader_seconds": reading_s,
            "reader_messages_per_s": len(sent) / reading_s,
            "too_many_requests": api.too_many_requests,
            "idle": summary_ms(idle),
            "loaded": summary_ms(loaded),
            "samples": {"idle": len(idle), "loaded": len(loaded)},
        }


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark, print its table, write benchmarks/results/stall.json."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a 20-message story")
    parser.add_argument("--parts", type=int, help="messages of the long story (100)")
    parser.add_argument("--samples", type=int, default=40, help="/start samples per phase")
    args = parser.parse_args(argv)
    parts = args.parts or (20 if args.quick else 100)
    logging.basicConfig(level=logging.WARNING)
    result = asyncio.run(run(parts, args.samples))
    idle, loaded = result["idle"], result["loaded"]
    ratio = loaded["p95_ms"] / idle["p95_ms"]
    result.update(
        {
            "command": "/start through the real Application and the fake Bot API server",
            "floor": "idle /start p95, same run",
            "p95_ratio": ratio,
            "target_ratio": TARGET_RATIO,
            "python": sys.version.split()[0],
        }
    )
    print_table(
        ["measure", "value", "target", "ratio"],
        [
            [
                "/start idle p50 / p95 ms",
                f"{idle['p50_ms']:.1f} / {idle['p95_ms']:.1f}",
                "floor",
                "",
            ],
            [
                f"/start while a {result['story_messages']}-message story is read, p50 / p95 ms",
                f"{loaded['p50_ms']:.1f} / {loaded['p95_ms']:.1f}",
                f"p95 <= {TARGET_RATIO}x idle",
                f"{ratio:.2f}x idle p95",
            ],
            [
                "reader's messages (in order) / msg per s",
                f"{result['reader_messages']} ({'yes' if result['reader_in_order'] else 'NO'})"
                f" / {result['reader_messages_per_s']:.2f}",
                "all, <= 1/s",
                "",
            ],
            ["429 answers", result["too_many_requests"], "0", ""],
        ],
    )
    path = write_json("stall", result)
    print(f"\nwritten {path}")
    ok = ratio <= TARGET_RATIO and result["too_many_requests"] == 0 and result["reader_in_order"]
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
