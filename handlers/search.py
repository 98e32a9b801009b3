"""Searching: /search QUERY, plain text as a search, and paging through results."""

from __future__ import annotations

import re
from dataclasses import dataclass

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Update

from handlers.common import BUTTON_EXPIRED, UsageError, ascii_int, reply
from handlers.context import NewsContext
from handlers.render import esc, fit, story_list
from news.query import QueryError, parse_query
from storage import NotFoundError, SearchPage

PER_PAGE = 5
MAX_PAGE = 200
CALLBACK_BYTES = 64

SEARCH_HELP = (
    'Type words to find (all must appear), <code>"a phrase"</code>, <code>OR</code> '
    "between words, <code>-word</code> to leave a word out, <code>category:sport</code> "
    'or <code>source:bbc</code>. Example: <code>/search "climate change" -opinion</code>'
)


def results_text(display: str, page: SearchPage) -> str:
    """The message listing one page of results."""
    header = f"<b>Results for</b> {esc(display)}"
    if page.page:
        header += f" <i>(page {page.page + 1})</i>"
    if not page.items:
        if page.page:
            return f"{header}\n\nNo more results."
        return f"{header}\n\nNo stories match. {SEARCH_HELP}"
    return fit(f"{header}\n\n" + story_list(page.items, start=page.page * PER_PAGE + 1))


def paging_keyboard(key: str, page: SearchPage) -> InlineKeyboardMarkup | None:
    """‹ Previous / Next › buttons, when there is somewhere to go. `key` names the query:
    the query text itself, or `#TOKEN` of a saved one (see `query_key`)."""
    buttons = []
    if page.page > 0:
        buttons.append(
            InlineKeyboardButton("‹ Previous", callback_data=f"page:{page.page - 1}:{key}")
        )
    if page.has_next and page.page + 1 < MAX_PAGE:
        buttons.append(InlineKeyboardButton("Next ›", callback_data=f"page:{page.page + 1}:{key}"))
    return InlineKeyboardMarkup([buttons]) if buttons else None


# A saved search's token as secrets.token_urlsafe writes it (see Store.save_search).
_TOKEN = re.compile(r"#[A-Za-z0-9_-]{16,43}")
_PAGE = re.compile(r"page:([0-9]{1,3}):([^\n]+)")


@dataclass(frozen=True, slots=True)
class PageButton:
    """A parsed paging button: the page wanted and the key naming its query."""

    page: int
    key: str


def parse_page_button(data: object) -> PageButton | None:
    """The paging button `data` names, or None for anything we did not make: a page out
    of range, non-ASCII digits, a saved-search key that is not a token."""
    if not isinstance(data, str):
        return None
    match = _PAGE.fullmatch(data)
    if match is None:
        return None
    number = ascii_int(match.group(1), 3)
    key = match.group(2)
    if number is None or number >= MAX_PAGE:
        return None
    if key.startswith("#") and _TOKEN.fullmatch(key) is None:
        return None
    return PageButton(number, key)


async def query_key(update: Update, context: NewsContext, text: str) -> str:
    """How paging buttons name a query: the text itself when it fits in Telegram's 64 bytes
    of callback data (most do, and then searching writes nothing), else `#TOKEN` of a copy
    saved for this chat."""
    text = " ".join(text.split())
    if not text.startswith("#") and len(f"page:{MAX_PAGE}:{text}".encode()) <= CALLBACK_BYTES:
        return text
    chat = update.effective_chat
    user = update.effective_user
    token = await context.store.save_search(
        text,
        chat_id=chat.id if chat is not None else 0,
        user_id=user.id if user is not None else None,
        now=context.bot_data.now(),
    )
    return f"#{token}"


async def query_text(update: Update, context: NewsContext, key: str) -> str:
    """The query a paging button names (NotFoundError for a saved search that is unknown,
    forgotten or another chat's)."""
    if not key.startswith("#"):
        return key
    chat = update.effective_chat
    if chat is None:
        raise NotFoundError("saved searches belong to a chat")
    return await context.store.saved_search(key[1:], chat_id=chat.id)


async def run_search(update: Update, context: NewsContext, text: str) -> None:
    """Search for `text` and reply with the first page of results."""
    try:
        query = parse_query(text)
    except QueryError as error:
        raise UsageError(f"{esc(str(error))}\n\n{SEARCH_HELP}") from None
    page = await context.store.search(query, page=0, per_page=PER_PAGE)
    keyboard = None
    if page.has_next:
        keyboard = paging_keyboard(await query_key(update, context, text), page)
    await reply(update, results_text(query.display, page), keyboard)


async def search(update: Update, context: NewsContext) -> None:
    """Search stories: /search QUERY."""
    text = " ".join(context.args or [])
    if not text.strip():
        raise UsageError(f"/search needs something to look for. {SEARCH_HELP}")
    await run_search(update, context, text)


async def search_text(update: Update, context: NewsContext) -> None:
    """Plain text that is not a command is a search."""
    message = update.effective_message
    if message is None or not message.text:
        return
    await run_search(update, context, message.text)


async def page_button(update: Update, context: NewsContext) -> None:
    """Show another page of a search, editing the results message in place."""
    callback = update.callback_query
    assert callback is not None
    button = parse_page_button(callback.data)
    if button is None:
        await callback.answer(BUTTON_EXPIRED)
        return
    try:
        query = parse_query(await query_text(update, context, button.key))
    except (NotFoundError, QueryError):
        await callback.answer("That search has expired: search again.", show_alert=True)
        return
    page = await context.store.search(query, page=button.page, per_page=PER_PAGE)
    await callback.answer()
    await callback.edit_message_text(
        results_text(query.display, page), reply_markup=paging_keyboard(button.key, page)
    )
