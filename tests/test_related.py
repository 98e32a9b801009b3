"""Related stories: the LSA model (fit, embed, serialise) and the dense index."""

from __future__ import annotations

import random

import numpy as np
import pytest

from news.related import (
    DUPLICATE_COSINE,
    RelatedIndex,
    RelatedModel,
    cosine,
    features,
    pack_vector,
    story_text,
    unpack_vector,
)

TOPICS = {
    "football": "goal striker league match referee penalty stadium coach transfer season",
    "markets": "shares profit bank investors inflation rates bonds earnings currency trading",
    "space": "rocket orbit astronaut launch satellite mars telescope nasa mission lunar",
}
COMMON = [
    "said",
    "year",
    "people",
    "time",
    "week",
    "report",
    "new",
    "first",
    "last",
    "today",
    "officials",
]


def _corpus(per_topic: int = 20, seed: int = 7) -> tuple[list[str], list[str]]:
    rng = random.Random(seed)
    texts, labels = [], []
    for label, vocab in TOPICS.items():
        words = vocab.split()
        for _ in range(per_topic):
            body = [rng.choice(words if rng.random() < 0.6 else COMMON) for _ in range(60)]
            texts.append(story_text(f"{label} news", [" ".join(body)]))
            labels.append(label)
    return texts, labels


@pytest.fixture(scope="module")
def fitted() -> tuple[RelatedModel, list[str], list[str]]:
    texts, labels = _corpus()
    return RelatedModel.fit(texts, dims=10), texts, labels


def test_embeddings_are_unit_float32_rows(
    fitted: tuple[RelatedModel, list[str], list[str]],
) -> None:
    model, texts, _ = fitted
    vectors = model.embed(texts)
    assert vectors.dtype == np.float32
    assert vectors.shape == (len(texts), model.dims)
    assert model.dims == 10
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)


def test_similar_stories_share_the_topic(
    fitted: tuple[RelatedModel, list[str], list[str]],
) -> None:
    model, texts, labels = fitted
    index = RelatedIndex(model.dims)
    index.add(list(range(100, 100 + len(texts))), model.embed(texts))
    assert len(index) == len(texts)
    for i, label in enumerate(labels):
        found = index.similar(100 + i, k=5)
        assert len(found) == 5
        assert all(story_id != 100 + i for story_id, _ in found)
        assert all(labels[story_id - 100] == label for story_id, _ in found)
        scores = [score for _, score in found]
        assert scores == sorted(scores, reverse=True)


def test_new_story_joins_without_refit(
    fitted: tuple[RelatedModel, list[str], list[str]],
) -> None:
    model, texts, labels = fitted
    index = RelatedIndex(model.dims)
    index.add(list(range(len(texts))), model.embed(texts))
    new = story_text("Launch", ["The rocket reached orbit; the astronaut crew and nasa cheered."])
    index.add([999], model.embed([new]))
    found = index.similar(999, k=3)
    assert [labels[i] for i, _ in found] == ["space"] * 3


def test_exclusions_and_duplicates(fitted: tuple[RelatedModel, list[str], list[str]]) -> None:
    model, texts, _ = fitted
    vectors = model.embed(texts)
    index = RelatedIndex(model.dims)
    index.add([1, 2, 3, 4, 5], vectors[:5])
    # Story 6 is a copy of story 1 and 7 another copy: neither shows next to 1, and only
    # one of the twins may show next to another story.
    index.add([6, 7], np.vstack([vectors[0], vectors[0]]))
    near_one = [i for i, _ in index.similar(1, k=10)]
    assert 6 not in near_one
    assert 7 not in near_one
    assert 1 not in near_one
    near_two = [i for i, _ in index.similar(2, k=10)]
    assert len({1, 6, 7} & set(near_two)) == 1
    assert 3 not in [i for i, _ in index.similar(2, k=10, exclude={3})]
    assert float(vectors[0] @ vectors[0]) >= DUPLICATE_COSINE


def test_add_replaces_and_remove_keeps_rows_consistent(
    fitted: tuple[RelatedModel, list[str], list[str]],
) -> None:
    model, texts, _ = fitted
    vectors = model.embed(texts)
    index = RelatedIndex(model.dims)
    index.add(list(range(len(texts))), vectors)
    index.add([0], vectors[30:31])  # a football story now holds a space story's vector
    assert len(index) == len(texts)
    assert np.array_equal(index.vector(0), vectors[30])
    assert index.remove(5) is True
    assert index.remove(5) is False
    assert len(index) == len(texts) - 1
    assert 5 not in index
    # The moved last row still answers for its id.
    last = len(texts) - 1
    assert np.array_equal(index.vector(last), vectors[last])
    assert all(i != 5 for i, _ in index.similar(6, k=len(texts)))
    with pytest.raises(KeyError):
        index.similar(5)


def test_index_memory_is_about_n_times_dims_floats() -> None:
    index = RelatedIndex(100)
    rng = np.random.default_rng(0)
    vecs = rng.normal(size=(5000, 100)).astype(np.float32)
    index.add(list(range(5000)), vecs / np.linalg.norm(vecs, axis=1, keepdims=True))
    assert 5000 * 100 * 4 <= index.nbytes <= 1.3 * 5000 * (100 * 4 + 8)


def test_model_round_trips_through_bytes(
    fitted: tuple[RelatedModel, list[str], list[str]],
) -> None:
    model, texts, _ = fitted
    data = model.to_bytes()
    assert data[:2] == b"PK"  # an .npz archive, not a pickle
    again = RelatedModel.from_bytes(data)
    assert again.dims == model.dims
    assert again.fitted_on == model.fitted_on
    assert np.array_equal(again.embed(texts), model.embed(texts))
    with pytest.raises(ValueError, match="not a newsbot-lsa/2 model"):
        RelatedModel.from_bytes(b"not a model")


def test_vectors_pack_to_blobs() -> None:
    vec = np.array([0.6, 0.8, 0.0], dtype=np.float32)
    data = pack_vector(vec)
    assert len(data) == 12
    assert np.array_equal(unpack_vector(data), vec)
    assert cosine(vec, unpack_vector(data)) == pytest.approx(1.0)
    assert cosine(vec, np.zeros(3)) == 0.0


@pytest.mark.parametrize("count", [0, 1, 2, 5])
def test_tiny_archives_fit_and_answer(count: int) -> None:
    texts, _ = _corpus(per_topic=2)
    texts = texts[:count]
    model = RelatedModel.fit(texts)
    assert model.dims >= 1
    vectors = model.embed([*texts, ""])
    assert vectors.shape == (count + 1, model.dims)
    assert not vectors[-1].any()  # no words: a zero vector, never similar to anything
    index = RelatedIndex(model.dims)
    index.add(list(range(count + 1)), vectors)
    assert index.similar(count, k=5) == []
    for i in range(count):
        assert all(j != i for j, _ in index.similar(i, k=5))


def test_a_model_without_vocabulary_embeds_to_zeros() -> None:
    model = RelatedModel.fit([])
    vectors = model.embed(["Some words about rockets and orbit.", ""])
    assert vectors.shape == (2, model.dims)
    assert not vectors.any()


def test_empty_index_and_zero_k() -> None:
    index = RelatedIndex(4)
    assert index.similar_to_vector(np.ones(4) / 2, k=5) == []
    index.add([1, 2], np.eye(4, dtype=np.float32)[:2])
    assert index.similar_to_vector(np.ones(4) / 2, k=0) == []
    with pytest.raises(ValueError, match="ids"):
        index.add([1], np.eye(4, dtype=np.float32)[:2])


def test_should_refit_when_the_archive_doubles(
    fitted: tuple[RelatedModel, list[str], list[str]],
) -> None:
    model, texts, _ = fitted
    assert model.fitted_on == len(texts)
    assert not model.should_refit(len(texts))
    assert not model.should_refit(2 * len(texts) - 1)
    assert model.should_refit(2 * len(texts))
    assert RelatedModel.fit([]).should_refit(2)


def test_features_are_words_and_word_pairs() -> None:
    assert features("The Bank of England raised rates.") == [
        "bank",
        "england",
        "raised",
        "rates",
        "bank england",
        "england raised",
        "raised rates",
    ]


def test_large_archives_are_fitted_on_a_sample() -> None:
    texts, _ = _corpus(per_topic=30)
    model = RelatedModel.fit(texts, dims=5, max_stories=40)
    assert model.fitted_on == len(texts)
    assert model.embed(texts).shape == (len(texts), 5)


def test_many_copies_of_the_story_do_not_hide_the_related_ones() -> None:
    rng = np.random.default_rng(3)
    base = rng.normal(size=16).astype(np.float32)
    base /= np.linalg.norm(base)
    others = base + rng.normal(scale=0.3, size=(10, 16)).astype(np.float32)
    others /= np.linalg.norm(others, axis=1, keepdims=True)
    index = RelatedIndex(16)
    index.add(list(range(40)), np.tile(base, (40, 1)))
    index.add(list(range(100, 110)), others)
    found = index.similar(0, k=3)
    assert len(found) == 3
    assert all(100 <= i < 110 for i, _ in found)
