"""Issue 5 wired in: near-duplicates refused on import, the related-stories index fitted in
a child process and joined by new stories without a rebuild, `newsbot summarize`."""

from __future__ import annotations

import json
from pathlib import Path

from bot.related import RelatedStories, ensure_model
from news.articles import Article
from storage import Store
from tests.test_cli import newsbot

TOPICS = {
    "harbour": "harbour ferry boats quay sailing fishermen tide moorings crossing island",
    "football": "football match goal striker league referee penalty stadium coach season",
    "election": "election votes ballot candidates parliament campaign polling turnout party count",
}


def story(topic: str, n: int, extra: str = "") -> Article:
    words = TOPICS[topic].split()
    sentences = [
        f"The {words[n % 10]} and the {words[(n + 3) % 10]} were news again in week {n}.",
        f"Reporters asked about the {words[(n + 5) % 10]}, the {words[(n + 7) % 10]} "
        f"and the {words[(n + 1) % 10]}.",
        f"{extra}Everyone in town talked about the {words[(n + 2) % 10]} on day {n}.",
    ]
    return Article(
        title=f"{topic.title()} report {n}", body=(" ".join(sentences),), category=topic
    )


async def test_a_reworded_repeat_is_a_duplicate_not_a_new_story(store: Store) -> None:
    body = (
        "The city council approved the new budget on Tuesday after a long debate about "
        "schools, roads and the library. The mayor said the plan would keep taxes flat "
        "for another year while the harbour repairs go ahead as planned.",
        "Opposition members said the savings were not enough and promised to bring the "
        "question back before the summer recess.",
    )
    first = Article(title="Council passes budget", body=body)
    repeat = Article(title="City budget approved after debate", body=body)
    revised = Article(
        title="Budget passes", body=(body[0].replace("Tuesday", "Tuesday night"), body[1])
    )
    other = Article(title="Something else", body=("A different story entirely about trains.",))
    results = await store.add_articles([first, repeat])
    assert [r.status for r in results] == ["new", "duplicate"]
    later = await store.add_articles([revised, other])
    assert later[0].status == "duplicate"
    assert later[0].duplicate_of == results[0].story_id
    assert later[1].status == "new"
    assert await store.count_stories() == 2


async def test_related_index_is_fitted_and_new_stories_join_without_a_rebuild(
    store: Store,
) -> None:
    await store.add_articles([story(t, n) for t in TOPICS for n in range(12)])
    status = await ensure_model(store)
    assert status.fitted
    assert status.embedded == 36
    stored = await store.related_model()
    assert stored is not None
    fitted_at = stored[2]

    related = RelatedStories(store)
    harbour_ids = (await store.ids_by_title(["Harbour report 3"]))["Harbour report 3"]
    similar = await related.similar(harbour_ids, 5)
    assert similar is not None
    assert len(similar) == 5
    heads = await store.heads(similar)
    assert all(heads[i].category == "harbour" for i in similar)

    # A new story is embedded and found, with the same model (no refit, no rebuild).
    [added] = await store.add_articles([story("football", 40, "A late winner. ")])
    again = await ensure_model(store)
    assert not again.fitted
    assert again.embedded == 1
    found = await related.similar(added.story_id, 5)
    assert found is not None
    found_heads = await store.heads(found)
    assert all(found_heads[i].category == "football" for i in found), found_heads
    assert added.story_id in (await related.similar(found[0], 36) or [])
    assert (await store.related_model() or (b"", 0, None))[2] == fitted_at


async def test_related_command_uses_the_index(bot: object, botapi: object, db_path: Path) -> None:
    from tests.chat import Reader

    store = await Store.open(db_path)
    await store.add_articles([story(t, n) for t in TOPICS for n in range(8)])
    await ensure_model(store)
    target = (await store.ids_by_title(["Election report 2"]))["Election report 2"]
    await store.close()
    text = await Reader(botapi, 3131).ask(f"/related {target}")  # type: ignore[arg-type]
    listed = text.split("Similar stories", 1)[1]
    assert listed.count("/read_") == 5
    assert listed.count("Election report") == 5
    assert f"/read_{target}" not in listed


def test_summarize_command(tmp_path: Path) -> None:
    archive = tmp_path / "a.jsonl"
    text = (
        "The first sentence sets the scene for the whole story. A second sentence adds "
        'numbers: 42 people came. A third sentence quotes someone who said "it went well". '
        "The fourth sentence is background. The fifth sentence closes the piece."
    )
    archive.write_text(json.dumps({"id": "s1", "title": "A story", "text": text}) + "\n{broken\n")
    result = newsbot(tmp_path, "summarize", str(archive), "--json", "--sentences", "2")
    assert result.returncode == 0, result.stderr
    [line] = result.stdout.splitlines()
    record = json.loads(line)
    assert record["id"] == "s1"
    assert len(record["summary"]) == 2
    assert all(sentence in text for sentence in record["summary"])
    assert record["highlights"]
    assert f"{archive}:2:" in result.stderr
    assert not (tmp_path / "cli.db").exists()  # an archive needs no database
    newsbot(tmp_path, "chat", "-c", "/latest")  # loads the samples
    by_id = newsbot(tmp_path, "summarize", "1")
    assert by_id.returncode == 0
    assert by_id.stdout.startswith("1: ")
    assert "Summary: " in by_id.stdout
    missing = newsbot(tmp_path, "summarize", "999")
    assert missing.returncode == 1
    assert "no story 999" in missing.stderr
