"""What every handler module shares: argument parsing, usage errors and replying."""

from __future__ import annotations

from collections.abc import Sequence

from telegram import InlineKeyboardMarkup, Message, Update

from handlers.context import NewsContext
from handlers.render import MAX_MESSAGE

# A story id is a short integer; anything longer is not one of ours.
MAX_ID_DIGITS = 12

# The answer to a button whose data is not one we made (forged, or from an older version).
BUTTON_EXPIRED = "This button has expired: type /help."


def ascii_int(raw: str, max_digits: int = MAX_ID_DIGITS) -> int | None:
    """`raw` as a number when it is 1 to `max_digits` ASCII digits, else None: the one digit
    rule of every command and button ("٣", "²" and "12abc" are not numbers here)."""
    if 1 <= len(raw) <= max_digits and raw.isascii() and raw.isdigit():
        return int(raw)
    return None


class UsageError(Exception):
    """Bad or missing arguments: the message (HTML) says what to type instead."""


def story_id_arg(context: NewsContext, command: str) -> int:
    """The story id argument of `/command ID` (or `/command_ID`)."""
    args = context.args or []
    example = f"<code>/{command} 12</code> or /{command}_12"
    if not args:
        raise UsageError(
            f"/{command} needs a story number, like {example}. "
            "Find stories with /latest or /search."
        )
    number = ascii_int(args[0].lstrip("#"))
    if not number:
        raise UsageError(
            f"That is not a story number. Type {example}: the numbers appear after "
            "/read_ in /latest and /search."
        )
    return number


async def reply(
    update: Update,
    text: str,
    keyboard: InlineKeyboardMarkup | None = None,
) -> Message | None:
    """Send `text` (HTML, at most one message long) to the chat the update came from."""
    chat = update.effective_chat
    if chat is None:
        return None
    assert len(text) <= MAX_MESSAGE, "render must keep messages within Telegram's limit"
    return await chat.send_message(text, reply_markup=keyboard)


async def reply_all(update: Update, texts: Sequence[str]) -> None:
    """Send several messages in order."""
    for text in texts:
        await reply(update, text)
