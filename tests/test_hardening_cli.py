"""Issue 10 against the real `newsbot` process: hostile settings, broken databases, a Bot
API that refuses, cannot be reached or never answers, the token in logs, kill -9."""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.fakes.botapi import FakeBotAPI
from tests.fakes.webserver import WebServer
from tests.test_cli import TOKEN, newsbot, newsbot_env

ONE_LINE = "newsbot: "


def one_line(result: subprocess.CompletedProcess[str]) -> str:
    """The single line a failed command printed on stderr (no traceback around it)."""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(ONE_LINE), result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    return lines[0]


def good_database(tmp_path: Path) -> Path:
    """A real newsbot database with a few stories."""
    folder = tmp_path / "made"
    folder.mkdir()
    result = newsbot(folder, "chat", "-c", "/latest", NEWSBOT_DB=str(folder / "good.db"))
    assert result.returncode == 0, result.stderr
    return folder / "good.db"


# --- settings out of range -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "value", "bounds"),
    [
        ("NEWSBOT_POLL_SECONDS", "99999999999999999999999", "from 10 to 86400"),
        ("NEWSBOT_POLL_SECONDS", "9", "from 10 to 86400"),
        ("NEWSBOT_POLL_SECONDS", "86401", "from 10 to 86400"),
        ("NEWSBOT_POLL_SECONDS", "-300", "from 10 to 86400"),
        ("NEWSBOT_POLL_SECONDS", "1" * 5000, "from 10 to 86400"),
        ("NEWSBOT_PORT", "0", "from 1 to 65535"),
        ("NEWSBOT_PORT", "65536", "from 1 to 65535"),
        ("NEWSBOT_ADMIN_IDS", "1,99999999999999999999999", "each from 1 to"),
        ("NEWSBOT_ADMIN_IDS", "-5", "each from 1 to"),
    ],
)
@pytest.mark.parametrize("command", [("feeds", "add", "https://news.example/rss"), ("poll",)])
def test_out_of_range_settings_stop_start_up_in_one_line(
    tmp_path: Path, name: str, value: str, bounds: str, command: tuple[str, ...]
) -> None:
    result = newsbot(tmp_path, *command, **{name: value})
    assert result.returncode == 2
    line = one_line(result)
    assert name in line
    assert bounds in line
    assert len(line) < 200  # a 5000-digit value is not echoed whole
    assert not (tmp_path / "cli.db").exists()  # stopped before anything was opened


def test_settings_at_their_bounds_are_accepted(tmp_path: Path) -> None:
    for seconds in ("10", "86400"):
        added = newsbot(tmp_path, "feeds", "add", f"https://news.example/{seconds}",
                        NEWSBOT_POLL_SECONDS=seconds)  # fmt: skip
        assert added.returncode == 0, added.stderr
    listed = newsbot(tmp_path, "feeds", "list")
    assert "every 10 s" in listed.stdout
    assert "every 24 h" in listed.stdout


@pytest.mark.parametrize("every", ["0", "10081", "99999999999999999999999", "-1"])
def test_feeds_add_every_out_of_range_says_what_to_type(tmp_path: Path, every: str) -> None:
    result = newsbot(tmp_path, "feeds", "add", "https://news.example/rss", "--every", every)
    assert result.returncode == 2
    assert "--every takes minutes, from 1 to 10080" in one_line(result)


def test_webhook_url_must_be_https(tmp_path: Path) -> None:
    result = newsbot(tmp_path, "stats", NEWSBOT_WEBHOOK_URL="http://bot.example/hook")
    assert result.returncode == 2
    line = one_line(result)
    assert "NEWSBOT_WEBHOOK_URL must be an https URL" in line
    assert "https://bot.example.com/telegram" in line  # what to type instead


# --- the database --------------------------------------------------------------------------


def _random_bytes(path: Path) -> None:
    path.write_bytes(random.Random(7).randbytes(64 * 1024))


def _text_file(path: Path) -> None:
    path.write_text("stories: not a database\n" * 100)


@pytest.mark.parametrize(
    ("make", "expected"),
    [
        (lambda p: p.mkdir(), "it is a folder; set NEWSBOT_DB to a file inside it"),
        (_random_bytes, "is not a newsbot database"),
        (_text_file, "is not a newsbot database"),
    ],
    ids=["folder", "random-bytes", "text-file"],
)
@pytest.mark.parametrize("command", [("stats",), ("ingest", "x.txt"), ("feeds", "list")])
def test_unusable_database_path_is_one_line(
    tmp_path: Path, make: object, expected: str, command: tuple[str, ...]
) -> None:
    db = tmp_path / "bad.db"
    make(db)  # type: ignore[operator]
    result = newsbot(tmp_path, *command, NEWSBOT_DB=str(db))
    assert result.returncode == 2
    line = one_line(result)
    assert str(db) in line
    assert expected in line


def test_dev_null_is_not_a_database(tmp_path: Path) -> None:
    result = newsbot(tmp_path, "stats", NEWSBOT_DB=os.devnull)
    assert result.returncode == 2
    assert "/dev/null: it is not a regular file" in one_line(result)


@pytest.mark.parametrize("damage", ["truncated", "bad-header"])
def test_corrupt_database_is_one_line(tmp_path: Path, damage: str) -> None:
    db = good_database(tmp_path)
    data = db.read_bytes()
    if damage == "truncated":
        db.write_bytes(data[: len(data) // 10])
        expected = "is corrupt (database disk image is malformed); restore it from a backup"
    else:
        db.write_bytes(b"Not SQLite here\x00" + data[16:])
        expected = "is not a newsbot database"
    result = newsbot(tmp_path, "stats", NEWSBOT_DB=str(db))
    assert result.returncode == 2
    assert expected in one_line(result)


def test_nul_in_the_database_path_is_refused() -> None:
    from bot.config import ConfigError, Settings

    with pytest.raises(ConfigError, match="NEWSBOT_DB contains a NUL"):
        Settings.load({"NEWSBOT_DB": "news\x00.db"}, env_file=None)


async def test_store_open_refuses_a_nul_path(tmp_path: Path) -> None:
    from storage import Store
    from storage.base import UnusableDatabase

    with pytest.raises(UnusableDatabase, match="NUL character"):
        await Store.open(str(tmp_path / "news\x00.db"))


def test_run_with_an_unusable_database_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "folder.db").mkdir()
    with FakeBotAPI() as api:
        result = newsbot(
            tmp_path,
            "run",
            TELEGRAM_BOT_TOKEN=TOKEN,
            TELEGRAM_API_BASE_URL=api.base_url,
            NEWSBOT_DB=str(tmp_path / "folder.db"),
        )
    assert result.returncode == 2
    assert "it is a folder" in result.stderr.strip().splitlines()[-1]
    assert "Traceback" not in result.stderr


# Read-only folders and full disks, for root too: a private mount namespace (an
# unprivileged user namespace, where the current user is root) mounts a read-only bind or a
# tiny tmpfs that only the command sees.
def _namespaces() -> bool:
    if shutil.which("unshare") is None:
        return False
    probe = subprocess.run(
        ["unshare", "-rm", "sh", "-c", "mount -t tmpfs -o size=64k tmpfs /tmp"],
        capture_output=True,
        check=False,
    )
    return probe.returncode == 0


needs_namespaces = pytest.mark.skipif(
    not _namespaces(), reason="needs unshare -rm (user and mount namespaces) to mount"
)


def newsbot_in(
    tmp_path: Path, setup: str, *args: str, **extra: str
) -> subprocess.CompletedProcess[str]:
    """`newsbot ARGS` after the shell commands `setup` in a private mount namespace."""
    command = " ".join(["exec", sys.executable, "-m", "bot", *(f"'{a}'" for a in args)])
    return subprocess.run(
        ["unshare", "-rm", "sh", "-ec", f"{setup}\n{command}"],
        cwd=tmp_path,
        env=newsbot_env(tmp_path, **extra),
        capture_output=True,
        text=True,
        timeout=300,
    )


@needs_namespaces
def test_read_only_database_folder_is_one_line(tmp_path: Path) -> None:
    db = good_database(tmp_path)
    setup = f"mount --bind {db.parent} {db.parent}; mount -o remount,bind,ro {db.parent}"
    result = newsbot_in(tmp_path, setup, "stats", NEWSBOT_DB=str(db))
    assert result.returncode == 2
    line = one_line(result)
    assert str(db) in line
    assert f"its folder {db.parent} is not writable" in line


@needs_namespaces
def test_read_only_database_file_serves_reads_and_refuses_writes_in_one_line(
    tmp_path: Path,
) -> None:
    db = good_database(tmp_path)
    article = tmp_path / "article.txt"
    article.write_text("A read-only story\n\nIts only paragraph says enough to be stored.\n")
    setup = f"mount --bind {db} {db}; mount -o remount,bind,ro {db}"
    reads = newsbot_in(tmp_path, setup, "chat", "-c", "/latest", NEWSBOT_DB=str(db))
    assert reads.returncode == 0, reads.stderr
    assert "Latest stories" in reads.stdout
    writes = newsbot_in(tmp_path, setup, "ingest", str(article), NEWSBOT_DB=str(db))
    assert writes.returncode == 2
    line = one_line(writes)
    assert f"the database {db} is read-only" in line


def write_archive(path: Path, count: int, *, seed: int = 1, words: int = 120) -> None:
    """A JSON Lines archive of `count` distinct stories (random words: no near-duplicates)."""
    rng = random.Random(seed)
    vocabulary = ["".join(rng.choices("bcdfghklmnprstvz", k=3)) + v for v in "aeiou" * 400]
    with path.open("w") as out:
        for n in range(count):
            body = " ".join(rng.choices(vocabulary, k=words))
            story = {
                "id": f"hard-{n}",
                "title": f"Story {n} {' '.join(rng.choices(vocabulary, k=4))}",
                "category": "test",
                "published": None,
                "url": f"https://archive.example/{n}",
                "text": f"{body.capitalize()}.\n\n{body[::-1].capitalize()}.",
                "summary": [],
            }
            out.write(json.dumps(story) + "\n")


@needs_namespaces
def test_full_disk_during_ingest_is_one_line_and_keeps_what_was_stored(tmp_path: Path) -> None:
    archive = tmp_path / "archive.jsonl"
    write_archive(archive, 3000)
    disk = tmp_path / "disk"
    disk.mkdir()
    result = newsbot_in(
        tmp_path,
        f"mount -t tmpfs -o size=600k tmpfs {disk}",
        "ingest",
        "--no-progress",
        str(archive),
        NEWSBOT_DB=str(disk / "news.db"),
    )
    assert result.returncode == 2, result.stderr
    line = one_line(result)
    assert "is full" in line
    assert "free some space" in line


# --- a newer database ------------------------------------------------------------------------


def test_a_database_from_a_newer_version_is_refused(tmp_path: Path) -> None:
    db = good_database(tmp_path)
    with sqlite3.connect(db) as con:
        columns = {row[1] for row in con.execute("PRAGMA table_info(migrations)")}
        if "newsbot_version" not in columns:  # as a newer newsbot records its steps
            con.execute("ALTER TABLE migrations ADD COLUMN newsbot_version TEXT")
        con.execute(
            "INSERT INTO migrations (name, applied_at, newsbot_version)"
            " VALUES ('099_future', '2030-01-01', '9.4.0')"
        )
        before = con.execute("SELECT sql FROM sqlite_master ORDER BY name").fetchall()
    con.close()
    result = newsbot(tmp_path, "stats", NEWSBOT_DB=str(db))
    assert result.returncode == 2
    line = one_line(result)
    assert "written by newsbot 9.4.0" in line
    assert "099_future" in line
    assert "upgrade newsbot" in line
    with sqlite3.connect(db) as con:
        assert con.execute("SELECT sql FROM sqlite_master ORDER BY name").fetchall() == before
    con.close()


async def test_old_code_refuses_a_newer_schema_and_writes_nothing(tmp_path: Path) -> None:
    import aiosqlite

    from storage.migrations import MIGRATIONS, NewerDatabaseError, migrate

    async with aiosqlite.connect(tmp_path / "new.db", isolation_level=None) as db:
        assert await migrate(db) == [m.name for m in MIGRATIONS]
        # The code of an older release knows only the first step.
        with pytest.raises(NewerDatabaseError, match=r"newsbot \S+ \(schema steps 002_"):
            await migrate(db, MIGRATIONS[:1])
        async with db.execute("SELECT count(*) FROM migrations") as cursor:
            assert (await cursor.fetchone()) == (len(MIGRATIONS),)


# --- the Bot API ----------------------------------------------------------------------------


def run_bot(tmp_path: Path, base_url: str, *flags: str) -> subprocess.CompletedProcess[str]:
    return newsbot(
        tmp_path, *flags, "run", TELEGRAM_BOT_TOKEN=TOKEN, TELEGRAM_API_BASE_URL=base_url
    )


def test_a_refused_token_is_one_line_without_the_token(tmp_path: Path) -> None:
    with FakeBotAPI(token="111111:another-bots-token") as api:
        result = run_bot(tmp_path, api.base_url)
    assert result.returncode == 2
    line = one_line(result)
    assert "Telegram refused TELEGRAM_BOT_TOKEN (401 Unauthorized)" in line
    assert TOKEN not in result.stdout + result.stderr


def test_the_token_is_in_no_debug_log_line(tmp_path: Path) -> None:
    with FakeBotAPI(token="111111:another-bots-token") as api:
        result = run_bot(tmp_path, api.base_url, "-v")
    output = result.stdout + result.stderr
    assert result.returncode == 2
    assert TOKEN not in output
    assert TOKEN.split(":")[1] not in output
    # httpx logged the request URL, which carries the token, with the token masked.
    assert f"{api.base_url}[REDACTED]/getMe" in output
    assert "DEBUG" in output
    assert output.strip().splitlines()[-1].startswith("newsbot: Telegram refused")


def test_an_unreachable_bot_api_is_one_line(tmp_path: Path) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    result = run_bot(tmp_path, f"http://127.0.0.1:{port}/bot")
    assert result.returncode == 2
    line = one_line(result)
    assert f"cannot reach the Bot API at http://127.0.0.1:{port}/bot" in line
    assert TOKEN not in result.stderr


def test_a_bot_api_that_never_answers_is_one_line(tmp_path: Path) -> None:
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)  # accepts connections, never answers
        port = silent.getsockname()[1]
        result = run_bot(tmp_path, f"http://127.0.0.1:{port}/bot")
    assert result.returncode == 2
    assert "did not answer in time" in one_line(result)


def _run_for_a_while(tmp_path: Path, api: FakeBotAPI, *flags: str) -> str:
    process = subprocess.Popen(
        [sys.executable, "-m", "bot", *flags, "run"],
        cwd=tmp_path,
        env=newsbot_env(tmp_path, TELEGRAM_BOT_TOKEN=TOKEN, TELEGRAM_API_BASE_URL=api.base_url),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        api.wait_for("getUpdates", timeout=60)
        time.sleep(3)  # the alert job runs every half second or so
    finally:
        process.send_signal(signal.SIGTERM)
        output, _ = process.communicate(timeout=60)
    assert process.returncode == 0, output
    return output


def test_the_job_scheduler_is_quiet_unless_verbose(tmp_path: Path) -> None:
    with FakeBotAPI() as api:
        quiet = _run_for_a_while(tmp_path, api)
        verbose = _run_for_a_while(tmp_path, api, "-v")
    assert "apscheduler" not in quiet
    assert "apscheduler" in verbose
    assert TOKEN not in quiet + verbose


# --- SSRF through the command line ------------------------------------------------------------


def test_ingest_refuses_a_loopback_url_unless_opted_in(tmp_path: Path) -> None:
    with WebServer() as web:
        web.serve_file("/pages/harbour.html", "pages/gazette-harbour-wall.html")
        web.serve_file("/pages/strike.html", "pages/courier-rail-strike.html")
        urls = [web.url("/pages/harbour.html"), web.url("/pages/strike.html")]
        refused = newsbot(tmp_path, "ingest", *urls)
        assert refused.returncode == 1
        for url in urls:
            assert f"{url}: 0 new, 0 duplicate, 1 failed" in refused.stdout
        assert refused.stdout.count("failed: ") == 2
        assert "refused: 127.0.0.1 is a loopback address" in refused.stdout
        assert "NEWSBOT_ALLOW_PRIVATE_HOSTS=1" in refused.stdout
        assert web.requests == []
        allowed = newsbot(tmp_path, "ingest", *urls, NEWSBOT_ALLOW_PRIVATE_HOSTS="1")
        assert allowed.returncode == 0, allowed.stdout
        assert "Total: 2 new" in allowed.stdout
    bad = newsbot(tmp_path, "stats", NEWSBOT_ALLOW_PRIVATE_HOSTS="maybe")
    assert bad.returncode == 2
    assert "NEWSBOT_ALLOW_PRIVATE_HOSTS must be 1 (on) or 0 (off)" in one_line(bad)


# --- kill -9 -------------------------------------------------------------------------------


def _children(pid: int) -> set[int]:
    """Live descendants of `pid` (read from /proc)."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if fields[0] != "Z":
                parents[int(entry.name)] = int(fields[1])
    found: set[int] = set()
    frontier = {pid}
    while frontier:
        frontier = {child for child, parent in parents.items() if parent in frontier}
        found |= frontier
    return found


def _alive(pids: set[int]) -> set[int]:
    alive = set()
    for pid in pids:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if state != "Z":
            alive.add(pid)
    return alive


def _stories(db: Path) -> int:
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=1) as con:
            count = int(con.execute("SELECT count(*) FROM stories").fetchone()[0])
        con.close()
    except sqlite3.Error:
        return 0
    return count


@pytest.fixture
def big_archive(tmp_path: Path) -> tuple[Path, int]:
    archive = tmp_path / "big.jsonl"
    count = 12_000
    write_archive(archive, count, words=100)
    assert archive.stat().st_size > 5_000_000  # large enough for the worker processes
    return archive, count


@pytest.mark.skipif(not Path("/proc/self/stat").is_file(), reason="needs /proc")
def test_kill_9_of_ingest_leaves_no_worker_and_a_second_ingest_finishes(
    tmp_path: Path, big_archive: tuple[Path, int]
) -> None:
    archive, count = big_archive
    db = tmp_path / "cli.db"
    process = subprocess.Popen(
        [sys.executable, "-m", "bot", "ingest", "--no-progress", str(archive)],
        cwd=tmp_path,
        env=newsbot_env(tmp_path),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 120
        while _stories(db) == 0:
            assert process.poll() is None, "ingest ended before it could be killed"
            assert time.monotonic() < deadline, "ingest stored nothing in 2 minutes"
            time.sleep(0.05)
        children = _children(process.pid)
        # Two pool workers and multiprocessing's resource tracker, at least.
        assert len(children) >= 3, children
    finally:
        process.kill()
        process.wait()
    stored = _stories(db)
    assert 0 < stored < count, "killed mid-import"
    deadline = time.monotonic() + 5
    while _alive(children) and time.monotonic() < deadline:
        time.sleep(0.1)
    survivors = _alive(children)
    for pid in survivors:  # never leave them behind, even when the test fails
        os.kill(pid, signal.SIGKILL)
    assert survivors == set(), "worker processes outlived their parent"

    again = newsbot(tmp_path, "ingest", "--no-progress", str(archive))
    assert again.returncode == 0, again.stderr
    assert f"{count - stored} new, {stored} duplicate, 0 failed" in again.stdout
    assert _stories(db) == count
