"""The Article model: one story as parsed from any source, before it is stored.

Every source (plain text, JSON Lines, feeds, pages) builds an Article, so the bounds on its
fields live here, in one place: an over-long field is cut at a word boundary with "…" (an
over-long URL, which a cut would break, is dropped), a date more than a day ahead is stored
as unknown, and each such change is recorded in `notes` for the import to report.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

# Field bounds, in characters (README "Article formats"). Generous for real stories (the
# longest corpus headline is ~150 characters) and small enough that no single field can crowd
# a story card or a list of results out of a Telegram message.
MAX_TITLE = 300
MAX_AUTHOR = 200
MAX_SOURCE = 100
MAX_CATEGORY = 100
MAX_PLACE = 100
MAX_CAPTION = 500
MAX_RELATED = 50
MAX_URL = 2_048
MAX_ID = 2_048
# The whole body: about 50 Telegram messages of /full; real stories are a few thousand.
MAX_TEXT = 200_000
# A date further ahead than this is a mistake or a trick to pin a story to the top of /latest.
MAX_AHEAD = timedelta(days=1)

_CUT_TRIM = " \t\n,;:-\u2013\u2014"


def shorten(text: str, limit: int) -> str:
    """`text` cut to at most `limit` characters, at a word boundary when there is one in its
    second half, ending in "…"; unchanged when it fits."""
    if len(text) <= limit:
        return text
    head = text[: limit - 1]  # room for the ellipsis
    if not text[limit - 1].isspace():  # else the cut already falls between two words
        space = max(head.rfind(" "), head.rfind("\n"))
        if space >= limit // 2:
            head = head[:space]
    return head.rstrip(_CUT_TRIM) + "…"


@dataclass(frozen=True, slots=True)
class RelatedLink:
    """A link the article itself names ("Also read: ..."): a title and maybe a URL."""

    title: str
    url: str | None = None


@dataclass(frozen=True, slots=True)
class Article:
    """A parsed story. `published` is UTC-aware; `utc_offset_minutes`/`zone` keep the
    article's own zone for display. Fields are bounded on construction (module docstring)."""

    title: str
    body: tuple[str, ...]
    highlights: tuple[str, ...] = ()
    source: str | None = None
    author: str | None = None
    place: str | None = None
    published: datetime | None = None
    utc_offset_minutes: int | None = None
    zone: str | None = None
    url: str | None = None
    related: tuple[RelatedLink, ...] = ()
    category: str | None = None
    image_url: str | None = None
    caption: str | None = None
    guid: str | None = None
    external_id: str | None = None
    # Reference summary sentences shipped with an archive record (JSONL `summary`).
    reference_summary: tuple[str, ...] = field(default=(), compare=False)
    # What the bounds changed ("title cut to 300 characters ..."), for the import report.
    notes: tuple[str, ...] = field(default=(), compare=False)
    # The record's line in its file (JSON Lines), so a note can name it.
    line: int | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        notes: list[str] = []
        # Frozen: the bounded values are set the way dataclasses itself sets them.
        put = object.__setattr__
        title = _cut(self.title, MAX_TITLE, "title", notes)
        if title is not self.title:
            put(self, "title", title)
        for name, limit in (
            ("source", MAX_SOURCE),
            ("author", MAX_AUTHOR),
            ("place", MAX_PLACE),
            ("category", MAX_CATEGORY),
            ("caption", MAX_CAPTION),
        ):
            value: str | None = getattr(self, name)
            if value is not None and len(value) > limit:
                put(self, name, _cut(value, limit, name, notes))
        for name in ("url", "image_url", "guid"):
            value = getattr(self, name)
            if value is not None and len(value) > MAX_URL:
                notes.append(f"{name} dropped: {len(value):,} characters, over {MAX_URL:,}")
                put(self, name, None)
        if self.external_id is not None and len(self.external_id) > MAX_ID:
            notes.append(f"id dropped: {len(self.external_id):,} characters, over {MAX_ID:,}")
            put(self, "external_id", None)
        if self.related and (
            len(self.related) > MAX_RELATED
            or any(
                len(link.title) > MAX_TITLE or len(link.url or "") > MAX_URL
                for link in self.related
            )
        ):
            put(self, "related", _bound_related(self.related, notes))
        # (isinstance: the store's tests hand it a malformed Article to see a batch roll back.)
        if sum(len(p) for p in self.body if isinstance(p, str)) > MAX_TEXT:
            put(self, "body", _bound_body(self.body, notes))
        if self.published is not None and _too_far_ahead(self.published):
            notes.append(
                f"date {self.published:%Y-%m-%d %H:%M} UTC is more than a day ahead: stored as "
                "unknown (the story is ordered by its import time)"
            )
            put(self, "published", None)
            put(self, "utc_offset_minutes", None)
            put(self, "zone", None)
        if notes:
            put(self, "notes", (*self.notes, *notes))

    @property
    def text(self) -> str:
        """The body as one string, paragraphs separated by a blank line."""
        return "\n\n".join(self.body)


def _cut(value: str, limit: int, name: str, notes: list[str]) -> str:
    if len(value) <= limit:
        return value
    notes.append(f"{name} cut to {limit:,} characters (it had {len(value):,})")
    return shorten(value, limit)


def _bound_related(related: tuple[RelatedLink, ...], notes: list[str]) -> tuple[RelatedLink, ...]:
    if len(related) > MAX_RELATED:
        notes.append(f"related links cut to the first {MAX_RELATED} (it had {len(related):,})")
        related = related[:MAX_RELATED]
    out: list[RelatedLink] = []
    for link in related:
        title, url = link.title, link.url
        if len(title) > MAX_TITLE:
            notes.append(
                f"related-link title cut to {MAX_TITLE} characters (it had {len(title):,})"
            )
            title = shorten(title, MAX_TITLE)
        if url is not None and len(url) > MAX_URL:
            notes.append(f"related-link url dropped: {len(url):,} characters, over {MAX_URL:,}")
            url = None
        out.append(link if (title, url) == (link.title, link.url) else RelatedLink(title, url))
    return tuple(out)


def _bound_body(body: tuple[str, ...], notes: list[str]) -> tuple[str, ...]:
    total = sum(map(len, body))
    notes.append(f"text cut to {MAX_TEXT:,} characters (it had {total:,})")
    kept: list[str] = []
    room = MAX_TEXT
    for paragraph in body:
        if len(paragraph) > room:
            if room >= 2:
                kept.append(shorten(paragraph, room))
            break
        kept.append(paragraph)
        room -= len(paragraph)
    return tuple(kept)


def _too_far_ahead(moment: datetime) -> bool:
    aware = moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
    return aware > datetime.now(UTC) + MAX_AHEAD


class ParseError(ValueError):
    """A source could not be read as an article; the message says why."""

    def __init__(self, message: str, *, line: int | None = None) -> None:
        super().__init__(message)
        self.line = line
