"""Admin-only commands (users listed in NEWSBOT_ADMIN_IDS): /stats, and the feed commands."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from telegram import Update

from bot.feeds import interval_text, poll_feed
from handlers.common import UsageError, reply
from handlers.context import NewsContext
from handlers.render import esc, fit
from news.urls import canonical_url, is_http_url
from storage import NotFoundError
from storage.alerts import STAT_NOTES
from storage.models import Feed

log = logging.getLogger(__name__)

MAX_MINUTES = 7 * 24 * 60


def require_admin(update: Update, context: NewsContext) -> None:
    """Refuse, with a clear reply, a user who is not one of the configured admins."""
    user = update.effective_user
    if user is None or user.id not in context.bot_data.admin_ids:
        raise UsageError(
            "That command is for the bot's operators only. Ask the operator to add your "
            "Telegram user id to NEWSBOT_ADMIN_IDS."
        )


def stats_text(counts: dict[str, int]) -> str:
    """The /stats message."""
    lines = []
    for name, value in counts.items():
        note = STAT_NOTES.get(name)
        shown = esc(name.replace("_", " ")) + (f" <i>({esc(note)})</i>" if note else "")
        lines.append(f"{shown}: <b>{value:,}</b>")
    return "<b>newsbot stats</b>\n\n" + "\n".join(lines)


async def stats(update: Update, context: NewsContext) -> None:
    """Counts of stories, feeds, chats, subscriptions and alerts (admins only)."""
    require_admin(update, context)
    await reply(update, stats_text(await context.store.stats()))


async def addfeed(update: Update, context: NewsContext) -> None:
    """Start polling a feed: /addfeed URL [MINUTES] (admins only)."""
    require_admin(update, context)
    args = context.args or []
    usage = "<code>/addfeed https://example.com/feed.xml</code> (optionally minutes: … 30)"
    if not args or len(args) > 2 or len(args[0]) > 2000 or not is_http_url(args[0]):
        raise UsageError(f"/addfeed needs the http(s) address of an RSS or Atom feed: {usage}")
    settings = context.bot_data.extras["settings"]
    interval = settings.poll_seconds
    if len(args) == 2:
        if not args[1].isdigit() or not 1 <= int(args[1]) <= MAX_MINUTES:
            raise UsageError(f"The interval is in minutes, from 1 to {MAX_MINUTES}: {usage}")
        interval = int(args[1]) * 60
    feed, created = await context.store.add_feed(canonical_url(args[0]), interval)
    verb = "Added" if created else "Already polling"
    await reply(update, f"{verb} feed #{feed.id}: {esc(feed.url)}\nPolling it now…")
    # The first poll may take a while (pages are fetched): answer when it is done.
    context.application.create_task(_first_poll(update, context, feed), update=update)


async def _first_poll(update: Update, context: NewsContext, feed: Feed) -> None:
    report = await poll_feed(context.store, context.fetcher, feed, datetime.now(UTC))
    # Each item that failed, by position and guid, so the admin knows what was skipped.
    failures = "".join(f"\n• {esc(error[:300])}" for error in report.errors[:5])
    more = f"\n… and {len(report.errors) - 5} more" if len(report.errors) > 5 else ""
    await reply(update, fit(esc(report.line()) + failures + more))


async def feeds(update: Update, context: NewsContext) -> None:
    """List the feeds with their state (admins only)."""
    require_admin(update, context)
    all_feeds = await context.store.feeds()
    if not all_feeds:
        await reply(update, "No feeds yet. Add one: <code>/addfeed URL</code>")
        return
    default_s = context.bot_data.extras["settings"].poll_seconds
    lines = []
    for feed in all_feeds:
        polled = f"{feed.last_poll_at:%d %b %H:%M} UTC" if feed.last_poll_at else "never"
        state = "⏸ paused" if feed.paused_at else esc(interval_text(feed, default_s))
        error = f"\n   ⚠️ {esc(feed.last_error[:200])}" if feed.last_error else ""
        lines.append(
            f"#{feed.id} <b>{esc((feed.title or feed.url)[:120])}</b>\n"
            f"   {esc(feed.url[:200])}\n   {state} · last poll {polled} · "
            f"{feed.stories_imported} stories{error}"
        )
    await reply(update, fit("<b>Feeds</b>\n\n" + "\n\n".join(lines)))


async def removefeed(update: Update, context: NewsContext) -> None:
    """Stop polling a feed: /removefeed ID (admins only)."""
    require_admin(update, context)
    args = context.args or []
    if not args or not args[0].isascii() or not args[0].isdigit() or len(args[0]) > 12:
        raise UsageError("/removefeed needs a feed number from /feeds: <code>/removefeed 3</code>")
    try:
        feed = await context.store.remove_feed(int(args[0]))
    except NotFoundError:
        raise UsageError(f"There is no feed {int(args[0])}. /feeds lists them.") from None
    await reply(update, f"Removed feed #{feed.id}: {esc(feed.url)} (its stories stay).")
