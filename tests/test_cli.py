"""The `newsbot` command line, run as a real process."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.fakes.botapi import FakeBotAPI

TOKEN = "987654:SECRET-never-in-logs"


def newsbot_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TELEGRAM_", "NEWSBOT_"))}
    env["NEWSBOT_DB"] = str(tmp_path / "cli.db")
    env.update(extra)
    return env


def newsbot(tmp_path: Path, *args: str, **extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bot", *args],
        cwd=tmp_path,
        env=newsbot_env(tmp_path, **extra),
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_run_without_token_says_so_in_one_line(tmp_path: Path) -> None:
    result = newsbot(tmp_path, "run")
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert "TELEGRAM_BOT_TOKEN" in lines[0]
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("NEWSBOT_POLL_SECONDS", "often"),
        ("NEWSBOT_ADMIN_IDS", "12,bob"),
        ("TELEGRAM_API_BASE_URL", "ftp://example"),
        ("TELEGRAM_BOT_TOKEN", "not a token"),
        ("NEWSBOT_PORT", "70000"),
    ],
)
def test_malformed_settings_name_the_variable(tmp_path: Path, variable: str, value: str) -> None:
    result = newsbot(tmp_path, "stats", **{variable: value})
    assert result.returncode == 2
    assert variable in result.stderr
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_settings_come_from_dotenv_and_the_environment_wins(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("NEWSBOT_DB=from-dotenv.db\nNEWSBOT_POLL_SECONDS=often\n")
    bad = newsbot(tmp_path, "stats")
    assert bad.returncode == 2
    assert "NEWSBOT_POLL_SECONDS" in bad.stderr
    (tmp_path / ".env").write_text("NEWSBOT_DB=from-dotenv.db\n")
    env = newsbot_env(tmp_path)
    del env["NEWSBOT_DB"]
    result = subprocess.run(
        [sys.executable, "-m", "bot", "stats"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert "stories: 0" in result.stdout
    assert (tmp_path / "from-dotenv.db").exists()


def test_run_answers_over_the_bot_api_and_stops_on_sigterm(tmp_path: Path) -> None:
    with FakeBotAPI() as api:
        process = subprocess.Popen(
            [sys.executable, "-m", "bot", "run"],
            cwd=tmp_path,
            env=newsbot_env(
                tmp_path, TELEGRAM_BOT_TOKEN=TOKEN, TELEGRAM_API_BASE_URL=api.base_url
            ),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        try:
            api.wait_for("setMyCommands", timeout=60)
            api.message("/latest", 77)
            [reply] = [m for m in _wait_messages(api, 77) if "No stories yet" in m.plain_text]
            assert reply.chat_id == 77
        finally:
            process.send_signal(signal.SIGTERM)
            output, _ = process.communicate(timeout=60)
    assert process.returncode == 0, output
    assert "SECRET-never-in-logs" not in output
    assert "newsbot started" in output


def _wait_messages(api: FakeBotAPI, chat_id: int) -> list[object]:
    calls = api.wait_for(lambda c: c.method == "sendMessage", timeout=30)
    assert calls
    return list(api.sent_messages(chat_id))


def test_ingest_the_sample_article_with_every_field(tmp_path: Path, sample_article: Path) -> None:
    result = newsbot(tmp_path, "ingest", str(sample_article))
    assert result.returncode == 0, result.stderr
    assert "1 new, 0 duplicate, 0 failed" in result.stdout
    with sqlite3.connect(tmp_path / "cli.db") as db:
        db.row_factory = sqlite3.Row
        row = db.execute("SELECT * FROM stories").fetchone()
    assert row["title"] == (
        "Now, Putin offers 'military assistance' to Lukashenko to handle protests"
    )
    assert row["author"] == "Palki Sharma"
    assert row["source"] == "WION"
    assert row["place"] == "New Delhi, Delhi, India"
    assert row["published"] == "2020-08-17T16:42:00+00:00"
    assert (row["utc_offset"], row["zone"]) == (330, "IST")
    assert row["caption"]
    assert "Lukashenko and Putin" in row["caption"]
    assert len(row["highlights"].split("\n")) == 2
    assert [t for t, _ in json.loads(row["related_links"])] == [
        "Belarus: Lukashenko gives nod to fresh elections, says it will happen after "
        "adoption of new constitution",
        "Find out how the political crisis in Belarus could unfold",
    ]
    assert row["body"].startswith("The independence square")
    assert "Also read" not in row["body"]
    assert "Read in App" not in row["body"]
    again = newsbot(tmp_path, "ingest", str(sample_article))
    assert "0 new, 1 duplicate, 0 failed" in again.stdout


def test_ingest_the_whole_corpus_in_one_command(tmp_path: Path, corpus_dir: Path) -> None:
    result = newsbot(tmp_path, "ingest", str(corpus_dir))
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert not any("README" in line or ".tsv" in line for line in lines)
    *_, total = lines
    new, duplicate, failed = (int(part.split()[0]) for part in total[7:].split(", "))
    assert new + duplicate == 2225 + 1000
    assert failed == 0
    # Every BBC repeat of bbc_duplicates.tsv, re-worded headlines included, is reported as
    # a duplicate and never stored; the story it repeats is.
    rows = (corpus_dir / "bbc_duplicates.tsv").read_text().splitlines()[1:]
    pairs = [row.split("\t")[:2] for row in rows if row.strip()]
    assert len(pairs) == 137
    assert duplicate >= 137
    with sqlite3.connect(tmp_path / "cli.db") as db:
        assert db.execute("SELECT count(*) FROM stories").fetchone()[0] == new
        stored = {row[0] for row in db.execute("SELECT external_id FROM stories")}
    assert all(kept in stored for kept, _ in pairs)
    assert not any(copy in stored for _, copy in pairs)


def test_ingest_reports_bad_items_with_file_and_line_and_goes_on(tmp_path: Path) -> None:
    archive = tmp_path / "archive.jsonl"
    good = {"id": "a", "title": "Good one", "text": "Body.", "published": "2024-05-01"}
    archive.write_text(
        "\n".join(
            [
                json.dumps(good),
                "{not json",
                json.dumps({"id": "b", "title": "", "text": "No title"}),
                json.dumps({**good, "id": "c", "title": "Good two", "text": "Other body."}),
            ]
        )
        + "\n"
    )
    missing = tmp_path / "missing.txt"
    result = newsbot(tmp_path, "ingest", str(archive), str(missing))
    assert result.returncode == 0
    assert "2 new, 0 duplicate, 2 failed" in result.stdout
    assert f"{archive}:2:" in result.stdout
    assert f"{archive}:3:" in result.stdout
    assert f"{missing}: " in result.stdout
    only_bad = newsbot(tmp_path, "ingest", str(missing))
    assert only_bad.returncode == 1


def test_chat_command_works_without_a_token_on_the_bundled_samples(tmp_path: Path) -> None:
    result = newsbot(tmp_path, "chat", "-c", "/latest")
    assert result.returncode == 0, result.stderr
    assert "loaded" in result.stdout
    assert "sample stories" in result.stdout
    assert "Latest stories" in result.stdout
    assert result.stdout.count("/read_") == 5
    card = newsbot(tmp_path, "chat", "-c", "/read_1")
    assert "[#1 Summary]" in card.stdout
    assert "loaded" not in card.stdout
    interactive = subprocess.run(
        [sys.executable, "-m", "bot", "chat"],
        cwd=tmp_path,
        env=newsbot_env(tmp_path),
        input="/read 1\n#1\n/quit\n",
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert interactive.returncode == 0, interactive.stderr
    assert "Summary" in interactive.stdout.split("[#1 Summary]", 1)[1]


def test_run_in_webhook_mode_answers_updates_posted_to_it(tmp_path: Path) -> None:
    import socket
    import time
    import urllib.request

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with FakeBotAPI() as api:
        process = subprocess.Popen(
            [sys.executable, "-m", "bot", "run"],
            cwd=tmp_path,
            env=newsbot_env(
                tmp_path,
                TELEGRAM_BOT_TOKEN=TOKEN,
                TELEGRAM_API_BASE_URL=api.base_url,
                NEWSBOT_WEBHOOK_URL="https://bot.example/hook",
                NEWSBOT_WEBHOOK_SECRET="s3cret",
                NEWSBOT_PORT=str(port),
            ),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        try:
            [webhook] = api.wait_for("setWebhook", timeout=60)
            assert webhook.params["url"] == "https://bot.example/hook"
            assert webhook.params["secret_token"] == "s3cret"
            update = {
                "update_id": 1,
                "message": {
                    "message_id": 1,
                    "date": int(time.time()),
                    "chat": {"id": 88, "type": "private", "first_name": "Web"},
                    "from": {"id": 88, "is_bot": False, "first_name": "Web"},
                    "text": "/help",
                    "entities": [{"type": "bot_command", "offset": 0, "length": 5}],
                },
            }
            request = urllib.request.Request(
                f"http://127.0.0.1:{port}/",
                data=json.dumps(update).encode(),
                headers={
                    "Content-Type": "application/json",
                    "X-Telegram-Bot-Api-Secret-Token": "s3cret",
                },
            )
            deadline = time.monotonic() + 30
            while True:  # the server may still be starting
                try:
                    with urllib.request.urlopen(request, timeout=5) as answer:
                        assert answer.status == 200
                    break
                except OSError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.2)
            [reply] = api.wait_for("sendMessage", timeout=30)
            assert reply.params["chat_id"] in (88, "88")
            assert "/latest" in reply.params["text"]
        finally:
            process.send_signal(signal.SIGTERM)
            output, _ = process.communicate(timeout=60)
    assert process.returncode == 0, output
    assert "SECRET-never-in-logs" not in output


# --- issue 9: per-item failures, duplicate kinds, the polling interval ------------------


def test_ingest_skips_an_unusable_feed_item_and_a_reimport_exits_0(tmp_path: Path) -> None:
    from tests.conftest import DATA

    feed = DATA / "feeds" / "rss20-link-only-item.xml"
    first = newsbot(tmp_path, "ingest", str(feed))
    assert first.returncode == 0, first.stdout
    assert f"{feed}: 2 new, 0 duplicate, 1 failed" in first.stdout
    assert (
        f"failed: {feed} item 2 (https://quarry-road.example/2024/06/untitled-draft.html): "
        in first.stdout
    )
    again = newsbot(tmp_path, "ingest", str(feed))
    assert again.returncode == 0, again.stdout
    assert f"{feed}: 0 new, 2 duplicate (2 same guid as #1, #2), 1 failed" in again.stdout


def test_reimporting_a_known_archive_exits_0_and_names_the_duplicates(tmp_path: Path) -> None:
    archive = tmp_path / "archive.jsonl"
    records = [
        {
            "id": str(n),
            "title": f"Lock keeper {n} retires",
            "text": f"After {n + 20} years at lock {n}, the keeper hands over the keys.",
            "url": f"https://canal-news.example/lock-{n}",
        }
        for n in range(3)
    ]
    archive.write_text("".join(json.dumps(r) + "\n" for r in records))
    assert newsbot(tmp_path, "ingest", str(archive)).returncode == 0
    again = newsbot(tmp_path, "ingest", str(archive))
    assert again.returncode == 0, again.stdout
    assert "0 new, 3 duplicate (3 same text as #1, #2, #3), 0 failed" in again.stdout


def test_poll_and_feeds_list_say_the_interval_and_the_duplicates(tmp_path: Path, web: Any) -> None:
    from tests.test_feed_polling import rss

    items = [("a1", "Towpath reopens"), ("a2", "Lock gates replaced")]
    web.serve_bytes("/one.xml", rss(items))
    mirror = rss(items, title="Mirror Wire").replace(b"<link>", b"<ttl>5</ttl><link>", 1)
    web.serve_bytes("/two.xml", mirror)
    env = {"NEWSBOT_POLL_SECONDS": "60", "NEWSBOT_ALLOW_PRIVATE_HOSTS": "1"}
    assert newsbot(tmp_path, "feeds", "add", web.url("/one.xml"), **env).returncode == 0
    listed = newsbot(tmp_path, "feeds", "list", **env)
    assert "every 1 min (NEWSBOT_POLL_SECONDS)" in listed.stdout
    first = newsbot(tmp_path, "poll", **env)
    assert "2 new, 0 duplicate, 0 failed" in first.stdout, first.stdout
    newsbot(tmp_path, "feeds", "add", web.url("/two.xml"), "--every", "2", **env)
    second = newsbot(tmp_path, "poll", **env)
    assert "#2 " in second.stdout
    assert "0 new, 2 duplicate (2 same text as #1, #2), 0 failed" in second.stdout
    listed = newsbot(tmp_path, "feeds", "list", **env).stdout.splitlines()
    assert "every 5 min (ttl 5 min)" in listed[1]
    assert "every 1 min (NEWSBOT_POLL_SECONDS)" in listed[0]


def test_folder_and_feed_url_imports_report_each_bad_item_and_go_on(
    tmp_path: Path, web: Any
) -> None:
    import shutil

    from tests.conftest import DATA

    folder = tmp_path / "inbox"
    folder.mkdir()
    shutil.copy(DATA / "feeds" / "rss20-link-only-item.xml", folder / "a-bulletin.xml")
    shutil.copy(DATA / "pages" / "iframe-unclosed.html", folder / "b-porpoises.html")
    (folder / "c-broken.xml").write_bytes(b"<rss><channel><item><title>cut off")
    result = newsbot(tmp_path, "ingest", str(folder))
    assert result.returncode == 0, result.stdout
    assert f"{folder / 'a-bulletin.xml'}: 2 new, 0 duplicate, 1 failed" in result.stdout
    assert f"failed: {folder / 'a-bulletin.xml'} item 2 (" in result.stdout
    assert f"{folder / 'b-porpoises.html'}: 1 new" in result.stdout
    # A feed URL: the same item reported by position, the others imported (or known).
    # Its site moved onto the local server: the teasers' pages are looked for there only.
    body = (DATA / "feeds" / "rss20-link-only-item.xml").read_bytes()
    web.serve_bytes(
        "/bulletin.xml", body.replace(b"https://quarry-road.example", web.base_url.encode())
    )
    fetched = newsbot(
        tmp_path, "ingest", web.url("/bulletin.xml"), NEWSBOT_ALLOW_PRIVATE_HOSTS="1"
    )
    assert fetched.returncode == 0, fetched.stdout
    assert "failed: " in fetched.stdout
    assert f"item 2 ({web.base_url}/2024/06/untitled-draft.html): HTTP 404" in fetched.stdout
    # Nothing importable from any source: exit status 1.
    only_bad = newsbot(tmp_path, "ingest", str(folder / "c-broken.xml"))
    assert only_bad.returncode == 1
