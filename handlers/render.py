"""Pure text/HTML formatting of the bot's messages, and message splitting.

Every piece of article or user text goes through `esc` (quotes included, so it is safe
inside attributes too) and every URL in an attribute through `href`; no message exceeds
Telegram's 4096 characters.
"""

from __future__ import annotations

import html
import re
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta, timezone

from news.urls import is_http_url
from storage.models import Story, StoryHead

MAX_MESSAGE = 4096
# A title in a list or card: long enough for any real headline, short enough that a
# hostile 5,000-character one cannot push every other story out of the message.
MAX_TITLE = 200
_SENTENCE_END = re.compile(r"(?<=[.!?…])\s+")


def esc(text: str) -> str:
    """Escape text for Telegram's HTML parse mode, quotes too (safe in attributes)."""
    return html.escape(text, quote=True)


def clip(text: str, limit: int) -> str:
    """`text` on one line, cut at a word to at most `limit` characters with "…"."""
    text = " ".join(text.split())
    if len(text) <= limit:
        return text
    cut = text[: limit - 1]
    space = cut.rfind(" ")
    if space > limit // 2:
        cut = cut[:space]
    return cut.rstrip() + "…"


def href(url: str) -> str | None:
    """`url` escaped for an `href="…"` attribute, or None when it is not an http(s) URL
    (javascript:, data:, quotes or spaces that could end the attribute early)."""
    if not is_http_url(url) or any(c.isspace() or c in "\"'<>`" for c in url):
        return None
    return esc(url)


def link(url: str | None, text: str) -> str:
    """`text` as a link to `url` when that is a safe http(s) URL, else as plain text."""
    target = href(url) if url else None
    return f'<a href="{target}">{esc(text)}</a>' if target else esc(text)


def format_date(published: datetime | None, utc_offset: int | None, zone: str | None) -> str:
    """A story's date: in the article's own zone when it gave one, else in UTC."""
    if published is None:
        return ""
    if utc_offset is not None:
        local = published.astimezone(timezone(timedelta(minutes=utc_offset)))
        label = zone or _offset_label(utc_offset)
    else:
        local = published.astimezone(UTC)
        label = "UTC"
    if local.hour == 0 and local.minute == 0 and utc_offset is None:
        return f"{local.day} {local:%b %Y}"  # a date without a time of day
    return f"{local.day} {local:%b %Y, %H:%M} {label}"


def _offset_label(minutes: int) -> str:
    if minutes == 0:
        return "UTC"
    sign = "+" if minutes >= 0 else "-"
    hours, mins = divmod(abs(minutes), 60)
    return f"UTC{sign}{hours:02d}:{mins:02d}"


def byline(head: StoryHead) -> str:
    """Source and date of a story, as one escaped line."""
    parts = [esc(head.source)] if head.source else []
    when = format_date(head.published, head.utc_offset, head.zone)
    if when:
        parts.append(when)
    return " · ".join(parts)


def story_list(heads: Sequence[StoryHead], *, start: int = 1) -> str:
    """A numbered list of stories, each with its clickable /read_ID command."""
    lines: list[str] = []
    for number, head in enumerate(heads, start):
        meta = byline(head)
        meta = f"{meta} · /read_{head.id}" if meta else f"/read_{head.id}"
        lines.append(f"{number}. <b>{esc(clip(head.title, MAX_TITLE))}</b>\n{meta}")
    return "\n\n".join(lines)


def bullets(items: Sequence[str]) -> str:
    """Items as a bullet list."""
    return "\n".join(f"• {esc(item)}" for item in items)


def story_card(story: Story) -> str:
    """The /read card: title, source, date, author, place, highlights, commands."""
    parts = [f"<b>{esc(clip(story.title, MAX_TITLE * 2))}</b>"]
    meta = byline(story.head)
    if meta:
        parts.append(meta)
    people = [f"By {esc(story.author)}"] if story.author else []
    if story.place:
        people.append(esc(story.place))
    if people:
        parts.append("<i>" + " · ".join(people) + "</i>")
    if story.highlights:
        parts.append(bullets(story.highlights))
    parts.append(f"/summary_{story.id} · /full_{story.id} · /related_{story.id}")
    return fit("\n\n".join(parts[:-1]), parts[-1])


def fit(body_html: str, footer_html: str = "") -> str:
    """Join body and footer within Telegram's limit: whole blocks (paragraphs or list items,
    separated by a blank line) are kept from the start while they fit. Lines are never
    cut, so no tag is split: a line too long for any message is left out, and a block
    holding one keeps its other lines; "…" marks what was left out."""
    text = f"{body_html}\n\n{footer_html}" if footer_html else body_html
    if len(text) <= MAX_MESSAGE:
        return text
    room = MAX_MESSAGE - len(footer_html) - 8  # "\n…" and the separators
    kept: list[str] = []
    size = 0
    for block in body_html.split("\n\n"):
        if len(block) > room:
            # Longer than any message: its lines that could ever fit, as far as they go.
            lines = [line for line in block.split("\n") if len(line) < room // 2]
            partial: list[str] = []
            for line in lines:
                if size + len("\n".join([*partial, line])) + 2 > room:
                    break
                partial.append(line)
            if partial:
                kept.append("\n".join(partial))
                size += len(kept[-1]) + 2
            if len(partial) < len(lines):
                break
            continue
        if size + len(block) + 2 > room:
            break
        kept.append(block)
        size += len(block) + 2
    body = "\n\n".join(kept) + "\n…" if kept else "…"
    return f"{body}\n\n{footer_html}" if footer_html else body


def split_text(title_html: str, paragraphs: Sequence[str], limit: int = MAX_MESSAGE) -> list[str]:
    """Long text as messages split at paragraph boundaries, each numbered (1/3) when there
    is more than one; a paragraph longer than a message is cut at sentences, then words."""
    # Leave room for the "(12/34)" marker and the title on the first message.
    room = limit - 16 - len(title_html) - 2
    if room < 200:
        raise ValueError("title too long to leave room for text")
    pieces: list[str] = []
    for paragraph in paragraphs:
        pieces.extend(_cut(paragraph, room))
    chunks: list[list[str]] = [[]]
    size = 0
    for piece in pieces:
        escaped = esc(piece)
        if chunks[-1] and size + 2 + len(escaped) > room:
            chunks.append([])
            size = 0
        chunks[-1].append(escaped)
        size += len(escaped) + 2
    messages = ["\n\n".join(chunk) for chunk in chunks]
    messages[0] = f"{title_html}\n\n{messages[0]}" if messages[0] else title_html
    if len(messages) == 1:
        return messages
    total = len(messages)
    return [f"<i>({n}/{total})</i>\n{text}" for n, text in enumerate(messages, 1)]


def _cut(paragraph: str, room: int) -> list[str]:
    """One paragraph as pieces whose escaped length fits in `room`."""
    if len(esc(paragraph)) <= room:
        return [paragraph]
    pieces: list[str] = []
    current = ""
    for unit in _units(paragraph, room):
        candidate = f"{current} {unit}" if current else unit
        if len(esc(candidate)) > room and current:
            pieces.append(current)
            current = unit
        else:
            current = candidate
    if current:
        pieces.append(current)
    return pieces


def _units(paragraph: str, room: int) -> list[str]:
    """Sentences, or words of an over-long sentence, or slices of an over-long word."""
    units: list[str] = []
    for sentence in _SENTENCE_END.split(paragraph):
        if len(esc(sentence)) <= room:
            units.append(sentence)
            continue
        for word in sentence.split():
            # A single "word" longer than a message (a URL, a hostile paste) is sliced;
            # room // 5 keeps even an all-"&" slice within room once escaped.
            step = room // 5
            units.extend(word[i : i + step] for i in range(0, len(word), step))
    return units
