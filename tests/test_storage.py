"""The store on a real SQLite file: migrations, dedup, ordering, durability."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from news.articles import Article, RelatedLink
from storage import NotFoundError, Store
from storage.migrations import MIGRATIONS


def article(title: str, *paragraphs: str, **fields: object) -> Article:
    return Article(title=title, body=paragraphs or (f"Body of {title}.",), **fields)  # type: ignore[arg-type]


def schema(path: Path) -> list[tuple[str, str]]:
    with sqlite3.connect(path) as db:
        return sorted(
            (name, sql or "")
            for name, sql in db.execute("SELECT name, sql FROM sqlite_master")
            if not name.startswith("sqlite_")
        )


async def test_migrations_are_recorded_once_and_reopening_changes_nothing(db_path: Path) -> None:
    store = await Store.open(db_path)
    await store.close()
    first = schema(db_path)
    store = await Store.open(db_path)
    await store.close()
    assert schema(db_path) == first
    with sqlite3.connect(db_path) as db:
        names = [row[0] for row in db.execute("SELECT name FROM migrations ORDER BY name")]
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert names == [m.name for m in MIGRATIONS]


async def test_migrating_step_by_step_equals_a_fresh_database(tmp_path: Path) -> None:
    """A database migrated one release at a time ends as a fresh one does."""
    import storage.migrations as migrations

    stepwise = tmp_path / "stepwise.db"
    everything = migrations.MIGRATIONS
    try:
        for count in range(1, len(everything) + 1):
            migrations.MIGRATIONS = everything[:count]
            store = await Store.open(stepwise)
            await store.close()
    finally:
        migrations.MIGRATIONS = everything
    fresh = tmp_path / "fresh.db"
    store = await Store.open(fresh)
    await store.close()
    assert schema(stepwise) == schema(fresh)


async def test_story_round_trips_every_field(store: Store) -> None:
    published = datetime(2020, 8, 17, 16, 42, tzinfo=UTC)
    original = Article(
        title="Putin offers help",
        body=("First paragraph.", "Second paragraph."),
        highlights=("A highlight.", "Another one."),
        source="WION",
        author="Palki Sharma",
        place="New Delhi, Delhi, India",
        published=published,
        utc_offset_minutes=330,
        zone="IST",
        url="https://example.com/a",
        related=(RelatedLink("Other story"), RelatedLink("Linked", "https://example.com/b")),
        category="world",
        image_url="https://example.com/a.jpg",
        caption="Lukashenko and Putin",
    )
    [result] = await store.add_articles([original])
    assert result.status == "new"
    story = await store.story(result.story_id)
    assert story.title == original.title
    assert story.body == original.body
    assert story.highlights == original.highlights
    assert not story.highlights_generated
    assert (story.source, story.author, story.place) == ("WION", "Palki Sharma", original.place)
    assert story.published == published
    assert (story.utc_offset, story.zone) == (330, "IST")
    assert story.url == original.url
    assert story.related == original.related
    assert story.category == "world"
    assert (story.image_url, story.caption) == (original.image_url, original.caption)
    assert story.summary is None


async def test_unknown_id_raises_not_found(store: Store) -> None:
    with pytest.raises(NotFoundError):
        await store.story(12345)


async def test_duplicates_by_url_then_by_folded_title_and_body(store: Store) -> None:
    rivers = " ".join(f"River gauge {n} rose by {n * 3} centimetres overnight." for n in range(9))
    first = article("Flood warning", rivers, url="https://example.com/flood")
    # Same URL and (nearly) the same text: an update of one story.
    same_url = article("Flood warning (updated)", rivers + " Rivers rise fast.", url=first.url)
    same_text = article("FLOOD   warning!", rivers.upper())
    other = article("Flood warning", "Rivers fall.")
    # Same URL, another text: a second item behind one shared link (issue 9).
    shared_link = article("Ferry timetable", "Ferries run hourly.", url=first.url)
    results = await store.add_articles([first, same_url, same_text, other, shared_link])
    assert [r.status for r in results] == ["new", "duplicate", "duplicate", "new", "new"]
    assert results[1].duplicate_of == results[0].story_id
    assert results[1].reason == "same URL and text"
    assert results[2].duplicate_of == results[0].story_id
    assert results[2].reason == "same text"
    assert await store.count_stories() == 3
    # Re-importing is idempotent.
    again = await store.add_articles([first, other])
    assert [r.status for r in again] == ["duplicate", "duplicate"]


async def test_latest_is_newest_first_with_undated_stories_by_arrival(store: Store) -> None:
    base = datetime(2024, 1, 1, tzinfo=UTC)
    await store.add_articles(
        [
            article("Old", published=base),
            article("Newest", published=base + timedelta(days=2)),
            article("Middle", published=base + timedelta(days=1)),
        ]
    )
    titles = [h.title for h in await store.latest(3)]
    assert titles == ["Newest", "Middle", "Old"]
    assert [h.title for h in await store.latest(2, offset=1)] == ["Middle", "Old"]


async def test_summary_and_generated_highlights_are_stored_once(store: Store) -> None:
    [result] = await store.add_articles([article("Plain", "One. Two. Three.")])
    await store.set_summary(result.story_id, ["One.", "Two."])
    await store.set_generated_highlights(result.story_id, ["Three."])
    story = await store.story(result.story_id)
    assert story.summary == ("One.", "Two.")
    assert story.highlights == ("Three.",)
    assert story.highlights_generated


async def test_committed_stories_survive_a_reopen(db_path: Path) -> None:
    store = await Store.open(db_path)
    await store.add_articles([article("Kept")])
    await store.close()
    store = await Store.open(db_path)
    try:
        assert [h.title for h in await store.latest(5)] == ["Kept"]
    finally:
        await store.close()


async def test_a_failed_batch_leaves_nothing_half_written(store: Store) -> None:
    good = article("Good")
    bad = Article(title="Bad", body=(None,))  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        await store.add_articles([good, bad])
    assert await store.count_stories() == 0
    [result] = await store.add_articles([good])
    assert result.status == "new"


async def test_titles_resolve_case_insensitively(store: Store) -> None:
    [result] = await store.add_articles([article("Belarus: what next")])
    found = await store.ids_by_title(["belarus: WHAT next", "Missing"])
    assert found == {"belarus: WHAT next": result.story_id}


async def test_saved_searches_are_unguessable_and_belong_to_their_chat(store: Store) -> None:
    now = datetime(2025, 3, 1, tzinfo=UTC)
    first = await store.save_search("belarus protests", chat_id=5, user_id=5, now=now)
    again = await store.save_search("belarus protests", chat_id=5, user_id=5, now=now)
    assert first != again
    assert len(first) >= 16
    assert await store.saved_search(first, chat_id=5) == "belarus protests"
    with pytest.raises(NotFoundError):
        await store.saved_search(first, chat_id=6)  # another chat's
    with pytest.raises(NotFoundError):
        await store.saved_search("1", chat_id=5)
    # Searches older than a month are forgotten when new ones are saved.
    await store.save_search("later", chat_id=5, user_id=5, now=now + timedelta(days=31))
    with pytest.raises(NotFoundError):
        await store.saved_search(first, chat_id=5)


async def test_one_shared_link_never_merges_distinct_items(store: Store) -> None:
    """Issue 9: podcast episodes with distinct guids behind the show's homepage."""
    blurb = " ".join(
        f"Episode notes sentence {n} about the harbour and its boats." for n in range(8)
    )
    home = "https://harbour-radio.example/"
    feed = "https://harbour-radio.example/podcast.xml"
    one = article("Episode 1", blurb + " Guest: a lock keeper.", url=home, guid=f"{feed}#ep-1")
    two = article("Episode 2", blurb + " Guest: a ferry pilot.", url=home, guid=f"{feed}#ep-2")
    # The same episode through another feed (its guid scoped to that feed) is one story.
    mirror = article("Episode 1", blurb + " Guest: a lock keeper.", url=home, guid="m.xml#1")
    results = await store.add_articles([one, two, mirror])
    assert [r.status for r in results] == ["new", "new", "duplicate"]
    assert results[2].reason == "same text"
    assert await store.count_stories() == 2


async def test_a_teaser_at_the_same_url_is_the_full_story(store: Store) -> None:
    paragraphs = [
        f"Paragraph {n}: the council met on Tuesday to discuss the {n}th bridge repair plan."
        for n in range(12)
    ]
    url = "https://example.com/bridges"
    full = article("Bridge repairs agreed", *paragraphs, url=url, guid="a.xml#7")
    teaser = article("Bridge repairs agreed at last", *paragraphs[:4], url=url, guid="b.xml#x")
    elsewhere = article("Bridge repairs agreed at last", *paragraphs[:4], url=url + "/other")
    results = await store.add_articles([full, teaser, elsewhere])
    assert [r.status for r in results] == ["new", "duplicate", "new"]
    assert results[1].reason == "same URL and text"
