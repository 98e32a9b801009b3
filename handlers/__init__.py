"""The one table of chat commands: command -> handler -> menu text, and its registration."""

from __future__ import annotations

import re
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any

from telegram import BotCommand, Update
from telegram.ext import (
    CallbackQueryHandler,
    ChatMemberHandler,
    CommandHandler,
    MessageHandler,
    filters,
)

from handlers import admin, search, stories, topics
from handlers import help as help_handlers
from handlers.common import BUTTON_EXPIRED
from handlers.context import NewsApp, NewsContext
from handlers.errors import on_error

Callback = Callable[[Update, NewsContext], Coroutine[Any, Any, None]]


@dataclass(frozen=True, slots=True)
class Command:
    """One chat command: its handler, its menu text and how /help shows it."""

    name: str
    callback: Callback
    description: str
    usage: str
    story_arg: bool = False  # also answers /name_ID
    menu: bool = True  # listed in the bot's command menu
    help: bool = True  # listed in /help


COMMANDS: tuple[Command, ...] = (
    Command("start", help_handlers.start, "What this bot does", "/start", menu=False, help=False),
    Command("help", help_handlers.help_command, "What this bot can do", "/help"),
    Command("latest", stories.latest, "The newest stories", "/latest [N]"),
    Command("search", search.search, "Find stories", "/search QUERY"),
    Command("read", stories.read, "Open a story", "/read ID", story_arg=True),
    Command(
        "highlights", stories.highlights, "A story's key points", "/highlights ID", story_arg=True
    ),
    Command("summary", stories.summary, "A short summary", "/summary ID", story_arg=True),
    Command("full", stories.full, "The whole text", "/full ID", story_arg=True),
    Command("related", stories.related, "Related stories", "/related ID", story_arg=True),
    Command(
        "subscribe", topics.subscribe, "Alerts on new stories about a topic", "/subscribe QUERY"
    ),
    Command("unsubscribe", topics.unsubscribe, "Stop a topic's alerts", "/unsubscribe QUERY|all"),
    Command("subscriptions", topics.subscriptions, "This chat's topics", "/subscriptions"),
    Command("digest", topics.digest, "A daily digest instead of alerts", "/digest HH:MM|off"),
    Command("timezone", topics.timezone_command, "The digest's time zone", "/timezone ZONE"),
    Command(
        "addfeed", admin.addfeed, "Poll a feed (admins)", "/addfeed URL", menu=False, help=False
    ),
    Command("feeds", admin.feeds, "The polled feeds (admins)", "/feeds", menu=False, help=False),
    Command(
        "removefeed",
        admin.removefeed,
        "Stop a feed (admins)",
        "/removefeed ID",
        menu=False,
        help=False,
    ),
    Command("stats", admin.stats, "Counts (admins only)", "/stats", menu=False, help=False),
)

# Buttons: one strict parser per kind of callback data -> its handler. A payload no parser
# accepts (forged, or from an older version) gets the "expired" answer.
ButtonParser = Callable[[object], object | None]
BUTTONS: tuple[tuple[ButtonParser, Callback], ...] = (
    (stories.parse_story_button, stories.story_button),
    (search.parse_page_button, search.page_button),
    (topics.parse_topic_button, topics.topic_button),
)


def menu() -> list[BotCommand]:
    """The bot's command menu (setMyCommands), from the same table."""
    return [BotCommand(c.name, c.description) for c in COMMANDS if c.menu]


def _underscore_pattern() -> re.Pattern[str]:
    # Anything after the underscore is taken as the argument, so that `/read_99999999999999`
    # or `/read_٣` hear "not a story number" rather than "unknown command"; `/full_12_2`
    # carries a second argument (the part).
    names = "|".join(c.name for c in COMMANDS if c.story_arg)
    return re.compile(rf"^/({names})_([^\s@_]+)(?:_([^\s@]+))?(?:@(\w+))?(?:\s|$)")


_UNDERSCORE = _underscore_pattern()
_BY_NAME = {c.name: c for c in COMMANDS}


async def underscore_command(update: Update, context: NewsContext) -> None:
    """Route `/read_12` (and `/read_12@BotName`) to the handler of `/read 12`."""
    message = update.effective_message
    assert message is not None
    assert message.text is not None
    match = _UNDERSCORE.match(message.text)
    assert match is not None
    name, story_id, part, target = match.groups()
    if target and target.lower() != (context.bot.username or "").lower():
        return  # addressed to another bot in the group
    context.args = [story_id, *([part] if part else []), *message.text[match.end() :].split()]
    await _BY_NAME[name].callback(update, context)


async def stale_button(update: Update, context: NewsContext) -> None:
    """Answer a button whose data we do not understand (forged, or from an older version)."""
    assert update.callback_query is not None
    await update.callback_query.answer(BUTTON_EXPIRED)


def _accepts(parser: ButtonParser) -> Callable[[object], bool]:
    """A CallbackQueryHandler pattern: the data is one `parser` accepts."""
    return lambda data: parser(data) is not None


def register(app: NewsApp) -> None:
    """Add every handler of the table to `app`."""
    for command in COMMANDS:
        app.add_handler(CommandHandler(command.name, command.callback))
    app.add_handler(MessageHandler(filters.Regex(_UNDERSCORE), underscore_command))
    for parser, callback in BUTTONS:
        app.add_handler(CallbackQueryHandler(callback, pattern=_accepts(parser)))
    app.add_handler(CallbackQueryHandler(stale_button))
    app.add_handler(ChatMemberHandler(topics.bot_membership, ChatMemberHandler.MY_CHAT_MEMBER))
    app.add_handler(MessageHandler(filters.COMMAND, help_handlers.unknown_command))
    app.add_handler(
        MessageHandler(
            filters.TEXT & ~filters.COMMAND & filters.ChatType.PRIVATE, search.search_text
        )
    )
    # Nothing a reader sends goes unanswered: a captioned command anywhere, and any other
    # sticker, photo, voice message or location in a private chat.
    app.add_handler(MessageHandler(filters.CaptionRegex(r"^/"), help_handlers.media))
    app.add_handler(
        MessageHandler(
            filters.ChatType.PRIVATE & ~filters.TEXT & ~filters.StatusUpdate.ALL,
            help_handlers.media,
        )
    )
    app.add_error_handler(on_error)


__all__ = ["BUTTONS", "COMMANDS", "Command", "menu", "register"]
