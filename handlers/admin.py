"""Admin-only commands (users listed in NEWSBOT_ADMIN_IDS): /stats, and the feed commands."""

from __future__ import annotations

from telegram import Update

from handlers.common import UsageError, reply
from handlers.context import NewsContext
from handlers.render import esc


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
    lines = [f"{esc(name.replace('_', ' '))}: <b>{value:,}</b>" for name, value in counts.items()]
    return "<b>newsbot stats</b>\n\n" + "\n".join(lines)


async def stats(update: Update, context: NewsContext) -> None:
    """Counts of stories, feeds, chats, subscriptions and alerts (admins only)."""
    require_admin(update, context)
    await reply(update, stats_text(await context.store.stats()))
