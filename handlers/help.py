"""/start (with read_ID deep links), /help and replies to unknown commands."""

from __future__ import annotations

import re

from telegram import MessageEntity, Update

from handlers.common import reply
from handlers.context import NewsContext
from handlers.render import esc
from handlers.stories import show_story

_DEEP_LINK = re.compile(r"read_([0-9]{1,12})")

INTRO = (
    "<b>newsbot</b> brings the newsroom's stories into this chat: the latest news, search, "
    "highlights, short summaries, full texts and related stories."
)


def help_text() -> str:
    """The command list, built from the same table that registers the handlers."""
    from handlers import COMMANDS  # the table imports this module

    lines = [f"{command.usage} — {command.description}" for command in COMMANDS if command.help]
    return (
        f"{INTRO}\n\n"
        + "\n".join(lines)
        + "\n\nAny other text is a search. Story numbers appear as /read_12 in lists: "
        "tap one to open the story."
    )


async def start(update: Update, context: NewsContext) -> None:
    """Greet the reader, or open a story from a `read_ID` deep link; a chat that had
    blocked the bot gets its topic alerts back."""
    chat = update.effective_chat
    if chat is not None and await context.store.activate_chat(chat.id):
        await reply(
            update, "Welcome back! Alerts for this chat's topics are on again: /subscriptions"
        )
    args = context.args or []
    if args and (match := _DEEP_LINK.fullmatch(args[0])) and int(match.group(1)):
        await show_story(update, context, int(match.group(1)))
        return
    await reply(update, help_text())


async def help_command(update: Update, context: NewsContext) -> None:
    """List what the bot can do."""
    await reply(update, help_text())


async def unknown_command(update: Update, context: NewsContext) -> None:
    """Answer a command we do not know (but stay quiet for commands to other bots)."""
    message = update.effective_message
    if message is None or not message.text:
        return
    entity = next(
        (e for e in message.entities if e.type == MessageEntity.BOT_COMMAND and e.offset == 0),
        None,
    )
    command = message.parse_entity(entity) if entity else message.text.split()[0]
    name, _, target = command.partition("@")
    if target and target.lower() != (context.bot.username or "").lower():
        return
    shown = name[:40]
    await reply(
        update,
        f"I don't know the command {esc(shown)}. Type /help for the list of commands, or "
        "just type words to search.",
    )


MEDIA_REPLY = (
    "I read text only: commands like /latest or /read_12, or a few words to search for. "
    "/help lists everything I can do."
)


async def media(update: Update, context: NewsContext) -> None:
    """Answer a sticker, photo, voice message, location... in a private chat with what the
    bot understands; a caption that is a command is asked for again as text."""
    message = update.effective_message
    if message is None:
        return
    caption = (message.caption or "").strip()
    if caption.startswith("/"):
        command = esc(caption.split()[0][:40])
        await reply(
            update,
            f"I read commands only in text messages: send {command} on its own, without "
            "the picture or file.",
        )
        return
    await reply(update, MEDIA_REPLY)
