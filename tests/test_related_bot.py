"""Issue 9: the similar stories readers get through the bot (/related and the card's Related
button) come from the related-stories index once a model is fitted, and from the FTS5
"more like this" query only before."""

from __future__ import annotations

import random
import re
from pathlib import Path

from bot.related import RelatedStories, ensure_model
from news.articles import Article
from storage import Store
from tests.chat import Reader
from tests.fakes.botapi import FakeBotAPI

TOPICS = {
    "harbour": "harbour ferry boats quay sailing fishermen tide moorings crossing island",
    "football": "football match goal striker league referee penalty stadium coach season",
    "election": "election votes ballot candidates parliament campaign polling turnout party",
}
# Words of the target story alone: its twelve most distinctive terms, which are all the
# FTS5 "more like this" query asks for, so that query finds no other story.
OWN_WORDS = [
    "zephyrine",
    "quillomar",
    "brastovic",
    "yendrath",
    "olvanic",
    "murtessa",
    "kelbrine",
    "tossavar",
    "ulmquist",
    "parandel",
    "vosquith",
    "lerrantine",
]


def _body(rng: random.Random, topic: str, words: int = 40) -> str:
    vocab = TOPICS[topic].split()
    return " ".join(rng.choice(vocab) for _ in range(words)) + "."


def _archive() -> list[Article]:
    rng = random.Random(11)
    stories = [
        Article(title=f"{topic.title()} story {n}", body=(_body(rng, topic),), category=topic)
        for topic in TOPICS
        for n in range(10)
    ]
    own = " ".join(OWN_WORDS * 3)
    target = Article(
        title="Quayside notes",
        body=(f"{_body(rng, 'harbour', 30)} {own}.",),
        category="harbour",
    )
    return [*stories, target]


def _listed_ids(text: str) -> list[int]:
    similar = text.split("Similar stories", 1)[1] if "Similar stories" in text else ""
    return [int(i) for i in re.findall(r"/read_(\d+)", similar)]


async def _stored_archive(db_path: Path, *, fit: bool) -> int:
    store = await Store.open(db_path)
    try:
        await store.add_articles(_archive())
        if fit:
            assert (await ensure_model(store)).fitted
        return (await store.ids_by_title(["Quayside notes"]))["Quayside notes"]
    finally:
        await store.close()


async def test_related_lists_the_index_ranking_once_a_model_is_fitted(
    bot: object, botapi: FakeBotAPI, db_path: Path
) -> None:
    target = await _stored_archive(db_path, fit=True)
    store = await Store.open(db_path)
    try:
        ranked = await RelatedStories(store).similar(target, 6)
        heads = await store.heads(ranked or [])
        fts = await store.more_like_this(await store.story(target), 6)
    finally:
        await store.close()
    assert ranked is not None
    # The query words are the target's own: the FTS5 query finds nothing to list...
    assert fts == []
    reader = Reader(botapi, 5151)
    text = await reader.ask(f"/related {target}")
    listed = _listed_ids(text)
    # ...while the index ranks stories of its topic that share none of those words.
    assert listed == ranked[:5]
    assert all(heads[i].category == "harbour" for i in listed)
    assert target not in listed


async def test_related_button_lists_the_index_ranking_too(
    bot: object, botapi: FakeBotAPI, db_path: Path
) -> None:
    target = await _stored_archive(db_path, fit=True)
    store = await Store.open(db_path)
    try:
        ranked = await RelatedStories(store).similar(target, 6)
    finally:
        await store.close()
    assert ranked is not None
    reader = Reader(botapi, 5152)
    [card] = await reader.say(f"/read {target}")
    [answer] = await reader.press(card, "Related")
    assert _listed_ids(answer.plain_text) == ranked[:5]


async def test_related_falls_back_to_fts5_before_a_model_exists(
    bot: object, botapi: FakeBotAPI, db_path: Path
) -> None:
    store = await Store.open(db_path)
    try:
        await store.add_articles(_archive())
        # One more story sharing the target's own words: the FTS5 query's one match.
        [echo] = await store.add_articles(
            [Article(title="Echoes", body=(" ".join(OWN_WORDS[:4]) + " again.",))]
        )
        target = (await store.ids_by_title(["Quayside notes"]))["Quayside notes"]
        assert await store.related_model() is None
    finally:
        await store.close()
    text = await Reader(botapi, 5153).ask(f"/related {target}")
    assert _listed_ids(text) == [echo.story_id]
