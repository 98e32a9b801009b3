"""The `newsbot` command line: run, ingest, chat, stats."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
import tempfile
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from importlib import resources
from pathlib import Path

from telegram import Update

from bot.app import build_application, running
from bot.config import ConfigError, Settings
from bot.console import ConsoleChat, build_console_application
from bot.feeds import poll_due
from bot.ingest import SourceReport, ingest, jsonl_records
from bot.related import RelatedImport
from bot.summaries import summarize_sources
from news.fetch import Fetcher
from news.opml import OpmlError, OpmlFeed, parse_opml, write_opml
from news.urls import canonical_url, is_http_url
from storage import NotFoundError, Store
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


def configure_logging(verbose: bool) -> None:
    """Logging for the whole process, set up once here."""
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    # httpx logs every request URL at INFO, and Bot API URLs carry the token.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    logging.getLogger("httpcore").setLevel(logging.WARNING)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `newsbot` console script."""
    args = _parser().parse_args(argv)
    configure_logging(args.verbose)
    if args.command != "run" and not args.verbose:
        logging.getLogger().setLevel(logging.WARNING)
    try:
        settings = Settings.load()
        if args.command == "run":
            return run(settings)
        return asyncio.run(_async_main(args, settings))
    except ConfigError as error:
        print(f"newsbot: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


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


def _print_report(report: SourceReport) -> None:
    print(
        f"{report.source}: {report.new} new, {report.duplicate} duplicate, {report.failed} failed"
    )
    shown = report.errors[:20]
    for error in shown:
        print(f"  failed: {error}")
    if len(report.errors) > len(shown):
        print(f"  ... and {len(report.errors) - len(shown)} more failures")


async def ingest_command(settings: Settings, sources: Sequence[str], *, progress: bool) -> int:
    """`newsbot ingest SOURCE...`: import, print what happened, exit 1 if all failed."""
    store = await Store.open(settings.db_path)
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
                    on_report=_print_report,
                    related=related,
                )
            except BaseException:
                await related.abort()
                raise
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
    print(f"Total: {new} new, {duplicate} duplicate, {failed} failed")
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
            print(f"{name}: {value}")
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
            print(feed_line(feed))
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


def feed_line(feed: Feed) -> str:
    """One feed as `feeds list` shows it."""
    polled = feed.last_poll_at.strftime("%Y-%m-%d %H:%M UTC") if feed.last_poll_at else "never"
    state = f"paused since {feed.paused_at:%Y-%m-%d}" if feed.paused_at else "active"
    error = f", last error: {feed.last_error}" if feed.last_error else ""
    return (
        f"#{feed.id} {feed.url} ({feed.title or 'untitled'}) every {feed.interval_s // 60} min, "
        f"{state}, last poll {polled}, {feed.stories_imported} stories imported{error}"
    )


async def poll_command(settings: Settings) -> int:
    """`newsbot poll`: poll every due feed once (a burst is spread as the bot would)."""
    store = await Store.open(settings.db_path)
    try:
        async with Fetcher() as fetcher:
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
    return 0


if __name__ == "__main__":
    sys.exit(main())
