"""Reading stories: /latest, /read, /highlights, /summary, /full, /related and the buttons."""

from __future__ import annotations

import asyncio
import functools
import logging
import re
from dataclasses import dataclass, replace

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Update

from handlers.common import (
    BUTTON_EXPIRED,
    UsageError,
    ascii_int,
    reply,
    reply_all,
    story_id_arg,
)
from handlers.context import LongReplies, NewsContext
from handlers.render import (
    MAX_MESSAGE,
    bullets,
    clip,
    esc,
    fit,
    link,
    split_text,
    story_card,
    story_list,
)
from news.summarize import highlights as generate_highlights
from news.summarize import summarize
from news.urls import is_http_url
from storage import NotFoundError, Store, Story, StoryHead

log = logging.getLogger(__name__)

LATEST_DEFAULT = 5
LATEST_MAX = 20
RELATED_SIMILAR = 5
# /full sends at most this many messages at a time, then names the command for the next
# ones: a 200,000-character story must not hold a chat (and Telegram's limits) for minutes.
FULL_MESSAGES = 5
# Room kept in each /full message for the "next part" footer.
_FULL_FOOTER = 200


def story_keyboard(story: Story) -> InlineKeyboardMarkup:
    """Buttons under a story card: Summary, Full text, Related, Original (with a URL)."""
    row = [
        InlineKeyboardButton("Summary", callback_data=f"summary:{story.id}"),
        InlineKeyboardButton("Full text", callback_data=f"full:{story.id}"),
        InlineKeyboardButton("Related", callback_data=f"related:{story.id}"),
    ]
    rows = [row]
    if story.url and is_http_url(story.url):
        rows.append([InlineKeyboardButton("Original", url=story.url)])
    return InlineKeyboardMarkup(rows)


async def load_story(store: Store, story_id: int) -> Story:
    """The story, or a UsageError saying the id is unknown."""
    try:
        return await store.story(story_id)
    except NotFoundError:
        raise UsageError(
            f"There is no story {story_id}. Try /latest for the newest stories, or "
            "/search followed by a few words."
        ) from None


async def story_highlights(store: Store, story: Story) -> tuple[str, ...]:
    """The publisher's highlights, else ours (computed once and stored)."""
    if story.highlights:
        return story.highlights
    generated = tuple(generate_highlights(story.title, story.body))
    if generated:
        await store.set_generated_highlights(story.id, generated)
    return generated


async def story_summary(store: Store, story: Story) -> tuple[str, ...]:
    """A 2–4 sentence extractive summary (computed once and stored)."""
    if story.summary is not None:
        return story.summary
    sentences = tuple(summarize(story.title, story.body))
    await store.set_summary(story.id, sentences)
    return sentences


async def latest(update: Update, context: NewsContext) -> None:
    """Show the newest stories: /latest [N]."""
    args = context.args or []
    count = LATEST_DEFAULT
    note = ""
    if args:
        raw = args[0]
        if not raw.isascii() or not raw.isdigit() or len(raw) > 6 or int(raw) == 0:
            raise UsageError(
                f"/latest takes how many stories to show, from 1 to {LATEST_MAX}: "
                "<code>/latest 10</code>"
            )
        count = int(raw)
        if count > LATEST_MAX:
            count = LATEST_MAX
            note = f"\n\n<i>/latest shows at most {LATEST_MAX} stories.</i>"
    heads = await context.store.latest(count)
    if not heads:
        await reply(
            update, "No stories yet. An operator adds them with <code>newsbot ingest</code>."
        )
        return
    await reply(update, fit("<b>Latest stories</b>\n\n" + story_list(heads), note.strip()))


async def show_story(update: Update, context: NewsContext, story_id: int) -> None:
    """Send the story card with its buttons."""
    story = await load_story(context.store, story_id)
    shown = await story_highlights(context.store, story)
    if shown != story.highlights:
        story = _with_highlights(story, shown)
    await reply(update, story_card(story), story_keyboard(story))


def _with_highlights(story: Story, shown: tuple[str, ...]) -> Story:
    return replace(story, highlights=shown, highlights_generated=True)


async def read(update: Update, context: NewsContext) -> None:
    """Open a story: /read ID."""
    await show_story(update, context, story_id_arg(context, "read"))


async def highlights(update: Update, context: NewsContext) -> None:
    """A story's highlights as bullets: /highlights ID."""
    story = await load_story(context.store, story_id_arg(context, "highlights"))
    await send_highlights(update, context, story)


async def send_highlights(update: Update, context: NewsContext, story: Story) -> None:
    """Send the highlights message of `story`."""
    shown = await story_highlights(context.store, story)
    if not shown:
        await reply(update, f"<b>{esc(story.title)}</b>\n\nThis story has no text to highlight.")
        return
    label = "Highlights" if story.highlights else "Key sentences"
    text = f"<b>{esc(story.title)}</b>\n<i>{label}</i>\n\n{bullets(shown)}"
    await reply(update, fit(text, f"/read_{story.id} · /full_{story.id}"))


async def summary(update: Update, context: NewsContext) -> None:
    """A short summary: /summary ID."""
    story = await load_story(context.store, story_id_arg(context, "summary"))
    await send_summary(update, context, story)


async def send_summary(update: Update, context: NewsContext, story: Story) -> None:
    """Send the summary message of `story`."""
    sentences = await story_summary(context.store, story)
    if not sentences:
        await reply(update, f"<b>{esc(story.title)}</b>\n\nThis story has no text to summarise.")
        return
    text = f"<b>{esc(story.title)}</b>\n<i>Summary</i>\n\n" + esc(" ".join(sentences))
    await reply(update, fit(text, f"/full_{story.id} · /related_{story.id}"))


async def full(update: Update, context: NewsContext) -> None:
    """The whole text, FULL_MESSAGES messages at a time: /full ID [PART]."""
    story_id = story_id_arg(context, "full")
    args = context.args or []
    part = 1
    if len(args) > 1:
        number = ascii_int(args[1], 4)
        if not number:
            raise UsageError(
                f"/full takes the story number, then which part: <code>/full {story_id} 2</code>"
                f" or /full_{story_id}_2."
            )
        part = number
    story = await load_story(context.store, story_id)
    await start_full(update, context, story, part)


def full_parts(story: Story) -> list[list[str]]:
    """The full text of `story` as messages (numbered (1/12) when several), grouped
    FULL_MESSAGES at a time: part 1 is the first group."""
    title = f"<b>{esc(clip(story.title, 300))}</b>"
    messages = _full_messages(title, story.body or ("(This story has no text.)",))
    return [list(messages[i : i + FULL_MESSAGES]) for i in range(0, len(messages), FULL_MESSAGES)]


@functools.lru_cache(maxsize=8)
def _full_messages(title_html: str, body: tuple[str, ...]) -> tuple[str, ...]:
    # Reading a long story part by part splits it once, not once per part.
    return tuple(split_text(title_html, body, limit=MAX_MESSAGE - _FULL_FOOTER))


async def start_full(update: Update, context: NewsContext, story: Story, part: int) -> None:
    """Send one part of the full text in the background (a chat's own pace is one message
    a second, and its next updates need not wait for all of them); parts asked for one
    after another arrive in that order, and a part already on its way to this chat is not
    sent twice, however often Full text is tapped."""
    chat = update.effective_chat
    if chat is None:
        return
    key = (chat.id, story.id, part)
    replies = context.bot_data.long_replies
    if key in replies.pending:
        if update.callback_query is None:
            await reply(update, f"Story {story.id} is on its way: its messages follow.")
        return
    parts = full_parts(story)
    if part > len(parts):
        raise UsageError(
            f"Story {story.id} has {len(parts)} {'part' if len(parts) == 1 else 'parts'}: "
            f"/full_{story.id} starts from the beginning."
        )
    messages = parts[part - 1]
    if part < len(parts):
        footer = f"<i>Part {part} of {len(parts)}.</i> Next: /full_{story.id}_{part + 1}"
        if story.url:
            footer += " · " + link(story.url, "the original")
        messages = [*messages[:-1], f"{messages[-1]}\n\n{footer}"]
    replies.pending.add(key)
    turn = replies.turn(chat.id)
    context.application.create_task(
        _send_full(update, messages, replies, key, turn), update=update
    )


async def _send_full(
    update: Update,
    messages: list[str],
    replies: LongReplies,
    key: tuple[int, int, int],
    turn: asyncio.Lock,
) -> None:
    try:
        async with turn:
            await reply_all(update, messages)
    finally:
        replies.pending.discard(key)
        replies.release(key[0])


async def related(update: Update, context: NewsContext) -> None:
    """Related stories: the article's own links and similar stored ones: /related ID."""
    story = await load_story(context.store, story_id_arg(context, "related"))
    await send_related(update, context, story)


async def send_related(update: Update, context: NewsContext, story: Story) -> None:
    """Send the related-stories message of `story`."""
    store = context.store
    sections: list[str] = [f"<b>Related to: {esc(story.title)}</b>"]
    shown: set[int] = {story.id}
    if story.related:
        resolved = await store.ids_by_title(link.title for link in story.related)
        lines = []
        for link in story.related:
            story_id = resolved.get(link.title)
            if story_id is not None and story_id not in shown:
                shown.add(story_id)
                lines.append(f"• {esc(link.title)} · /read_{story_id}")
            elif link.url and is_http_url(link.url):
                lines.append(f'• <a href="{esc(link.url)}">{esc(link.title)}</a>')
            elif story_id is None:
                lines.append(f"• {esc(link.title)}")
        if lines:
            sections.append("<i>Also read (from the article)</i>\n" + "\n".join(lines))
    similar = [h for h in await similar_stories(context, story) if h.id not in shown]
    if similar:
        sections.append("<i>Similar stories</i>\n\n" + story_list(similar[:RELATED_SIMILAR]))
    if len(sections) == 1:
        sections.append("No related stories yet.")
    await reply(update, fit("\n\n".join(sections)))


async def similar_stories(context: NewsContext, story: Story) -> list[StoryHead]:
    """The stories most like `story`: from the related-stories index (LSA vectors), or,
    until its model is fitted, from an FTS5 "more like this" query."""
    index = context.bot_data.related
    ids = await index.similar(story.id, RELATED_SIMILAR + 1) if index is not None else None
    if ids is None:
        return await context.store.more_like_this(story, RELATED_SIMILAR + 1)
    heads = await context.store.heads(ids)
    return [heads[i] for i in ids if i in heads]


@dataclass(frozen=True, slots=True)
class StoryButton:
    """A parsed Summary / Full text / Related / Highlights button."""

    action: str
    story_id: int


_STORY_BUTTON = re.compile(r"(summary|full|related|highlights):([0-9]{1,12})")


def parse_story_button(data: object) -> StoryButton | None:
    """The story button `data` names, or None for anything we did not make."""
    match = _STORY_BUTTON.fullmatch(data) if isinstance(data, str) else None
    story_id = ascii_int(match.group(2)) if match else None
    if match is None or not story_id:
        return None
    return StoryButton(match.group(1), story_id)


async def story_button(update: Update, context: NewsContext) -> None:
    """Answer the Summary / Full text / Related buttons under a story card."""
    query = update.callback_query
    assert query is not None
    button = parse_story_button(query.data)
    if button is None:
        await query.answer(BUTTON_EXPIRED)
        return
    if update.effective_chat is None:
        # A card sent through inline mode lives in someone else's chat: answer here.
        await query.answer(f"Open /read_{button.story_id} in a chat with me.", show_alert=True)
        return
    action = button.action
    pending = context.bot_data.long_replies.pending
    if action == "full" and (update.effective_chat.id, button.story_id, 1) in pending:
        await query.answer("The full text is on its way.")
        return
    try:
        story = await context.store.story(button.story_id)
    except NotFoundError:
        await query.answer("That story is no longer available.", show_alert=True)
        return
    if action == "full":
        await query.answer("Sending the full text…")
        await start_full(update, context, story, 1)
        return
    await query.answer()
    if action == "summary":
        await send_summary(update, context, story)
    elif action == "related":
        await send_related(update, context, story)
    elif action == "highlights":
        await send_highlights(update, context, story)
