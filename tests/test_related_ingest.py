"""Issue 9: an import keeps the related-stories index up as it goes — new stories embedded
by the workers that prepare them, a model fitted beside a large import — and the index's
vectors always come from the model stored with them."""

from __future__ import annotations

import io
import json
import random
from pathlib import Path

import numpy as np
import pytest

from bot.ingest import ingest, jsonl_records
from bot.related import RelatedImport, ensure_model
from news.articles import Article
from news.related import RelatedModel, story_text, unpack_vector
from storage import Store

TOPICS = {
    "harbour": "harbour ferry boats quay sailing fishermen tide moorings crossing island",
    "football": "football match goal striker league referee penalty stadium coach season",
    "election": "election votes ballot candidates parliament campaign polling turnout party",
}


def _text(rng: random.Random, topic: str) -> str:
    vocab = TOPICS[topic].split()
    return " ".join(rng.choice(vocab) for _ in range(40)) + "."


def _write_archive(path: Path, count: int, seed: int) -> Path:
    rng = random.Random(seed)
    with path.open("w", encoding="utf-8") as handle:
        for n in range(count):
            topic = list(TOPICS)[n % 3]
            record = {
                "id": f"{seed}-{n}",
                "title": f"{topic.title()} update {seed}-{n}",
                "category": topic,
                "text": f"{_text(rng, topic)}\n\n{_text(rng, topic)}",
            }
            handle.write(json.dumps(record) + "\n")
    return path


async def _vectors(store: Store) -> dict[int, np.ndarray]:
    return {i: unpack_vector(v) for i, v in await store.vectors()}


async def test_new_stories_are_embedded_while_they_are_imported(
    store: Store, tmp_path: Path
) -> None:
    rng = random.Random(5)
    await store.add_articles(
        [
            Article(title=f"Old {n}", body=(_text(rng, t),), category=t)
            for t in TOPICS
            for n in range(8)
        ]
    )
    assert (await ensure_model(store)).fitted
    stored = await store.related_model()
    assert stored is not None
    model = RelatedModel.from_bytes(stored[0])
    archive = _write_archive(tmp_path / "new.jsonl", 12, seed=1)

    related = await RelatedImport.start(store, jsonl_records([str(archive)]), tmp_path)
    [report] = await ingest(store, [str(archive)], progress=False, related=related)
    # Before `finish`: the workers' vectors are stored already, one per new story.
    vectors = await _vectors(store)
    assert report.new == 12
    assert set(report.new_ids) <= set(vectors)
    assert related.embedded == 12
    for story_id in report.new_ids:
        story = await store.story(story_id)
        [expected] = model.embed([story_text(story.title, story.body)])
        assert np.allclose(vectors[story_id], expected, atol=1e-5)
    status = await related.finish()
    assert not status.fitted
    assert status.embedded == 12  # nothing was left to embed after the import
    assert (await store.related_model() or (b"", 0, None))[2] == stored[2]


async def test_a_large_import_fits_the_model_beside_the_import(
    store: Store, tmp_path: Path
) -> None:
    archive = _write_archive(tmp_path / "big.jsonl", 60, seed=2)
    archives = jsonl_records([str(archive), str(tmp_path / "missing.jsonl")])
    assert archives == [(str(archive), 60)]
    related = await RelatedImport.start(store, archives, tmp_path, early_fit_records=50)
    [report] = await ingest(store, [str(archive)], progress=False, related=related)
    status = await related.finish()
    assert report.new == 60
    assert status.fitted
    stored = await store.related_model()
    assert stored is not None
    # Fitted on a sample of what the import was about to store, it stands for the
    # archive the import ended with: the next import does not refit it.
    assert stored[1] == 60
    assert set(await _vectors(store)) == set(report.new_ids)
    again = await ensure_model(store)
    assert not again.fitted
    assert again.embedded == 0


async def test_vectors_of_a_replaced_model_are_not_stored(store: Store) -> None:
    rng = random.Random(9)
    [first] = await store.add_articles([Article(title="One", body=(_text(rng, "harbour"),))])
    await store.save_related_model(b"model one", 1)
    old = await store.related_fitted_at()
    assert old is not None
    await store.save_related_model(b"model two", 1)
    assert await store.save_vectors([(first.story_id, b"\0" * 8)], fitted_at=old) == 0
    assert await store.count_vectors() == 0
    new = await store.related_fitted_at()
    assert new is not None
    assert await store.save_vectors([(first.story_id, b"\0" * 8)], fitted_at=new) == 1


async def test_a_model_of_the_older_format_is_refitted(store: Store) -> None:
    rng = random.Random(4)
    await store.add_articles(
        [
            Article(title=f"S {n}", body=(_text(rng, t),), category=t)
            for t in TOPICS
            for n in range(4)
        ]
    )
    buf = io.BytesIO()
    meta = json.dumps({"format": "newsbot-lsa/1", "fitted_on": 12, "bits": 20}).encode()
    np.savez(buf, meta=np.frombuffer(meta, dtype=np.uint8))
    await store.save_related_model(buf.getvalue(), 12)
    status = await ensure_model(store)
    assert status.fitted
    assert status.embedded == 12
    stored = await store.related_model()
    assert stored is not None
    assert RelatedModel.from_bytes(stored[0]).dims >= 1


@pytest.mark.parametrize("count", [0, 1])
async def test_tiny_imports_fit_nothing_early(store: Store, tmp_path: Path, count: int) -> None:
    archive = _write_archive(tmp_path / "tiny.jsonl", count, seed=3)
    related = await RelatedImport.start(store, jsonl_records([str(archive)]), tmp_path)
    await ingest(store, [str(archive)], progress=False, related=related)
    status = await related.finish()
    assert not status.fitted
    assert status.embedded == 0
    assert await store.related_model() is None
