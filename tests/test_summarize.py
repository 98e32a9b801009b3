"""The extractive summariser and highlights: invariants on hand-made and real stories."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from news.summarize import (
    FEATURES,
    MODEL_PATH,
    SentenceModel,
    highlights,
    load_model,
    score_sentences,
    sentence_features,
    story_sentences,
    summarize,
    summarize_story,
)

STORY = [
    "(CNN)A powerful storm hit the coast of Florida on Monday, cutting power to 200,000 "
    "homes. Officials said three people died. The storm, named Ana, brought winds of 90 mph. "
    '"We have never seen anything like it," Gov. Rick Scott said. Schools will stay closed '
    "on Tuesday. Forecasters expect the storm to weaken as it moves north. In Georgia, "
    "shelters opened for 5,000 people. The U.S. Coast Guard rescued a fishing crew. "
    "Insurance losses could reach $1.2 billion, analysts said. Why does this matter? "
    "Because the season has only just begun."
]


def _in_order(sentences: list[str], text: str) -> bool:
    pos = 0
    for sentence in sentences:
        found = text.find(sentence, pos)
        if found < 0:
            return False
        pos = found + len(sentence)
    return True


def test_default_summary_is_2_to_4_verbatim_sentences_in_order() -> None:
    summary = summarize("Florida storm", STORY)
    assert 2 <= len(summary) <= 4
    assert _in_order(summary, STORY[0])
    assert not summary[0].startswith("(CNN)")


@pytest.mark.parametrize("n", [1, 2, 3, 5])
def test_summary_has_exactly_n_sentences(n: int) -> None:
    summary = summarize("Florida storm", STORY, n=n)
    assert len(summary) == n
    assert _in_order(summary, STORY[0])


def test_n_larger_than_story_returns_every_sentence() -> None:
    sentences = story_sentences(STORY)
    assert summarize("Florida storm", STORY, n=100) == sentences
    assert len(sentences) == 11


@pytest.mark.parametrize("paragraphs", [[], [""], ["   "], ["\n\n"]])
def test_empty_story(paragraphs: list[str]) -> None:
    assert summarize("Title", paragraphs) == []
    assert summarize("Title", paragraphs, n=3) == []
    assert highlights("Title", paragraphs) == []


def test_one_sentence_story() -> None:
    assert summarize("T", ["Only one sentence here."]) == ["Only one sentence here."]
    assert summarize("T", ["Only one sentence here."], n=3) == ["Only one sentence here."]
    assert highlights("T", ["Only one sentence here."]) == ["Only one sentence here."]


def test_non_positive_n() -> None:
    assert summarize("T", STORY, n=0) == []
    assert highlights("T", STORY, n=0) == []


def test_two_sentence_story_gives_both() -> None:
    assert summarize("", ["First one. Second one."]) == ["First one.", "Second one."]


def test_paragraphs_and_title_less_stories() -> None:
    paragraphs = [
        "Ministers agreed a new budget on Friday after talks ran late.",
        "The deal raises spending on schools by 4%. Hospitals get £2bn more.",
        "Opposition parties said the plan did not go far enough.",
    ]
    summary = summarize("", paragraphs)
    text = "\n\n".join(paragraphs)
    assert 2 <= len(summary) <= 4
    assert _in_order(summary, text)


def test_highlights_are_distinct_verbatim_and_in_order() -> None:
    found = highlights("Florida storm", STORY, n=3)
    assert len(found) == 3
    assert len(set(found)) == 3
    assert _in_order(found, STORY[0])
    # Fragments are left out when longer sentences exist.
    assert "Why does this matter?" not in found


@pytest.mark.parametrize("n", [None, 0, 1, 3])
@pytest.mark.parametrize("paragraphs", [STORY, [], ["One sentence."], ["One. Two."]])
def test_summarize_story_equals_the_two_calls(n: int | None, paragraphs: list[str]) -> None:
    both = summarize_story("Florida storm", paragraphs, n=n, highlights_n=2)
    assert list(both.summary) == summarize("Florida storm", paragraphs, n=n)
    assert list(both.highlights) == highlights("Florida storm", paragraphs, n=2)


def test_features_and_scores_have_one_row_per_sentence() -> None:
    sentences = story_sentences(STORY)
    x = sentence_features("Florida storm", sentences, had_dateline=True)
    assert x.shape == (len(sentences), len(FEATURES))
    assert np.isfinite(x).all()
    scores = score_sentences("Florida storm", sentences, had_dateline=True)
    assert scores.shape == (len(sentences),)
    assert sentence_features("t", []).shape == (0, len(FEATURES))


def test_shipped_model_round_trips_through_json() -> None:
    model = load_model()
    data = json.loads(MODEL_PATH.read_text(encoding="utf-8"))
    again = SentenceModel.from_json(model.to_json())
    x = sentence_features("Florida storm", story_sentences(STORY))
    assert np.array_equal(again.predict(x), model.predict(x))
    assert data["selection"]["min_sentences"] == 2
    assert data["selection"]["max_sentences"] == 4
    assert data["trained_on"].startswith("first 500 stories")


def test_model_with_other_features_is_refused() -> None:
    data = load_model().to_json()
    data["features"] = [*data["features"], "extra"]
    with pytest.raises(ValueError, match="other features"):
        SentenceModel.from_json(data)
    data = load_model().to_json()
    data["format"] = "something-else"
    with pytest.raises(ValueError, match="not a"):
        SentenceModel.from_json(data)


def test_tree_evaluation_matches_a_hand_made_tree() -> None:
    # One depth-2 tree: root splits feature 0 at 1.5; left child on feature 3 at 10.
    model = SentenceModel(
        features=FEATURES,
        depth=2,
        base=0.5,
        learning_rate=0.1,
        feature=np.array([[0, 3, 0]]),
        threshold=np.array([[1.5, 10.0, 1e308]]),
        leaf=np.array([[1.0, 2.0, 3.0, 3.0]]),
        min_sentences=2,
        max_sentences=4,
        target_words=0,
    )
    x = np.zeros((3, len(FEATURES)))
    x[0, 0], x[0, 3] = 1.0, 5.0  # left, left
    x[1, 0], x[1, 3] = 1.0, 20.0  # left, right
    x[2, 0] = 2.0  # right
    assert np.allclose(model.predict(x), [0.6, 0.7, 0.8])


@pytest.fixture(scope="module")
def cnn_stories(corpus_dir: Path) -> list[dict[str, str]]:
    """Stories from the CNN test half (never seen in training)."""
    with (corpus_dir / "cnndm_validation_sample.jsonl").open(encoding="utf-8") as fh:
        return [json.loads(line) for line in list(fh)[500:700]]


@pytest.mark.corpus
def test_real_stories_keep_the_invariants(cnn_stories: list[dict[str, str]]) -> None:
    for record in cnn_stories:
        text = record["text"]
        summary = summarize(record["title"], [text])
        assert 2 <= len(summary) <= 4, record["id"]
        assert _in_order(summary, text), record["id"]
        assert len(summarize(record["title"], [text], n=3)) == 3
        found = highlights(record["title"], [text])
        assert len(found) == 3, record["id"]
        assert _in_order(found, text), record["id"]
