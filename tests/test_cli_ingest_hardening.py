"""`newsbot ingest`, run as a real process, on hostile input: a JSON Lines file mixing good
records with every saved hostile line (tests/data/jsonl), a folder with links out of it, and
a folder of many small files (the output stays short)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from tests.test_cli import newsbot
from tests.test_import_hardening import CASE_NAMES, case, good


def test_ingest_mixed_hostile_archive_reports_each_bad_line_and_stores_the_rest(
    tmp_path: Path,
) -> None:
    archive = tmp_path / "hostile.jsonl"
    lines: list[str] = []
    where: dict[str, int] = {}
    for index, name in enumerate(CASE_NAMES):
        lines.append(good(index))
        lines.append(case(name)[0].rstrip("\n"))
        where[name] = len(lines)
    archive.write_text("\n".join(lines) + "\n", encoding="utf-8")

    result = newsbot(tmp_path, "ingest", str(archive))

    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    errors = [name for name in CASE_NAMES if "error" in case(name)[1]]
    warned = [name for name in CASE_NAMES if "warnings" in case(name)[1]]
    out = result.stdout
    assert f"{len(CASE_NAMES) + len(warned)} new, 0 duplicate, {len(errors)} failed" in out, out
    for name in errors:
        assert f"  failed: {archive}:{where[name]}: {case(name)[1]['error']}" in out, name
    for name in warned:
        for warning in case(name)[1]["warnings"]:
            assert f"  warning: {archive}:{where[name]}: {warning}" in out, name
    with sqlite3.connect(tmp_path / "cli.db") as db:
        ids = {row[0] for row in db.execute("SELECT external_id FROM stories")}
        longest = db.execute("SELECT max(length(title)) FROM stories").fetchone()[0]
    assert {f"good-{n}" for n in range(len(CASE_NAMES))} <= ids
    assert longest <= 300


def test_ingest_folder_skips_links_out_and_says_so(tmp_path: Path) -> None:
    secret = tmp_path / "dotenv"
    secret.write_text("TELEGRAM_BOT_TOKEN=123:leaked\n\nNEWSBOT_ADMIN_IDS=1\n")
    folder = tmp_path / "stories"
    folder.mkdir()
    (folder / "story.txt").write_text("Real story\n\nA real body.\n")
    (folder / "env").symlink_to(secret)

    result = newsbot(tmp_path, "ingest", str(folder))

    assert result.returncode == 0, result.stderr
    assert f"{folder / 'env'}: skipped, a symbolic link to {secret}" in result.stdout
    assert "not followed" in result.stdout
    assert "Total: 1 new, 0 duplicate, 0 failed, 1 skipped" in result.stdout
    with sqlite3.connect(tmp_path / "cli.db") as db:
        titles = [row[0] for row in db.execute("SELECT title FROM stories")]
    assert titles == ["Real story"]


def test_ingest_many_files_prints_a_summary_not_a_line_each(tmp_path: Path) -> None:
    folder = tmp_path / "many"
    folder.mkdir()
    for n in range(60):
        (folder / f"{n:03}.txt").write_text(f"Story number {n}\n\nThe body of story {n}.\n")
    (folder / "045.txt").write_text("\n\n")  # one bad file late in the run: still shown

    result = newsbot(tmp_path, "ingest", "--no-progress", str(folder))

    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    per_file = [line for line in lines if line.startswith(str(folder))]
    assert len(per_file) == 21  # the first 20, then only the one that failed
    assert any(line.startswith(f"{folder / '045.txt'}: 0 new") for line in per_file)
    assert "… and 39 more files: 39 new, 0 duplicate, 0 failed" in lines
    assert "Total: 59 new, 0 duplicate, 1 failed" in lines
    assert len(lines) <= 30
