"""The feed-polling job of `newsbot run` (the polling itself is bot/feeds.py)."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

from telegram.error import TelegramError

from bot.config import Settings
from bot.feeds import PollReport, poll_due
from handlers.context import NewsContext
from handlers.render import esc

log = logging.getLogger(__name__)


async def poll_job(context: NewsContext) -> None:
    """JobQueue job: poll the due feeds; tell the admins about a feed paused after failing
    for days."""
    settings: Settings = context.bot_data.extras["settings"]
    reports = await poll_due(
        context.store,
        context.fetcher,
        datetime.now(UTC),
        interval=timedelta(seconds=settings.poll_seconds),
    )
    for report in reports:
        if report.new:
            log.info("%s", report.line())
        if report.paused:
            await tell_admins(context, paused_text(report))


def paused_text(report: PollReport) -> str:
    """The message the admins get when a feed is paused."""
    feed = report.feed
    return (
        f"⚠️ Feed #{feed.id} has failed for days and is paused: {esc(feed.url)}\n"
        f"Last error: {esc(report.error or 'unknown')}\n"
        f"/removefeed {feed.id} removes it; /addfeed {esc(feed.url)} resumes it."
    )


async def tell_admins(context: NewsContext, text: str) -> None:
    """Send `text` to every admin who can be reached (one who never started the bot can't)."""
    for admin_id in sorted(context.bot_data.admin_ids):
        try:
            await context.bot.send_message(admin_id, text)
        except TelegramError as error:
            log.warning("could not tell admin %s: %s", admin_id, error)


def poll_interval(settings: Settings) -> float:
    """How often the polling job looks for due feeds: often enough that a feed is polled
    close to its time, at most every 30 s."""
    return float(min(30, max(1, settings.poll_seconds // 10)))
