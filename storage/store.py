"""The Store: every SQL statement of newsbot lives here, always with bound parameters."""

from __future__ import annotations

import json
import logging
import math
import secrets
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from news.articles import Article, RelatedLink
from news.neardup import NearDupSignature, is_near_duplicate, same_content, signature_of_words
from news.query import Doc, Query, field_key
from news.text import hash_words, terms, words
from news.urls import host_of
from storage.alerts import AlertsStore
from storage.bands import BandIndex, pack_bands
from storage.base import from_iso, iso
from storage.feeds import FeedsStore
from storage.models import AddResult, NotFoundError, SearchPage, Story, StoryHead
from storage.related import RelatedStore

log = logging.getLogger(__name__)

# Saved searches: 12 random bytes (16 characters) fit a button's 64 bytes with room to
# spare and cannot be guessed; a month is longer than anyone pages through old results.
SAVED_SEARCH_TOKEN_BYTES = 12
SAVED_SEARCH_DAYS = 30

_HEAD_COLUMNS = "id, title, source, published, utc_offset, zone, category"
_STORY_COLUMNS = (
    "id, title, source, author, place, published, utc_offset, zone, url, category, "
    "highlights, generated_highlights, body, related_links, summary, image_url, caption, added_at"
)
_LATEST_ORDER = "coalesce(published, added_at) DESC, id DESC"
# Column weights for bm25: a hit in the title counts most, then the highlights.
_BM25 = "bm25(stories_fts, 10.0, 4.0, 1.0)"


def _field_key(value: str | None) -> str:
    """A category or source as filters compare it (news.query's rule, '' for none)."""
    return field_key(value) if value else ""


def _guid_scope(guid: str) -> str:
    """Where a guid is unique: its feed for a scoped one (`FEED#guid`, bot.feeds), its page
    for a URL with a #fragment, else its host."""
    if "#" in guid:
        return guid.rpartition("#")[0]
    return host_of(guid) or guid


def _distinct_items(a: str | None, b: str | None) -> bool:
    """True when two guids of one scope differ: two items their feed tells apart."""
    return bool(a and b and a != b and _guid_scope(a) == _guid_scope(b))


def _head(row: Sequence[Any]) -> StoryHead:
    return StoryHead(row[0], row[1], row[2], from_iso(row[3]), row[4], row[5], row[6])


def _story(row: Sequence[Any]) -> Story:
    added = from_iso(row[17])
    assert added is not None
    # The publisher's highlights when there are any, else ours.
    shown = row[10] or row[11] or ""
    return Story(
        id=row[0],
        title=row[1],
        source=row[2],
        author=row[3],
        place=row[4],
        published=from_iso(row[5]),
        utc_offset=row[6],
        zone=row[7],
        url=row[8],
        category=row[9],
        highlights=tuple(shown.split("\n")) if shown else (),
        highlights_generated=bool(shown) and not row[10],
        body=tuple(row[12].split("\n\n")) if row[12] else (),
        related=tuple(RelatedLink(title, url) for title, url in json.loads(row[13])),
        summary=tuple(json.loads(row[14])) if row[14] else None,
        image_url=row[15],
        caption=row[16],
        added_at=added,
    )


_INSERT_STORY = """
    INSERT INTO stories (id, title, source, author, place, published, utc_offset, zone, url,
        guid, external_id, category, category_key, source_key, highlights, body,
        related_links, image_url, caption, content_hash, added_at)
    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
"""


@dataclass(frozen=True, slots=True)
class Prepared:
    """An article with what storing it needs computed once: its dedup hash and its
    near-duplicate signature. `Prepared.of` may run in a worker thread."""

    article: Article
    body: str
    digest: str
    near: NearDupSignature
    doc: Doc | None = None  # for topic matching, when subscriptions exist

    @classmethod
    def of(cls, article: Article, *, with_doc: bool = False) -> Prepared:
        """Compute what storing `article` needs (CPU only: callable from any thread)."""
        return cls.of_words(article, words(article.title), words(article.text), with_doc=with_doc)

    @classmethod
    def of_words(
        cls,
        article: Article,
        title_words: list[str],
        body_words: list[str],
        *,
        with_doc: bool = False,
    ) -> Prepared:
        """`of` for an article whose title and text `news.text.words` has split already
        (the importer splits them once for this and for the related-stories vectors)."""
        return cls(
            article,
            article.text,
            hash_words(title_words, body_words),
            signature_of_words(title_words, body_words),
            Doc.from_article(article) if with_doc else None,
        )

    def row(self, story_id: int, now: str) -> tuple[Any, ...]:
        """The stories row (in _INSERT_STORY's column order)."""
        a = self.article
        return (
            story_id,
            a.title,
            a.source,
            a.author,
            a.place,
            iso(a.published),
            a.utc_offset_minutes,
            a.zone,
            a.url,
            a.guid,
            a.external_id,
            a.category,
            _field_key(a.category),
            _field_key(a.source),
            "\n".join(h.replace("\n", " ") for h in a.highlights),
            self.body,
            json.dumps([[link.title, link.url] for link in a.related]),
            a.image_url,
            a.caption,
            self.digest,
            now,
        )


@dataclass
class _NearIndex:
    """Candidate near-duplicates of one batch: their signatures, by story id, and the band
    index (stories of the batch itself join it as they are accepted)."""

    bands: BandIndex
    signatures: dict[int, NearDupSignature] = field(default_factory=dict)

    def duplicate_of(self, sig: NearDupSignature) -> int | None:
        """The earliest known story `sig` nearly duplicates, if any."""
        for story_id in sorted(self.bands.candidates(sig.bands)):
            known = self.signatures.get(story_id)
            if known is not None and is_near_duplicate(sig, known):
                return story_id
        return None

    def add(self, story_id: int, sig: NearDupSignature) -> None:
        """Make a newly accepted story a candidate for the rest of the batch."""
        self.signatures[story_id] = sig
        self.bands.add(story_id, sig.bands)


class Store(AlertsStore, FeedsStore, RelatedStore):
    """newsbot's SQLite database: stories, their full-text index, and what hangs off them
    (topic alerts in storage/alerts.py, feeds in storage/feeds.py, the related-stories
    index in storage/related.py)."""

    # Loaded on the first import of this process (storage/bands.py).
    _bands: BandIndex | None = None

    # -- adding stories --------------------------------------------------------------

    async def add_article(self, article: Article) -> AddResult:
        """Store one article unless it is a duplicate; see `add_articles`."""
        return (await self.add_articles([article]))[0]

    async def add_articles(self, articles: Sequence[Article | Prepared]) -> list[AddResult]:
        """Store articles in one transaction; a repeat is reported as a duplicate (with its
        reason) and not stored twice. Two items are one story when they share a feed guid,
        or the same folded title and body, or one canonical URL *and* one text (a teaser of
        it included), or a near-duplicate text under another headline; but the last two
        never when both carry different guids of one feed: a shared homepage link never
        merges distinct items."""
        prepared = [a if isinstance(a, Prepared) else Prepared.of(a) for a in articles]
        now = datetime.now(UTC).isoformat(timespec="seconds")
        results: list[AddResult] = []
        async with self.transaction() as db:
            # Batched: a few statements per batch, not per story (each statement is a
            # round trip to aiosqlite's thread).
            by_url = await self._ids_by("url", {p.article.url for p in prepared})
            by_guid = await self._ids_by("guid", {p.article.guid for p in prepared})
            by_hash = await self._ids_by("content_hash", {p.digest for p in prepared})
            near = await self._near_candidates((p.near for p in prepared), by_url.values())
            guids = await self._guids_of(near.signatures)
            next_id = int(await self._one("SELECT coalesce(max(id), 0) + 1 FROM stories"))
            rows: list[tuple[Any, ...]] = []
            new: list[tuple[int, Article, Doc | None]] = []
            for item in prepared:
                article = item.article
                existing, reason = self._duplicate(item, by_guid, by_hash, by_url, near, guids)
                if existing is not None:
                    results.append(
                        AddResult(
                            "duplicate",
                            existing,
                            article.title,
                            duplicate_of=existing,
                            reason=reason,
                        )
                    )
                    continue
                story_id = next_id
                next_id += 1
                for index, key in ((by_url, article.url), (by_guid, article.guid)):
                    if key and key not in index:
                        index[key] = story_id
                by_hash.setdefault(item.digest, story_id)
                near.add(story_id, item.near)
                guids[story_id] = article.guid
                rows.append(item.row(story_id, now))
                new.append((story_id, article, item.doc))
                results.append(AddResult("new", story_id, article.title))
            if rows:
                await db.executemany(_INSERT_STORY, rows)
                await db.executemany(
                    "INSERT INTO stories_fts (rowid, title, highlights, body) VALUES (?, ?, ?, ?)",
                    [(row[0], row[1], row[14], row[15]) for row in rows],
                )
                await db.executemany(
                    "INSERT INTO story_signatures (story_id, signature, bands) VALUES (?, ?, ?)",
                    [
                        (
                            story_id,
                            near.signatures[story_id].to_bytes(),
                            pack_bands(near.signatures[story_id].bands),
                        )
                        for story_id, _, _ in new
                    ],
                )
                # Topic alerts are queued in this same transaction: a stored story always
                # has its alerts, and a rolled-back one never does.
                await self._queue_alerts(db, new)
        return results

    @staticmethod
    def _duplicate(
        item: Prepared,
        by_guid: dict[str, int],
        by_hash: dict[str, int],
        by_url: dict[str, int],
        near: _NearIndex,
        guids: dict[int, str | None],
    ) -> tuple[int | None, str | None]:
        """The story `item` repeats, and why; (None, None) for a new story."""
        article = item.article
        if article.guid and (found := by_guid.get(article.guid)) is not None:
            return found, "same guid"
        if (found := by_hash.get(item.digest)) is not None:
            return found, "same text"
        # Distinct guids of one feed say distinct items (podcast episodes with one blurb at
        # the show's homepage), unless the text is the very same (caught by its hash).
        if article.url and (found := by_url.get(article.url)) is not None:
            known = near.signatures.get(found)
            if (
                known is not None
                and not _distinct_items(article.guid, guids.get(found))
                and same_content(item.near, known)
            ):
                return found, "same URL and text"
        found = near.duplicate_of(item.near)
        if found is not None and not _distinct_items(article.guid, guids.get(found)):
            return found, "near-duplicate"
        return None, None

    async def _guids_of(self, ids: Iterable[int]) -> dict[int, str | None]:
        """The feed guids of stored stories, by id (for the near-duplicate rule)."""
        wanted = sorted(ids)
        found: dict[int, str | None] = {}
        for start in range(0, len(wanted), 500):
            chunk = wanted[start : start + 500]
            marks = ",".join("?" * len(chunk))
            rows = await self._all(f"SELECT id, guid FROM stories WHERE id IN ({marks})", chunk)
            found.update((int(story_id), guid) for story_id, guid in rows)
        return found

    async def _near_candidates(
        self, signatures: Iterable[NearDupSignature], also: Iterable[int] = ()
    ) -> _NearIndex:
        """The band index, brought up to date with stories any process stored since, and
        the signatures of the stored stories sharing a band with any of `signatures`: the
        only stories a near-duplicate check has to look at (and those of the `also` ids:
        stories at the same URL). Called inside the write transaction, so no story can
        arrive meanwhile."""
        if self._bands is None:
            self._bands = BandIndex()
        bands = self._bands
        bands.add_blobs(
            await self._all(
                "SELECT story_id, bands FROM story_signatures WHERE story_id > ? "
                "ORDER BY story_id",
                (bands.max_id,),
            )
        )
        index = _NearIndex(bands)
        wanted = sorted(
            bands.candidates(band for sig in signatures for band in sig.bands) | set(also)
        )
        for start in range(0, len(wanted), 500):
            chunk = wanted[start : start + 500]
            marks = ",".join("?" * len(chunk))
            rows = await self._all(
                f"SELECT story_id, signature FROM story_signatures WHERE story_id IN ({marks})",
                chunk,
            )
            for story_id, blob in rows:
                index.signatures[story_id] = NearDupSignature.from_bytes(blob)
        return index

    async def _ids_by(self, column: str, values: set[str | None]) -> dict[str, int]:
        """Stored story ids by `column` value, for the non-empty `values`."""
        wanted = [v for v in values if v]
        found: dict[str, int] = {}
        for start in range(0, len(wanted), 500):
            chunk = wanted[start : start + 500]
            marks = ",".join("?" * len(chunk))
            rows = await self._all(
                f"SELECT {column}, min(id) FROM stories WHERE {column} IN ({marks}) "
                f"GROUP BY {column}",
                chunk,
            )
            found.update((value, int(story_id)) for value, story_id in rows)
        return found

    # -- reading stories -------------------------------------------------------------

    async def story(self, story_id: int) -> Story:
        """The story with this id; NotFoundError when there is none."""
        async with self._db.execute(
            f"SELECT {_STORY_COLUMNS} FROM stories WHERE id = ?", (story_id,)
        ) as cursor:
            row = await cursor.fetchone()
        if row is None:
            raise NotFoundError(f"no story {story_id}")
        return _story(row)

    async def heads(self, ids: Iterable[int]) -> dict[int, StoryHead]:
        """List forms of the stories with these ids (unknown ids left out)."""
        wanted = list(dict.fromkeys(ids))
        if not wanted:
            return {}
        marks = ",".join("?" * len(wanted))
        rows = await self._all(
            f"SELECT {_HEAD_COLUMNS} FROM stories WHERE id IN ({marks})", wanted
        )
        return {row[0]: _head(row) for row in rows}

    async def latest(self, limit: int, offset: int = 0) -> list[StoryHead]:
        """The newest stories, newest first."""
        rows = await self._all(
            f"SELECT {_HEAD_COLUMNS} FROM stories ORDER BY {_LATEST_ORDER} LIMIT ? OFFSET ?",
            (limit, offset),
        )
        return [_head(row) for row in rows]

    async def count_stories(self) -> int:
        """How many stories are stored."""
        return int(await self._one("SELECT count(*) FROM stories"))

    async def stats(self) -> dict[str, int]:
        """Everything `newsbot stats` and `/stats` report, by name, in display order."""
        return {
            "stories": await self.count_stories(),
            **await self._feed_stats(),
            **await self._alert_stats(),
        }

    async def search(self, query: Query, *, page: int = 0, per_page: int = 5) -> SearchPage:
        """Stories matching `query`, best first (newest first for filter-only queries)."""
        where: list[str] = []
        params: list[Any] = []
        fts = query.fts()
        for flt in query.filters:
            column = "category_key" if flt.field == "category" else "source_key"
            test = " OR ".join(
                f"instr(' ' || s.{column} || ' ', ' ' || ? || ' ') > 0" for _ in flt.values
            )
            where.append(f"{'NOT ' if flt.negated else ''}({test})")
            params.extend(flt.values)
        exclude = query.fts_exclude()
        if exclude is not None:
            # Filters with exclusions only (category:sport -football): FTS5 finds what to
            # leave out.
            where.append("s.id NOT IN (SELECT rowid FROM stories_fts WHERE stories_fts MATCH ?)")
            params.append(exclude)
        condition = "".join(f" AND {clause}" for clause in where)
        if fts is None:
            sql = (
                f"SELECT {_HEAD_COLUMNS} FROM stories s WHERE 1{condition} "
                f"ORDER BY {_LATEST_ORDER} LIMIT ? OFFSET ?"
            )
            args: list[Any] = params
        elif not where:
            # Rank and cut in the index first, then read only the page's stories: a join
            # before the LIMIT would read the row of every match of a common word.
            sql = (
                f"SELECT s.id, s.title, s.source, s.published, s.utc_offset, s.zone, s.category "
                f"FROM (SELECT rowid, {_BM25} AS rank FROM stories_fts "
                f"WHERE stories_fts MATCH ? ORDER BY rank LIMIT ? OFFSET ?) m "
                f"JOIN stories s ON s.id = m.rowid ORDER BY m.rank"
            )
            args = [fts]
        else:
            sql = (
                f"SELECT s.id, s.title, s.source, s.published, s.utc_offset, s.zone, s.category "
                f"FROM stories_fts JOIN stories s ON s.id = stories_fts.rowid "
                f"WHERE stories_fts MATCH ?{condition} ORDER BY {_BM25} LIMIT ? OFFSET ?"
            )
            args = [fts, *params]
        rows = await self._all(sql, [*args, per_page + 1, page * per_page])
        items = tuple(_head(row) for row in rows[:per_page])
        return SearchPage(items, page, len(rows) > per_page)

    async def bare_search(self, fts: str, limit: int) -> list[int]:
        """The bare FTS5 query behind `search`, for benchmarks: ids only."""
        rows = await self._all(
            f"SELECT rowid FROM stories_fts WHERE stories_fts MATCH ? ORDER BY {_BM25} LIMIT ?",
            (fts, limit),
        )
        return [row[0] for row in rows]

    async def ids_by_title(self, titles: Iterable[str]) -> dict[str, int]:
        """Stored stories whose title equals one of `titles` (case-insensitive), by title."""
        found: dict[str, int] = {}
        for title in dict.fromkeys(titles):
            story_id = await self._one(
                "SELECT id FROM stories WHERE title = ? COLLATE NOCASE ORDER BY id LIMIT 1",
                (title.strip(),),
            )
            if story_id is not None:
                found[title] = int(story_id)
        return found

    async def more_like_this(self, story: Story, limit: int = 5) -> list[StoryHead]:
        """Stories similar to `story`: an FTS5 query of its most distinctive terms."""
        counts = Counter(terms(" ".join((story.title, *story.highlights, *story.body))))
        counts = Counter({t: n for t, n in counts.items() if len(t) > 2 and not t.isdigit()})
        if not counts:
            return []
        total = await self.count_stories()
        candidates = [t for t, _ in counts.most_common(200)]
        marks = ",".join("?" * len(candidates))
        df = dict(
            await self._all(
                f"SELECT term, doc FROM stories_vocab WHERE term IN ({marks})", candidates
            )
        )
        scored = sorted(
            candidates,
            key=lambda t: -(1 + math.log(counts[t])) * math.log((total + 1) / (df.get(t, 0) + 1)),
        )
        best = scored[:12]
        expression = " OR ".join(f'"{t}"' for t in best)
        # The terms are stems already; FTS5 stems them again, which leaves a stem unchanged
        # in all but rare cases, and those only lose a little recall.
        rows = await self._all(
            f"SELECT s.id, s.title, s.source, s.published, s.utc_offset, s.zone, s.category "
            f"FROM stories_fts JOIN stories s ON s.id = stories_fts.rowid "
            f"WHERE stories_fts MATCH ? AND s.id != ? AND s.content_hash != "
            f"(SELECT content_hash FROM stories WHERE id = ?) ORDER BY {_BM25} LIMIT ?",
            (expression, story.id, story.id, limit),
        )
        return [_head(row) for row in rows]

    # -- computed once, stored -------------------------------------------------------

    async def set_summary(self, story_id: int, sentences: Sequence[str]) -> None:
        """Store the story's summary (computed once, on first request)."""
        async with self.transaction() as db:
            await db.execute(
                "UPDATE stories SET summary = ? WHERE id = ?",
                (json.dumps(list(sentences), ensure_ascii=False), story_id),
            )

    async def set_generated_highlights(self, story_id: int, sentences: Sequence[str]) -> None:
        """Store highlights generated for a story the publisher gave none (kept apart from
        the publisher's, which the full-text index covers)."""
        async with self.transaction() as db:
            await db.execute(
                "UPDATE stories SET generated_highlights = ? WHERE id = ?",
                ("\n".join(s.replace("\n", " ") for s in sentences), story_id),
            )

    # -- saved searches (search paging) ---------------------------------------------

    async def save_search(
        self, query: str, *, chat_id: int, user_id: int | None, now: datetime
    ) -> str:
        """A random token naming `query` for the paging buttons of one chat; searches older
        than SAVED_SEARCH_DAYS are forgotten on the way."""
        token = secrets.token_urlsafe(SAVED_SEARCH_TOKEN_BYTES)
        async with self.transaction() as db:
            await db.execute(
                "DELETE FROM saved_searches WHERE created_at < ?",
                (iso(now - timedelta(days=SAVED_SEARCH_DAYS)),),
            )
            await db.execute(
                """INSERT INTO saved_searches (token, chat_id, user_id, query, created_at)
                   VALUES (?, ?, ?, ?, ?)""",
                (token, chat_id, user_id, query, iso(now)),
            )
        return token

    async def saved_search(self, token: str, *, chat_id: int) -> str:
        """The query saved under `token` by chat `chat_id`; NotFoundError when unknown,
        forgotten or another chat's."""
        text = await self._one(
            "SELECT query FROM saved_searches WHERE token = ? AND chat_id = ?",
            (token, chat_id),
        )
        if text is None:
            raise NotFoundError("no such saved search in this chat")
        return str(text)
