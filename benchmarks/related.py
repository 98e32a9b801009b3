"""Related stories as readers get them: `/related ID` through the real Application.

    .venv/bin/python -m benchmarks.related [--quick] [--shared PATH]

The BBC archive of the shared corpus (`bbc_news_summary.jsonl`, read in place) is imported
with the `newsbot ingest` command (a subprocess, as an operator runs it: its repeats are
refused as near-duplicates and the related-stories model is fitted). Then the Application
built by `build_application` (post_init and its jobs included) answers `/related ID` for
every stored story and `/start` beside each one: updates fed to `app.process_update`, the
replies sent over HTTP to the fake Bot API server the tests use. Precision@5 is read from
the reply text — the share of the listed similar stories (`/read_ID` after "Similar
stories", 5 expected) in the story's own category, a missing one counting as a miss — and
latency is update in, reply accepted by the server. The same runs again after the model
is dropped (`Store.forget_related_model`): the FTS5 "more like this" that stands in
before a model exists, which is what readers got before issue 9.

Targets (issue 9): P@5 >= 0.95; /related p95 <= 1.5x /start p95 (same transport).
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from telegram import Update

from benchmarks.common import (
    command_update,
    print_table,
    shared_dir,
    subprocess_env,
    summary_ms,
    write_json,
)
from bot.app import build_application, running
from bot.config import Secret, Settings
from storage import Store
from tests.fakes.botapi import FakeBotAPI

_READ = re.compile(r"/read_(\d+)")
CHAT = 4711


def listed_similar(text: str) -> list[int]:
    """The story ids a /related reply lists under "Similar stories"."""
    if "Similar stories" not in text:
        return []
    return [int(i) for i in _READ.findall(text.split("Similar stories", 1)[1])]


async def ask_all(
    db: Path, api: FakeBotAPI, ids: list[int], categories: dict[int, str | None]
) -> dict[str, Any]:
    """/related for every id and /start beside each, through one Application."""
    settings = Settings(token=Secret("123456:BENCH-token"), api_base_url=api.base_url, db_path=db)
    app = build_application(settings)
    related_s: list[float] = []
    start_s: list[float] = []
    precision: list[float] = []
    short = 0
    update_ids = itertools.count(1)
    async with running(app, polling=False):
        for story_id in ids:
            for text in (f"/related {story_id}", "/start"):
                update = Update.de_json(command_update(next(update_ids), CHAT, text), app.bot)
                t0 = time.perf_counter()
                await app.process_update(update)
                elapsed = time.perf_counter() - t0
                if text == "/start":
                    start_s.append(elapsed)
                    continue
                related_s.append(elapsed)
                reply = api.calls("sendMessage")[-1].params["text"]
                listed = listed_similar(reply)[:5]
                short += len(listed) < 5
                same = sum(categories.get(i) == categories[story_id] for i in listed)
                precision.append(same / 5)
    api.clear()
    return {
        "queries": len(ids),
        "precision_at_5": round(sum(precision) / len(precision), 4),
        "replies_with_fewer_than_5": short,
        "related": summary_ms(related_s),
        "start": summary_ms(start_s),
        "related_p95_over_start_p95": summary_ms(related_s)["p95_ms"]
        / summary_ms(start_s)["p95_ms"],
    }


async def measure(db: Path, limit: int | None) -> dict[str, Any]:
    """Both runs: with the fitted model, then with the FTS5 stand-in."""
    store = await Store.open(db)
    try:
        ids = await store.story_ids()
        heads = await store.heads(ids)
    finally:
        await store.close()
    categories = {i: h.category for i, h in heads.items()}
    ids = ids[:limit] if limit else ids
    with FakeBotAPI() as api:
        index = await ask_all(db, api, ids, categories)
        store = await Store.open(db)
        try:
            await store.forget_related_model()
        finally:
            await store.close()
        fts = await ask_all(db, api, ids, categories)
    return {"stories": len(heads), "index": index, "fts5_fallback": fts}


def main() -> None:
    """Run the benchmark, print the table, write benchmarks/results/related.json."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="the first 300 stories only")
    parser.add_argument("--shared", help="path of the shared/ folder")
    args = parser.parse_args()
    archive = shared_dir(args.shared) / "corpus" / "bbc_news_summary.jsonl"
    with tempfile.TemporaryDirectory(prefix="newsbot-bench-") as folder:
        tmp = Path(folder)
        db = tmp / "bbc.db"
        done = subprocess.run(
            [sys.executable, "-m", "bot", "ingest", "--no-progress", str(archive)],
            env=subprocess_env(db),
            cwd=tmp,
            capture_output=True,
            text=True,
            check=True,
        )
        result = asyncio.run(measure(db, 300 if args.quick else None))
    result["ingest_output"] = done.stdout.strip().splitlines()
    index, fts = result["index"], result["fts5_fallback"]
    print(f"{result['stories']:,} BBC stories stored; {index['queries']:,} /related queries")
    rows = []
    for name, r in (("index (LSA), model fitted", index), ("FTS5 stand-in, no model", fts)):
        rows.append(
            [
                f"/related: {name}",
                f"{r['precision_at_5']:.4f}",
                f"{r['related']['p50_ms']:.2f} / {r['related']['p95_ms']:.2f}",
                f"{r['start']['p50_ms']:.2f} / {r['start']['p95_ms']:.2f}",
                f"{r['related_p95_over_start_p95']:.2f}x",
            ]
        )
    print_table(
        ["measure", "P@5 (>= 0.95)", "p50 / p95 ms", "/start p50 / p95 ms", "p95 / /start p95"],
        rows,
    )
    print(f"wrote {write_json('related', result)}")


if __name__ == "__main__":
    main()
