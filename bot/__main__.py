"""The `newsbot` command line: run, ingest, chat, stats."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sqlite3
import sys
import tempfile
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from importlib import resources
from pathlib import Path

from telegram import Update
from telegram.error import InvalidToken, NetworkError, TelegramError, TimedOut
from tqdm import tqdm

from bot.app import build_application, running
from bot.config import ConfigError, Settings
from bot.console import ConsoleChat, build_console_application
from bot.feeds import interval_text, poll_due
from bot.ingest import SourceReport, ingest, jsonl_records
from bot.logs import configure_logging, install_redaction
from bot.related import RelatedImport
from bot.summaries import summarize_sources
from news.fetch import Fetcher
from news.opml import OpmlError, OpmlFeed, parse_opml, write_opml
from news.urls import canonical_url, is_http_url
from storage import NotFoundError, Store
from storage.alerts import STAT_NOTES
from storage.base import UnusableDatabase, database_problem
from storage.models import Feed

log = logging.getLogger("newsbot")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="newsbot", description="A Telegram bot that brings a newsroom's stories into chat."
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log more")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    commands.add_parser("run", help="run the bot (needs TELEGRAM_BOT_TOKEN)")
    ingest_cmd = commands.add_parser("ingest", help="import articles, archives, folders")
    ingest_cmd.add_argument("sources", nargs="+", metavar="SOURCE")
    ingest_cmd.add_argument(
        "--no-progress", action="store_true", help="no progress bar on long imports"
    )
    chat = commands.add_parser("chat", help="talk to the bot in the terminal, no token needed")
    chat.add_argument("-c", "--command", dest="message", help="send one message and exit")
    commands.add_parser("stats", help="counts of stories and more")
    feeds = commands.add_parser("feeds", help="the feeds the bot polls")
    feed_commands = feeds.add_subparsers(dest="feeds_command", required=True, metavar="ACTION")
    add = feed_commands.add_parser("add", help="poll a feed")
    add.add_argument("url")
    add.add_argument(
        "--every", type=int, metavar="MINUTES", help="poll interval (default NEWSBOT_POLL_SECONDS)"
    )
    feed_commands.add_parser("list", help="feeds with last poll, last error, stories imported")
    remove = feed_commands.add_parser("remove", help="stop polling a feed")
    remove.add_argument("feed", metavar="URL|ID")
    opml_in = feed_commands.add_parser("import", help="add every feed of an OPML file")
    opml_in.add_argument("file", metavar="FILE.opml")
    feed_commands.add_parser("export", help="every feed as OPML, to stdout")
    commands.add_parser("poll", help="poll every due feed once")
    summarize = commands.add_parser(
        "summarize", help="summaries and highlights of stored stories or an archive"
    )
    summarize.add_argument("sources", nargs="+", metavar="SOURCE", help="story ids or .jsonl")
    summarize.add_argument("--sentences", type=int, metavar="N", help="sentences per summary")
    summarize.add_argument("--json", action="store_true", help="JSON Lines output")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `newsbot` console script."""
    args = _parser().parse_args(argv)
    # `run` reports what it does at INFO; the other commands print their own results.
    configure_logging(args.verbose, quiet=args.command != "run")
    try:
        settings = Settings.load()
    except ConfigError as error:
        return _fail(str(error))
    redact = install_redaction(settings.secrets())
    try:
        if args.command == "run":
            return run(settings)
        return asyncio.run(_async_main(args, settings))
    except KeyboardInterrupt:
        return 130
    except Exception as error:
        reason = start_failure(settings, error)
        if reason is None:
            raise  # a bug: the excepthook logs it, with the secrets masked
        log.debug("stopped by %r", error, exc_info=True)
        return _fail(redact(reason))


def _fail(reason: str) -> int:
    print(f"newsbot: {reason}", file=sys.stderr)
    return 2


def start_failure(settings: Settings, error: Exception) -> str | None:
    """The one line that explains an error stopping a command, or None for a bug."""
    base = settings.api_base_url
    if isinstance(error, ConfigError | UnusableDatabase):
        return str(error)
    if isinstance(error, sqlite3.Error):
        return database_problem(settings.db_path, error)
    if isinstance(error, InvalidToken):
        return (
            "Telegram refused TELEGRAM_BOT_TOKEN (401 Unauthorized): get the bot's current "
            "token from @BotFather"
        )
    if isinstance(error, TimedOut):
        return f"the Bot API at {base} did not answer in time; check TELEGRAM_API_BASE_URL"
    if isinstance(error, NetworkError):
        return f"cannot reach the Bot API at {base} ({error}); check TELEGRAM_API_BASE_URL"
    if isinstance(error, TelegramError):
        return f"the Bot API at {base} refused to start the bot: {error}"
    if isinstance(error, OSError):
        where = f" ({error.filename})" if error.filename else ""
        return f"{error.strerror or error}{where}"
    return None


async def _async_main(args: argparse.Namespace, settings: Settings) -> int:
    if args.command == "ingest":
        return await ingest_command(settings, args.sources, progress=not args.no_progress)
    if args.command == "chat":
        return await chat_command(settings, args.message)
    if args.command == "stats":
        return await stats_command(settings)
    if args.command == "feeds":
        return await feeds_command(settings, args)
    if args.command == "poll":
        return await poll_command(settings)
    if args.command == "summarize":
        if args.sentences is not None and not 1 <= args.sentences <= 20:
            print("newsbot: --sentences takes a number from 1 to 20", file=sys.stderr)
            return 2
        return await summarize_sources(
            args.sources,
            db_path=settings.db_path,
            sentences=args.sentences,
            as_json=args.json,
            out=sys.stdout,
            err=sys.stderr,
        )
    raise AssertionError(args.command)


def run(settings: Settings) -> int:
    """Run the bot until SIGINT/SIGTERM: long polling, or a webhook when configured."""
    settings.require_token()
    app = build_application(settings)
    if settings.webhook_url:
        app.run_webhook(
            listen="0.0.0.0",
            port=settings.port,
            webhook_url=settings.webhook_url,
            secret_token=settings.webhook_secret.reveal() if settings.webhook_secret else None,
            allowed_updates=Update.ALL_TYPES,
        )
    else:
        app.run_polling(allowed_updates=Update.ALL_TYPES)
    return 0


# Per-source lines printed in full; beyond them only sources with failures (as many again),
# and the rest are summed up in one line, so 10,000 files do not print 10,000 lines.
SHOWN_REPORTS = 20
# Failures (and warnings) listed per source; beyond them a count.
SHOWN_ERRORS = 20


def _echo(line: str) -> None:
    # Through tqdm, so a progress bar on the terminal is redrawn below the line, not torn.
    tqdm.write(line, file=sys.stdout)


def _print_lines(kind: str, lines: list[str]) -> None:
    for line in lines[:SHOWN_ERRORS]:
        _echo(f"  {kind}: {line}")
    if len(lines) > SHOWN_ERRORS:
        plural = "failures" if kind == "failed" else "warnings"
        _echo(f"  ... and {len(lines) - SHOWN_ERRORS:,} more {plural}")


def print_report(report: SourceReport) -> None:
    """One source's line, its failures and its warnings (the first SHOWN_ERRORS of each)."""
    if report.skipped is not None:
        _echo(f"{report.source}: skipped, {report.skipped}")
        return
    _echo(f"{report.source}: {report.counts_line()}")
    _print_lines("failed", report.errors)
    _print_lines("warning", report.warnings)


class ReportPrinter:
    """Prints the first SHOWN_REPORTS source reports, then only those with failures or
    skips (SHOWN_REPORTS more at most), and counts the rest for `summary`."""

    def __init__(self) -> None:
        self.shown = 0
        self.shown_late = 0
        self.hidden = SourceReport("")
        self.hidden_sources = 0
        self.hidden_warned = 0

    def __call__(self, report: SourceReport) -> None:
        """Print `report`, or count it for the summary line."""
        if self.shown < SHOWN_REPORTS:
            self.shown += 1
            print_report(report)
            return
        if (report.failed or report.skipped) and self.shown_late < SHOWN_REPORTS:
            self.shown_late += 1
            print_report(report)
            return
        self.hidden_sources += 1
        self.hidden.new += report.new
        self.hidden.duplicate += report.duplicate
        self.hidden.failed += report.failed
        self.hidden_warned += bool(report.warnings)

    def summary(self) -> str | None:
        """ "… and 9,980 more files: 9,980 new, ..." for the reports not printed, if any."""
        if not self.hidden_sources:
            return None
        hidden = self.hidden
        noun = "file" if self.hidden_sources == 1 else "files"
        warned = f", {self.hidden_warned:,} with warnings" if self.hidden_warned else ""
        return (
            f"… and {self.hidden_sources:,} more {noun}: {hidden.new:,} new, "
            f"{hidden.duplicate:,} duplicate, {hidden.failed:,} failed{warned}"
        )


async def ingest_command(settings: Settings, sources: Sequence[str], *, progress: bool) -> int:
    """`newsbot ingest SOURCE...`: import, print what happened, exit 1 if all failed."""
    store = await Store.open(settings.db_path)
    printer = ReportPrinter()
    try:
        # The related-stories index is kept up as the stories arrive: vectors made by the
        # workers that prepare each batch, a model fitted beside the import when needed.
        with tempfile.TemporaryDirectory(prefix="newsbot-") as folder:
            archives = await asyncio.to_thread(jsonl_records, sources)
            related = await RelatedImport.start(store, archives, Path(folder))
            try:
                reports = await ingest(
                    store,
                    sources,
                    progress=None if progress else False,
                    on_report=printer,
                    allow_private_hosts=settings.allow_private_hosts,
                    related=related,
                )
            except BaseException:
                await related.abort()
                raise
            summary = printer.summary()
            if summary is not None:
                print(summary)
            status = await related.finish()
        if status.fitted or status.embedded:
            refit = "model fitted, " if status.fitted else ""
            print(
                f"Related-stories index: {refit}{status.embedded} stories embedded "
                f"in {status.seconds:.1f} s"
            )
    finally:
        await store.close()
    new = sum(r.new for r in reports)
    duplicate = sum(r.duplicate for r in reports)
    failed = sum(r.failed for r in reports)
    warned = sum(len(r.warnings) for r in reports)
    skipped = sum(r.skipped is not None for r in reports)
    extra = f", {warned} warnings" if warned else ""
    extra += f", {skipped} skipped" if skipped else ""
    print(f"Total: {new} new, {duplicate} duplicate, {failed} failed{extra}")
    return 1 if reports and all(r.failed_entirely for r in reports) else 0


def sample_paths() -> list[str]:
    """The demo stories bundled with the package."""
    folder = Path(str(resources.files("news") / "samples"))
    return sorted(str(path) for path in folder.glob("*.txt"))


async def chat_command(settings: Settings, message: str | None) -> int:
    """`newsbot chat`: the real handlers in the terminal, on the bundled samples if empty."""
    store = await Store.open(settings.db_path)
    try:
        if await store.count_stories() == 0:
            reports = await ingest(store, sample_paths(), progress=False)
            loaded = sum(r.new for r in reports)
            print(f"(The database {settings.db_path} was empty: loaded {loaded} sample stories.)")
    finally:
        await store.close()
    app, request = build_console_application(settings)
    async with running(app, polling=False):
        chat = ConsoleChat(app, request)
        if message is not None:
            await chat.send(message)
        else:
            await chat.interact()
    return 0


async def stats_command(settings: Settings) -> int:
    """`newsbot stats`: what the database holds."""
    store = await Store.open(settings.db_path)
    try:
        for name, value in (await store.stats()).items():
            note = STAT_NOTES.get(name)
            print(f"{name}: {value}" + (f" ({note})" if note else ""))
    finally:
        await store.close()
    return 0


async def feeds_command(settings: Settings, args: argparse.Namespace) -> int:
    """`newsbot feeds add|list|remove|import|export`."""
    store = await Store.open(settings.db_path)
    try:
        return await _feeds(store, settings, args)
    finally:
        await store.close()


async def _feeds(store: Store, settings: Settings, args: argparse.Namespace) -> int:
    action = args.feeds_command
    if action == "add":
        if not is_http_url(args.url):
            print(f"newsbot: not an http(s) URL: {args.url}", file=sys.stderr)
            return 2
        if args.every is not None and not 1 <= args.every <= 7 * 24 * 60:
            print("newsbot: --every takes minutes, from 1 to 10080 (a week)", file=sys.stderr)
            return 2
        every = args.every * 60 if args.every else settings.poll_seconds
        feed, created = await store.add_feed(canonical_url(args.url), every)
        print(f"{'Added' if created else 'Already polling'} feed #{feed.id}: {feed.url}")
    elif action == "list":
        feeds = await store.feeds()
        if not feeds:
            print("No feeds. Add one with: newsbot feeds add URL")
        for feed in feeds:
            print(feed_line(feed, settings.poll_seconds))
    elif action == "remove":
        key: int | str = int(args.feed) if args.feed.isdigit() else canonical_url(args.feed)
        try:
            feed = await store.remove_feed(key)
        except NotFoundError:
            print(f"newsbot: no feed {args.feed} (see: newsbot feeds list)", file=sys.stderr)
            return 1
        print(f"Removed feed #{feed.id}: {feed.url}")
    elif action == "import":
        try:
            entries = parse_opml(await asyncio.to_thread(Path(args.file).read_bytes))
        except (OSError, OpmlError) as error:
            print(f"newsbot: cannot import {args.file}: {error}", file=sys.stderr)
            return 1
        added = 0
        for entry in entries:
            _, created = await store.add_feed(
                canonical_url(entry.url), settings.poll_seconds, title=entry.title
            )
            added += created
        print(f"{added} feeds added, {len(entries) - added} already polled")
    elif action == "export":
        feeds = await store.feeds()
        print(write_opml((OpmlFeed(f.url, f.title) for f in feeds), "newsbot feeds"), end="")
    return 0


def feed_line(feed: Feed, default_s: int) -> str:
    """One feed as `feeds list` shows it (`default_s`: the NEWSBOT_POLL_SECONDS in force)."""
    polled = feed.last_poll_at.strftime("%Y-%m-%d %H:%M UTC") if feed.last_poll_at else "never"
    state = f"paused since {feed.paused_at:%Y-%m-%d}" if feed.paused_at else "active"
    error = f", last error: {feed.last_error}" if feed.last_error else ""
    return (
        f"#{feed.id} {feed.url} ({feed.title or 'untitled'}) {interval_text(feed, default_s)}, "
        f"{state}, last poll {polled}, {feed.stories_imported} stories imported{error}"
    )


async def poll_command(settings: Settings) -> int:
    """`newsbot poll`: poll every due feed once (a burst is spread as the bot would)."""
    store = await Store.open(settings.db_path)
    try:
        async with Fetcher(allow_private_hosts=settings.allow_private_hosts) as fetcher:
            reports = await poll_due(
                store,
                fetcher,
                datetime.now(UTC),
                interval=timedelta(seconds=settings.poll_seconds),
            )
    finally:
        await store.close()
    if not reports:
        print("No feed is due.")
    for report in reports:
        print(report.line())
        for error in report.errors[:20]:
            print(f"  failed: {error}")
        if len(report.errors) > 20:
            print(f"  ... and {len(report.errors) - 20} more failures")
    return 0


if __name__ == "__main__":
    sys.exit(main())
