"""Reading stories: /latest, /read, /highlights, /summary, /full, /related and the buttons."""

from __future__ import annotations

import logging
from dataclasses import replace

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Update

from handlers.common import UsageError, reply, reply_all, story_id_arg
from handlers.context import NewsContext
from handlers.render import bullets, esc, fit, split_text, story_card, story_list
from news.summarize import highlights as generate_highlights
from news.summarize import summarize
from news.urls import is_http_url
from storage import NotFoundError, Store, Story, StoryHead

log = logging.getLogger(__name__)

LATEST_DEFAULT = 5
LATEST_MAX = 20
RELATED_SIMILAR = 5


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
    """The whole text, split into several messages when long: /full ID."""
    story = await load_story(context.store, story_id_arg(context, "full"))
    await send_full(update, story)


async def send_full(update: Update, story: Story) -> None:
    """Send the full text of `story`."""
    title = f"<b>{esc(story.title[:300])}</b>"
    await reply_all(update, split_text(title, story.body or ("(This story has no text.)",)))


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


async def story_button(update: Update, context: NewsContext) -> None:
    """Answer the Summary / Full text / Related buttons under a story card."""
    query = update.callback_query
    assert query is not None
    assert query.data is not None
    action, _, raw_id = query.data.partition(":")
    story_id = int(raw_id) if raw_id.isdigit() else 0
    try:
        story = await context.store.story(story_id)
    except NotFoundError:
        await query.answer("That story is no longer available.", show_alert=True)
        return
    await query.answer()
    if action == "summary":
        await send_summary(update, context, story)
    elif action == "full":
        await send_full(update, story)
    elif action == "related":
        await send_related(update, context, story)
    elif action == "highlights":
        await send_highlights(update, context, story)
