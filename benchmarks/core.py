"""Core benchmark: ingest throughput at 100,000 stories, and /search and /latest latency
through the real handlers beside the bare FTS5 query on the same database (the floor).

    .venv/bin/python -m benchmarks.core [--stories 100000] [--quick] [--shared PATH]

Targets (issue 2): ingest >= 2,000 stories/s; /search p95 <= 2x the bare FTS5 query.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import random
import tempfile
import time
from pathlib import Path
from typing import Any

from telegram import Update

from benchmarks.common import print_table, shared_dir, summary_ms, write_json
from bot.app import running
from bot.config import Settings
from bot.console import build_console_application
from bot.ingest import ingest
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


def _variant(text: str, copy: int, vocabulary: list[str]) -> str:
    """The text with every fifth word (a different fifth for each copy) swapped for a
    corpus word: a new story to the near-duplicate check, realistic words to FTS5."""
    out = []
    for paragraph in text.split("\n\n"):
        tokens = paragraph.split(" ")
        for i in range((copy * 7) % 5, len(tokens), 5):
            tokens[i] = vocabulary[(copy * 7919 + i * 104729) % len(vocabulary)]
        out.append(" ".join(tokens))
    return "\n\n".join(out)


def build_archive(corpus: Path, target: int, out: Path) -> int:
    """Write a JSON Lines archive of `target` stories: the corpus, then copies of it whose
    title, id, URL and a fifth of their words differ, so that every copy is a new story."""
    records = [
        json.loads(line)
        for name in ("bbc_news_summary.jsonl", "cnndm_validation_sample.jsonl")
        for line in (corpus / name).read_text(encoding="utf-8").splitlines()
        if line.strip()
    ]
    vocabulary = sorted({w for r in records[:400] for w in r["text"].split() if w.isalpha()})
    written = 0
    with out.open("w", encoding="utf-8") as handle:
        for copy in itertools.count():
            for record in records:
                if written == target:
                    return written
                if copy:
                    record = {
                        **record,
                        "id": f"{record['id']}-{copy}",
                        "title": f"{record['title']} ({copy})",
                        "text": _variant(record["text"], copy, vocabulary),
                        "url": f"{record['url']}?copy={copy}" if record.get("url") else None,
                    }
                handle.write(json.dumps(record, ensure_ascii=False) + "\n")
                written += 1
    return written


def _update(update_id: int, text: str) -> dict[str, Any]:
    return {
        "update_id": update_id,
        "message": {
            "message_id": update_id,
            "date": int(time.time()),
            "chat": {"id": 1, "type": "private"},
            "from": {"id": 1, "is_bot": False, "first_name": "Reader"},
            "text": text,
            "entities": [{"type": "bot_command", "offset": 0, "length": len(text.split()[0])}],
        },
    }


async def measure(db_path: Path, archive: Path, rounds: int) -> dict[str, Any]:
    """Ingest the archive, then time the handlers and the bare queries."""
    store = await Store.open(db_path)
    started = time.perf_counter()
    [report] = await ingest(store, [str(archive)], progress=False)
    ingest_s = time.perf_counter() - started
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
                update = Update.de_json(_update(next(ids), f"/search {text}"), app.bot)
                t0 = time.perf_counter()
                await app.process_update(update)
                search_s.append(time.perf_counter() - t0)
                count = rng.choice([5, 10, 20])
                update = Update.de_json(_update(next(ids), f"/latest {count}"), app.bot)
                t0 = time.perf_counter()
                await app.process_update(update)
                latest_s.append(time.perf_counter() - t0)
    return {
        "stories": stories,
        "ingest": {
            "seconds": ingest_s,
            "stories_per_s": report.new / ingest_s,
            "new": report.new,
            "duplicate": report.duplicate,
            "failed": report.failed,
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
        result = asyncio.run(measure(Path(tmp) / "bench.db", archive, args.rounds))
    ingest_rate = result["ingest"]["stories_per_s"]
    floor = result["bare_fts5"]
    rows = [
        ["ingest (stories/s)", ingest_rate, ">= 2,000", f"{ingest_rate / 2000:.2f}x target"],
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
