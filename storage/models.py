"""Frozen dataclasses the store returns: never rows or cursors."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from news.articles import RelatedLink


class StorageError(Exception):
    """Base class of the store's own errors."""


class NotFoundError(StorageError, LookupError):
    """No story (or other record) with that id."""


@dataclass(frozen=True, slots=True)
class StoryHead:
    """What a list shows of a story."""

    id: int
    title: str
    source: str | None
    published: datetime | None
    utc_offset: int | None
    zone: str | None
    category: str | None


@dataclass(frozen=True, slots=True)
class Story:
    """A stored story, whole."""

    id: int
    title: str
    source: str | None
    author: str | None
    place: str | None
    published: datetime | None
    utc_offset: int | None
    zone: str | None
    url: str | None
    category: str | None
    highlights: tuple[str, ...]
    highlights_generated: bool
    body: tuple[str, ...]
    related: tuple[RelatedLink, ...]
    summary: tuple[str, ...] | None
    image_url: str | None
    caption: str | None
    added_at: datetime

    @property
    def head(self) -> StoryHead:
        """The list form of this story."""
        return StoryHead(
            self.id,
            self.title,
            self.source,
            self.published,
            self.utc_offset,
            self.zone,
            self.category,
        )


@dataclass(frozen=True, slots=True)
class AddResult:
    """What happened to one article handed to the store."""

    status: Literal["new", "duplicate"]
    story_id: int
    title: str
    duplicate_of: int | None = None
    # Why a duplicate is one: "same guid", "same URL and text", "same text", "near-duplicate".
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class SearchPage:
    """One page of search results, best first."""

    items: tuple[StoryHead, ...]
    page: int
    has_next: bool


@dataclass(frozen=True, slots=True)
class Feed:
    """A feed the bot polls, with its polling state."""

    id: int
    url: str
    title: str | None
    interval_s: int
    etag: str | None
    last_modified: str | None
    next_poll_at: datetime | None
    last_poll_at: datetime | None
    last_success_at: datetime | None
    last_error: str | None
    consecutive_failures: int
    first_failure_at: datetime | None
    paused_at: datetime | None
    stories_imported: int
    added_at: datetime
    ttl_minutes: int | None = None  # the feed's <ttl> on its last successful poll
    max_age_s: int | None = None  # its Cache-Control max-age then
