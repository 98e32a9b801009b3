"""Core benchmark: `newsbot ingest` of 100,000 distinct stories (the command as a
subprocess, start to exit; benchmarks.ingest times it beside a bare FTS5 insert), then
/search and /latest latency through the real handlers beside the bare FTS5 query on the
same database (the floor).

    .venv/bin/python -m benchmarks.core [--stories 100000] [--quick] [--shared PATH]

Targets (issue 2): ingest >= 2,000 stories/s; /search p95 <= 2x the bare FTS5 query.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from telegram import Update

from benchmarks.archive import build_archive
from benchmarks.common import (
    command_update,
    print_table,
    run_measured,
    shared_dir,
    subprocess_env,
    summary_ms,
    write_json,
)
from bot.app import running
from bot.config import Settings
from bot.console import build_console_application
from news.query import parse_query
from storage import Store

QUERIES = [
    "election",
    "economy growth",
    '"prime minister"',
    "football OR rugby",
    "police -court",
    "oil prices",
    "film award",
    "mobile phone",
    "category:tech broadband",
    "climate change",
    "president obama",
    "world cup",
    "bank interest rates",
    "music",
    "government plans",
]


def ingest_command(db_path: Path, archive: Path, tmp: Path) -> dict[str, Any]:
    """Import the archive with the `newsbot ingest` command, timed start to exit."""
    result = run_measured(
        [sys.executable, "-m", "bot", "ingest", "--no-progress", str(archive)],
        subprocess_env(db_path),
        tmp,
    )
    return {"seconds": result["seconds"], "output": result["stdout"].strip().splitlines()[-3:]}


async def measure(db_path: Path, ingested: dict[str, Any], rounds: int) -> dict[str, Any]:
    """Time the handlers and the bare queries on the imported database."""
    store = await Store.open(db_path)
    stories = await store.count_stories()
    rng = random.Random(7)
    bare: list[float] = []
    for _ in range(rounds):
        for text in QUERIES:
            fts = parse_query(text).fts()
            if fts is None:
                continue
            t0 = time.perf_counter()
            await store.bare_search(fts, 6)
            bare.append(time.perf_counter() - t0)
    await store.close()

    app, _ = build_console_application(Settings(db_path=db_path), write=lambda _text: None)
    search_s: list[float] = []
    latest_s: list[float] = []
    ids = itertools.count(1)
    async with running(app, polling=False):
        for _ in range(rounds):
            for text in QUERIES:
                update = Update.de_json(command_update(next(ids), 1, f"/search {text}"), app.bot)
                t0 = time.perf_counter()
                await app.process_update(update)
                search_s.append(time.perf_counter() - t0)
                count = rng.choice([5, 10, 20])
                update = Update.de_json(command_update(next(ids), 1, f"/latest {count}"), app.bot)
                t0 = time.perf_counter()
                await app.process_update(update)
                latest_s.append(time.perf_counter() - t0)
    return {
        "stories": stories,
        "ingest": {
            "command": "newsbot ingest ARCHIVE (subprocess, start to exit)",
            "seconds": ingested["seconds"],
            "stories_per_s": stories / ingested["seconds"],
            "output": ingested["output"],
        },
        "search_handler": summary_ms(search_s),
        "latest_handler": summary_ms(latest_s),
        "bare_fts5": summary_ms(bare),
    }


def main() -> None:
    """Run the benchmark, print the table and write benchmarks/results/core.json."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stories", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--quick", action="store_true", help="10,000 stories, 5 rounds")
    parser.add_argument("--shared", help="path of the shared/ folder")
    args = parser.parse_args()
    if args.quick:
        args.stories, args.rounds = 10_000, 5
    corpus = shared_dir(args.shared) / "corpus"
    with tempfile.TemporaryDirectory() as tmp:
        archive = Path(tmp) / "archive.jsonl"
        build_archive(corpus, args.stories, archive)
        db_path = Path(tmp) / "bench.db"
        ingested = ingest_command(db_path, archive, Path(tmp))
        result = asyncio.run(measure(db_path, ingested, args.rounds))
    ingest_rate = result["ingest"]["stories_per_s"]
    floor = result["bare_fts5"]
    rows = [
        [
            "`newsbot ingest` (stories/s, whole command)",
            ingest_rate,
            ">= 2,000",
            f"{ingest_rate / 2000:.2f}x target",
        ],
        [
            "/search p50 / p95 ms",
            f"{result['search_handler']['p50_ms']:.2f} / {result['search_handler']['p95_ms']:.2f}",
            "p95 <= 2x bare",
            f"{result['search_handler']['p95_ms'] / floor['p95_ms']:.2f}x bare p95",
        ],
        [
            "/latest p50 / p95 ms",
            f"{result['latest_handler']['p50_ms']:.2f} / {result['latest_handler']['p95_ms']:.2f}",
            "",
            "",
        ],
        ["bare FTS5 p50 / p95 ms", f"{floor['p50_ms']:.2f} / {floor['p95_ms']:.2f}", "floor", ""],
    ]
    print(f"{result['stories']:,} stories in the database")
    print_table(["measure", "value", "target", "ratio"], rows)
    result["search_p95_over_bare_p95"] = result["search_handler"]["p95_ms"] / floor["p95_ms"]
    print(f"wrote {write_json('core', result)}")


if __name__ == "__main__":
    main()
