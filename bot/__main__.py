"""The `newsbot` command line: run, ingest, chat, stats."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Sequence
from importlib import resources
from pathlib import Path

from telegram import Update

from bot.app import build_application, running
from bot.config import ConfigError, Settings
from bot.console import ConsoleChat, ConsoleRequest
from bot.ingest import SourceReport, ingest
from storage import Store

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
    # -- feeds commands (issue 4) go here --
    # -- summarize command (issue 5) goes here --
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
    # -- dispatch of feeds / poll (issue 4) and summarize (issue 5) go here --
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
        reports = await ingest(
            store, sources, progress=None if progress else False, on_report=_print_report
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
    request = ConsoleRequest()
    app = build_application(
        settings, request=request, get_updates_request=ConsoleRequest(), rate_limits=False
    )
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


if __name__ == "__main__":
    sys.exit(main())
