"""Feed polling and URL imports: news.feeds/news.pages fetch and parse, the store dedups
and stores (through the same path as every import, so topic alerts fire)."""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from news.articles import Article
from news.feeds import (
    FeedEntry,
    FeedError,
    ImportedEntry,
    fetch_feed,
    import_entries,
    is_feed_document,
    parse_feed,
    shared_links,
)
from news.fetch import Fetcher, FetchError
from news.pages import extract_page, page_to_article
from news.schedule import FeedState, after_poll, describe_interval, should_pause, spread
from news.urls import canonical_url, host_of, is_http_url
from storage import Store
from storage.models import Feed

log = logging.getLogger(__name__)

# At most this many feeds are fetched in one tick; a larger burst of due feeds (after an
# OPML import, or a long stop) is spread over the polling interval instead.
BURST = 8
CONCURRENCY = 4


@dataclass
class Duplicates:
    """Duplicates by reason ("same guid", "same text"...), each with the stories repeated."""

    by_reason: dict[str, list[int]] = field(default_factory=dict)

    def add(self, reason: str | None, story_id: int) -> None:
        """Count one duplicate of story `story_id`."""
        self.by_reason.setdefault(reason or "duplicate", []).append(story_id)

    def text(self) -> str:
        """ "2 same guid, 1 same text as #41": what each duplicate repeated."""
        parts = []
        for reason, ids in self.by_reason.items():
            distinct = sorted(set(ids))
            shown = ", ".join(f"#{i}" for i in distinct[:3]) + (", …" if len(distinct) > 3 else "")
            parts.append(f"{len(ids)} {reason} as {shown}")
        return ", ".join(parts)


def counts_text(new: int, duplicate: int, failed: int, duplicates: Duplicates) -> str:
    """ "5 new, 3 duplicate (2 same guid as #4, #5, 1 same text as #41), 0 failed"."""
    kinds = duplicates.text()
    return f"{new} new, {duplicate} duplicate{f' ({kinds})' if kinds else ''}, {failed} failed"


@dataclass
class PollReport:
    """What one poll of one feed did; `errors` names each item that failed, and why."""

    feed: Feed
    new: int = 0
    duplicate: int = 0
    failed: int = 0
    not_modified: bool = False
    error: str | None = None
    paused: bool = False
    new_ids: list[int] = field(default_factory=list)
    duplicates: Duplicates = field(default_factory=Duplicates)
    errors: list[str] = field(default_factory=list)

    def line(self) -> str:
        """One line for the terminal or a chat."""
        if self.error:
            state = "paused after failing for days" if self.paused else "failed"
            return f"#{self.feed.id} {self.feed.url}: {state}: {self.error}"
        if self.not_modified:
            return f"#{self.feed.id} {self.feed.url}: not modified"
        counts = counts_text(self.new, self.duplicate, self.failed, self.duplicates)
        return f"#{self.feed.id} {self.feed.url}: {counts}"


def scoped_guid(guid: str | None, feed_url: str) -> str | None:
    """A guid that is not a URL is only unique within its feed ("1", "2", ...): qualified
    with the feed, dedup by guid never merges stories of two feeds."""
    if guid and not is_http_url(guid):
        return f"{feed_url}#{guid}"
    return guid


def _scoped_guid(article: Article, feed_url: str) -> Article:
    return replace(article, guid=scoped_guid(article.guid, feed_url))


async def _new_entries(
    store: Store, entries: Sequence[FeedEntry], feed_url: str, duplicates: Duplicates
) -> list[FeedEntry]:
    """Entries not stored yet, checked before any page is fetched; the known ones are
    counted in `duplicates`."""
    fresh = []
    for entry in entries:
        url = canonical_url(entry.url) if entry.url else None
        known = await store.known_story(
            guid=scoped_guid(entry.guid, feed_url), url=url, title=entry.title
        )
        if known is None:
            fresh.append(entry)
        else:
            duplicates.add(known[1], known[0])
    return fresh


def item_error(item: ImportedEntry) -> str:
    """The report line of an item that gave no article: which item, and why."""
    return f"{item.entry.name}: {item.page_error or 'no usable title or text'}"


async def poll_feed(
    store: Store,
    fetcher: Fetcher,
    feed: Feed,
    now: datetime,
    *,
    rng: random.Random | None = None,
) -> PollReport:
    """Poll one feed: conditional GET, new items only (their pages fetched when the feed
    gives a teaser), stored; the feed's schedule, validators and errors recorded."""
    report = PollReport(feed)
    state = FeedState(
        interval_s=feed.interval_s,
        consecutive_failures=feed.consecutive_failures,
        first_failure_at=feed.first_failure_at,
        last_success_at=feed.last_success_at,
        next_poll_at=feed.next_poll_at,
        last_error=feed.last_error,
    )
    try:
        fetched = await fetch_feed(
            fetcher, feed.url, etag=feed.etag, last_modified=feed.last_modified
        )
    except (FetchError, FeedError) as error:
        reason = error.reason if isinstance(error, FetchError) else str(error)
        retry = error.retry_after_seconds if isinstance(error, FetchError) else None
        after = after_poll(state, now, ok=False, error=reason, retry_after_seconds=retry, rng=rng)
        report.error = reason
        report.paused = should_pause(after, now)
        await store.save_poll(
            feed.id,
            polled_at=now,
            next_poll_at=after.next_poll_at,
            consecutive_failures=after.consecutive_failures,
            first_failure_at=after.first_failure_at,
            last_success_at=after.last_success_at,
            last_error=reason,
            paused=report.paused,
        )
        log.warning("feed %s failed: %s", feed.url, reason)
        return report

    result, parsed = fetched.result, fetched.feed
    ttl = parsed.ttl_minutes if parsed else None
    after = after_poll(
        state, now, ok=True, ttl_minutes=ttl, max_age_seconds=result.max_age_seconds
    )
    if parsed is None:
        report.not_modified = True
    else:
        fresh = await _new_entries(store, parsed.entries, feed.url, report.duplicates)
        report.duplicate += len(parsed.entries) - len(fresh)
        for position, reason in parsed.skipped:
            report.failed += 1
            report.errors.append(f"item {position}: {reason}")
        imported = await import_entries(
            fetcher,
            fresh,
            feed_title=parsed.title or feed.title,
            no_page=shared_links(parsed),
        )
        articles = []
        for item in imported:
            if item.article is None:
                report.failed += 1
                report.errors.append(item_error(item))
            else:
                articles.append(_scoped_guid(item.article, feed.url))
        for stored in await store.add_articles(articles):
            if stored.status == "new":
                report.new += 1
                report.new_ids.append(stored.story_id)
            else:
                report.duplicate += 1
                report.duplicates.add(stored.reason, stored.story_id)
    moved = result.permanent_redirect_to
    await store.save_poll(
        feed.id,
        polled_at=now,
        next_poll_at=after.next_poll_at,
        consecutive_failures=0,
        first_failure_at=None,
        last_success_at=now,
        last_error=None,
        imported=report.new,
        etag=result.etag,
        last_modified=result.last_modified,
        title=parsed.title if parsed else None,
        new_url=canonical_url(moved) if moved else None,
        # A 304 carries no body, so no ttl: the last one seen still holds.
        hints=(ttl if parsed else feed.ttl_minutes, result.max_age_seconds),
    )
    return report


async def poll_due(
    store: Store,
    fetcher: Fetcher,
    now: datetime,
    *,
    interval: timedelta,
    rng: random.Random | None = None,
    burst: int = BURST,
) -> list[PollReport]:
    """Poll the feeds that are due, a few at a time (the Fetcher also limits each host);
    a burst beyond `burst` is rescheduled evenly over `interval`, hosts interleaved."""
    due = await store.due_feeds(now)
    if len(due) > burst:
        later = spread(due[burst:], now + interval / len(due), interval, host=_host)
        await store.schedule_feeds([(feed.id, when) for feed, when in later])
        due = due[:burst]
    limit = asyncio.Semaphore(CONCURRENCY)

    async def one(feed: Feed) -> PollReport:
        async with limit:
            return await poll_feed(store, fetcher, feed, now, rng=rng)

    return list(await asyncio.gather(*(one(feed) for feed in due)))


def interval_text(feed: Feed, default_s: int) -> str:
    """How often `feed` is polled and why ("every 5 min (ttl 5 min)", "backing off: 3
    failures"), given the NEWSBOT_POLL_SECONDS in force."""
    return describe_interval(
        feed.interval_s,
        configured_by="NEWSBOT_POLL_SECONDS"
        if feed.interval_s == default_s
        else "set for this feed",
        ttl_minutes=feed.ttl_minutes,
        max_age_seconds=feed.max_age_s,
        failures=feed.consecutive_failures,
    )


def _host(feed: Feed) -> str:
    return host_of(feed.url) or ""


async def articles_from_url(fetcher: Fetcher, url: str) -> tuple[list[Article], list[str]]:
    """The stories at a URL: every item of a feed (teaser pages fetched), or the article of
    a page; and, for each item that failed, which one and why."""
    result = await fetcher.get(url)
    if is_feed_document(result.body, result.content_type):
        parsed = await asyncio.to_thread(
            parse_feed, result.body, url=result.url, content_type=result.content_type
        )
        imported = await import_entries(
            fetcher, parsed.entries, feed_title=parsed.title, no_page=shared_links(parsed)
        )
        articles = [_scoped_guid(i.article, result.url) for i in imported if i.article]
        errors = [f"item {position}: {reason}" for position, reason in parsed.skipped]
        errors += [item_error(i) for i in imported if i.article is None]
        return articles, errors
    page = await asyncio.to_thread(
        extract_page, result.body, url=result.url, content_type=result.content_type
    )
    return [page_to_article(page)], []
