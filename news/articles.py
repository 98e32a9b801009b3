"""The Article model: one story as parsed from any source, before it is stored."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime


@dataclass(frozen=True, slots=True)
class RelatedLink:
    """A link the article itself names ("Also read: ..."): a title and maybe a URL."""

    title: str
    url: str | None = None


@dataclass(frozen=True, slots=True)
class Article:
    """A parsed story. `published` is UTC-aware; `utc_offset_minutes`/`zone` keep the
    article's own zone for display."""

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

    @property
    def text(self) -> str:
        """The body as one string, paragraphs separated by a blank line."""
        return "\n\n".join(self.body)


class ParseError(ValueError):
    """A source could not be read as an article; the message says why."""

    def __init__(self, message: str, *, line: int | None = None) -> None:
        super().__init__(message)
        self.line = line
