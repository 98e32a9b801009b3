"""`newsbot ingest` as users run it, beside a bare FTS5 insert of the same rows.

    .venv/bin/python -m benchmarks.ingest [--stories 100000] [--repeat 1] [--quick]

Times the `newsbot ingest ARCHIVE` command as a subprocess, start to exit (parsing,
dedup, near-duplicates, alert matching, the related-stories fit and embedding: all of
it), on an archive of distinct stories (`benchmarks.archive`), into a fresh database;
beside it, in the same run, the floor: a subprocess that reads the same archive with
`json.loads` and inserts title and text into a bare FTS5 table (our tokenizer, batches of
1,000 rows, one transaction each). The floor runs before and after each command run and
the faster of the two counts. Peak RSS of the command (its process tree, sampled every
50 ms) is reported, and the RSS of `newsbot run` on the resulting database after it has
answered /related (its related-stories index loaded), against the fake Bot API server.

Targets (issue 9): command <= 3x the bare FTS5 insert; bot RSS <= 200 MB.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sqlite3
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.archive import build_archive
from benchmarks.common import (
    print_table,
    run_measured,
    shared_dir,
    status_kb,
    subprocess_env,
    write_json,
)
from news.text import FTS_TOKENIZE
from tests.fakes.botapi import FakeBotAPI

BOT_TOKEN = "123456:BENCH-token"


def bare_fts5_insert(archive: Path, db: Path) -> int:
    """The floor: the archive's titles and texts into a bare FTS5 table."""
    con = sqlite3.connect(db)
    con.execute("PRAGMA journal_mode=WAL")
    con.execute(f"CREATE VIRTUAL TABLE f USING fts5(title, body, tokenize='{FTS_TOKENIZE}')")
    rows: list[tuple[str, str]] = []
    count = 0
    with archive.open(encoding="utf-8") as fh:
        for line in fh:
            record = json.loads(line)
            rows.append((record["title"], record["text"]))
            if len(rows) == 1000:
                with con:
                    con.executemany("INSERT INTO f (title, body) VALUES (?, ?)", rows)
                count += len(rows)
                rows = []
    with con:
        con.executemany("INSERT INTO f (title, body) VALUES (?, ?)", rows)
    count += len(rows)
    con.close()
    return count


def _floor(archive: Path, tmp: Path, n: int) -> dict[str, Any]:
    db = tmp / f"floor-{n}.db"
    result = run_measured(
        [sys.executable, "-m", "benchmarks.ingest", "--floor", str(archive), str(db)],
        subprocess_env(db),
        tmp,
    )
    for path in tmp.glob(f"floor-{n}.db*"):
        path.unlink()
    return result


async def bot_rss(db: Path, tmp: Path, story_ids: list[int]) -> dict[str, Any]:
    """RSS of `newsbot run` on `db` once it has answered /related for `story_ids`."""
    with FakeBotAPI() as api:
        env = subprocess_env(db, TELEGRAM_BOT_TOKEN=BOT_TOKEN, TELEGRAM_API_BASE_URL=api.base_url)
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bot",
            "run",
            env=env,
            cwd=tmp,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
        )
        try:
            await api.wait_for_async("getUpdates", timeout=60)
            rss_started = status_kb(process.pid, "VmRSS") / 1024
            first_s = 0.0
            first = time.perf_counter()
            for n, story_id in enumerate(story_ids, 1):
                api.message(f"/related {story_id}", 777)
                await api.wait_for_messages(n, chat_id=777, timeout=120)
                if n == 1:
                    first_s = time.perf_counter() - first
            rss = status_kb(process.pid, "VmRSS") / 1024
            hwm = status_kb(process.pid, "VmHWM") / 1024
            text = api.sent_messages(777)[-1].plain_text
        finally:
            process.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(process.wait(), 30)
            except TimeoutError:
                process.kill()
                await process.wait()
    return {
        "rss_mb_started": round(rss_started, 1),
        "rss_mb_after_related": round(rss, 1),
        "peak_rss_mb": round(hwm, 1),
        "first_related_s": round(first_s, 2),
        "related_listed": text.count("/read_"),
    }


def _other(archive: Path, tmp: Path, checkout: Path) -> dict[str, Any]:
    db = tmp / "other.db"
    result = run_measured(
        [sys.executable, "-m", "bot", "ingest", "--no-progress", str(archive)],
        subprocess_env(db, checkout),
        tmp,
    )
    for path in tmp.glob("other.db*"):
        path.unlink()
    return result


def measure(archive: Path, tmp: Path, repeat: int, compare: Path | None = None) -> dict[str, Any]:
    """Floor, command, floor — `repeat` times; then the bot's RSS on the last database.
    With `compare`, the command of that checkout (e.g. the previous release) runs too."""
    runs: list[dict[str, Any]] = []
    db = tmp / "bench.db"
    for n in range(repeat):
        if compare is not None:
            other = _other(archive, tmp, compare)
            print(f"run {n + 1}: {compare}: newsbot ingest {other['seconds']:.1f} s", flush=True)
        before = _floor(archive, tmp, 2 * n)
        for path in tmp.glob("bench.db*"):
            path.unlink()
        command = run_measured(
            [sys.executable, "-m", "bot", "ingest", "--no-progress", str(archive)],
            subprocess_env(db),
            tmp,
        )
        after = _floor(archive, tmp, 2 * n + 1)
        floor_s = min(before["seconds"], after["seconds"])
        if compare is not None:
            runs.append(
                {
                    "checkout": str(compare),
                    "command_s": other["seconds"],
                    "ratio": other["seconds"] / floor_s,
                    "peak_rss_tree_mb": other["peak_rss_tree_mb"],
                    "peak_rss_main_mb": other["peak_rss_main_mb"],
                    "output": other["stdout"].strip().splitlines()[-3:],
                }
            )
        runs.append(
            {
                "checkout": "this one",
                "command_s": command["seconds"],
                "floor_s": floor_s,
                "floor_runs_s": [before["seconds"], after["seconds"]],
                "ratio": command["seconds"] / floor_s,
                "peak_rss_tree_mb": command["peak_rss_tree_mb"],
                "peak_rss_main_mb": command["peak_rss_main_mb"],
                "output": command["stdout"].strip().splitlines()[-3:],
            }
        )
        print(
            f"run {n + 1}: newsbot ingest {command['seconds']:.1f} s, bare FTS5 insert "
            f"{floor_s:.1f} s, ratio {command['seconds'] / floor_s:.2f}",
            flush=True,
        )
    con = sqlite3.connect(db)
    stories = int(con.execute("SELECT count(*) FROM stories").fetchone()[0])
    vectors = int(con.execute("SELECT count(*) FROM story_vectors").fetchone()[0])
    ids = [int(r[0]) for r in con.execute("SELECT id FROM stories ORDER BY random() LIMIT 20")]
    con.close()
    bot = asyncio.run(bot_rss(db, tmp, ids))
    best = min((r for r in runs if r["checkout"] == "this one"), key=lambda r: r["ratio"])
    return {
        "stories_in_archive": sum(1 for _ in archive.open(encoding="utf-8")),
        "archive_mb": round(archive.stat().st_size / 2**20, 1),
        "stories_stored": stories,
        "vectors_stored": vectors,
        "runs": runs,
        "best": best,
        "bot": bot,
    }


def main() -> None:
    """Run the benchmark, print the table, write benchmarks/results/ingest.json."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stories", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--quick", action="store_true", help="10,000 stories")
    parser.add_argument("--shared", help="path of the shared/ folder")
    parser.add_argument(
        "--compare", type=Path, metavar="CHECKOUT", help="also time this checkout's command"
    )
    parser.add_argument(
        "--archive", type=Path, help="an archive made by benchmarks.archive (else made here)"
    )
    parser.add_argument("--floor", nargs=2, metavar=("ARCHIVE", "DB"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.floor:
        bare_fts5_insert(Path(args.floor[0]), Path(args.floor[1]))
        return
    if args.quick:
        args.stories = 10_000
    corpus = shared_dir(args.shared) / "corpus"
    with tempfile.TemporaryDirectory(prefix="newsbot-bench-") as folder:
        tmp = Path(folder)
        archive = args.archive or tmp / "archive.jsonl"
        if args.archive is None:
            build_archive(corpus, args.stories, archive)
        result = measure(archive, tmp, args.repeat, args.compare)
    best, bot = result["best"], result["bot"]
    print(
        f"{result['stories_in_archive']:,} distinct stories ({result['archive_mb']} MB); "
        f"{result['stories_stored']:,} stored, {result['vectors_stored']:,} with vectors"
    )
    others = [r for r in result["runs"] if r["checkout"] != "this one"]
    compared = [
        [f"{r['checkout']}: the same command (s)", r["command_s"], "", f"{r['ratio']:.2f}x floor"]
        for r in others[-1:]
    ]
    print_table(
        ["measure", "value", "target", "ratio"],
        [
            *compared,
            [
                "`newsbot ingest ARCHIVE`, start to exit (s)",
                best["command_s"],
                "<= 3x floor",
                f"{best['ratio']:.2f}x floor",
            ],
            ["floor: bare FTS5 insert of the same rows (s)", best["floor_s"], "floor", ""],
            ["command peak RSS, process tree (MB)", best["peak_rss_tree_mb"], "", ""],
            ["command peak RSS, main process (MB)", best["peak_rss_main_mb"], "", ""],
            [
                "`newsbot run` RSS after /related (MB)",
                bot["rss_mb_after_related"],
                "<= 200",
                f"{bot['rss_mb_after_related'] / 200:.2f}x target",
            ],
        ],
    )
    print(f"wrote {write_json('ingest', result)}")


if __name__ == "__main__":
    main()
