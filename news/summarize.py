"""Extractive summaries and highlights: whole sentences copied from the story.

`summarize` ranks sentences with a small gradient-boosted tree model trained by
``python -m news.train_summarizer`` on publisher-written highlights and shipped as JSON in
``news/models/summarizer.json``; evaluating it needs only numpy. `highlights` picks the most
central sentences. Both return verbatim sentences in document order.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from news.sentences import split_sentences, strip_dateline
from news.text import terms, words

MODEL_PATH = Path(__file__).parent / "models" / "summarizer.json"
MODEL_FORMAT = "newsbot-sentence-gbm/1"

FEATURES = (
    "position",
    "relative_position",
    "sentences",
    "words",
    "document_words",
    "word_offset",
    "centrality",
    "centrality_rank",
    "term_density",
    "title_overlap",
    "first_sentence_overlap",
    "content_terms",
    "numbers",
    "quote_marks",
    "starts_with_quote",
    "question",
    "capitalised",
    "mentions_source",
    "had_dateline",
)


def _word_set(text: str) -> frozenset[str]:
    return frozenset(text.split())


# Function words carry no topic; they are left out of centrality and overlaps.
STOP_WORDS = _word_set(
    """a about above after again against all also am an and any are as at be because been
    before being below between both but by can could did do does doing down during each few
    for from further get got had has have having he her here hers herself him himself his how
    i if in into is it its itself just like may me might more most must my myself new no nor
    not now of off on once one only or other our ours ourselves out over own said same say
    says she should so some such than that the their theirs them themselves then there these
    they this those through to told too two under until up us very was we were what when
    where which while who whom why will with would you your yours yourself yourselves mr mrs
    ms"""
)
_QUOTE = re.compile(r"[\"“”]")
_DIGITS = re.compile(r"\d+")
_OPEN_QUOTES = "\"“'‘"
_SOURCES = frozenset({"cnn", "reuters", "ap", "afp", "bbc"})


@dataclass(frozen=True, slots=True)
class SentenceModel:
    """A boosted ensemble of complete binary trees of one depth, plus the selection rule.

    Node arrays are in heap order: node i has children 2i+1 and 2i+2; a sentence goes left
    when its feature value is at most the threshold."""

    features: tuple[str, ...]
    depth: int
    base: float
    learning_rate: float
    feature: npt.NDArray[np.intp]  # (trees, 2**depth - 1)
    threshold: npt.NDArray[np.float64]  # (trees, 2**depth - 1)
    leaf: npt.NDArray[np.float64]  # (trees, 2**depth)
    min_sentences: int
    max_sentences: int
    target_words: int

    def predict(self, x: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        """Scores for the rows of a feature matrix (columns in `features` order)."""
        n = x.shape[0]
        if n == 0:
            return np.zeros(0)
        # Trees compare float32 features with float64 thresholds, as scikit-learn does.
        xs = x.astype(np.float32).astype(np.float64)
        trees = self.feature.shape[0]
        rows = np.arange(trees)[:, None]
        cols = np.arange(n)[None, :]
        node = np.zeros((trees, n), dtype=np.intp)
        for _ in range(self.depth):
            goes_right = xs[cols, self.feature[rows, node]] > self.threshold[rows, node]
            node = 2 * node + 1 + goes_right
        leaves = self.leaf[rows, node - (2**self.depth - 1)]
        return np.asarray(self.base + self.learning_rate * leaves.sum(axis=0), dtype=np.float64)

    def to_json(self) -> dict[str, Any]:
        """The JSON object stored in ``news/models/summarizer.json``."""
        return {
            "format": MODEL_FORMAT,
            "features": list(self.features),
            "depth": self.depth,
            "base": self.base,
            "learning_rate": self.learning_rate,
            "selection": {
                "min_sentences": self.min_sentences,
                "max_sentences": self.max_sentences,
                "target_words": self.target_words,
            },
            "trees": {
                "feature": self.feature.tolist(),
                "threshold": self.threshold.tolist(),
                "leaf": self.leaf.tolist(),
            },
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> SentenceModel:
        """Rebuild a model from `to_json` output, checking its shape and feature list."""
        if data.get("format") != MODEL_FORMAT:
            raise ValueError(f"not a {MODEL_FORMAT} model: {data.get('format')!r}")
        if tuple(data["features"]) != FEATURES:
            raise ValueError("the model was trained on other features; rebuild it")
        depth = int(data["depth"])
        trees = data["trees"]
        feature = np.asarray(trees["feature"], dtype=np.intp).reshape(-1, 2**depth - 1)
        threshold = np.asarray(trees["threshold"], dtype=np.float64).reshape(feature.shape)
        leaf = np.asarray(trees["leaf"], dtype=np.float64).reshape(-1, 2**depth)
        if leaf.shape[0] != feature.shape[0] or (feature.size and feature.max() >= len(FEATURES)):
            raise ValueError("malformed model trees")
        selection = data["selection"]
        return cls(
            features=FEATURES,
            depth=depth,
            base=float(data["base"]),
            learning_rate=float(data["learning_rate"]),
            feature=feature,
            threshold=threshold,
            leaf=leaf,
            min_sentences=int(selection["min_sentences"]),
            max_sentences=int(selection["max_sentences"]),
            target_words=int(selection["target_words"]),
        )


@lru_cache(maxsize=1)
def load_model(path: Path = MODEL_PATH) -> SentenceModel:
    """The shipped sentence model (read once per process)."""
    return SentenceModel.from_json(json.loads(path.read_text(encoding="utf-8")))


def story_sentences(paragraphs: Sequence[str]) -> list[str]:
    """The story's sentences in order, the opening dateline (``(CNN)``) left out."""
    return _prepare(paragraphs)[0]


@dataclass(frozen=True, slots=True)
class _Analysis:
    """Tokens and term weights of a story's sentences, shared by the scorers."""

    tokens: list[list[str]]
    content: list[list[str]]
    weights: list[dict[str, float]]
    centrality: npt.NDArray[np.float64]
    df: dict[str, int]


def _analyse(sentences: Sequence[str]) -> _Analysis:
    tokens = [words(s) for s in sentences]
    kept = [[w for w in tk if len(w) > 1 and w not in STOP_WORDS] for tk in tokens]
    # One stemmer call for the whole story: terms() splits the joined words the same way.
    stems = terms(" ".join(w for tk in kept for w in tk))
    content: list[list[str]] = []
    pos = 0
    for tk in kept:
        content.append(stems[pos : pos + len(tk)])
        pos += len(tk)
    df: dict[str, int] = {}
    for terms_ in content:
        for t in set(terms_):
            df[t] = df.get(t, 0) + 1
    n = len(sentences)
    # Inverse sentence frequency: a term in every sentence says little about any of them.
    idf = {t: math.log(1.0 + n / d) for t, d in df.items()}
    weights: list[dict[str, float]] = []
    doc: dict[str, float] = {}
    for terms_ in content:
        vec: dict[str, float] = {}
        for t in terms_:
            vec[t] = vec.get(t, 0.0) + idf[t]
            doc[t] = doc.get(t, 0.0) + idf[t]
        weights.append(vec)
    doc_norm = math.sqrt(sum(v * v for v in doc.values())) or 1.0
    centrality = np.zeros(n)
    for i, vec in enumerate(weights):
        norm = math.sqrt(sum(v * v for v in vec.values()))
        if norm:
            centrality[i] = sum(v * doc[t] for t, v in vec.items()) / (norm * doc_norm)
    return _Analysis(tokens, content, weights, centrality, df)


def sentence_features(
    title: str, sentences: Sequence[str], had_dateline: bool = False
) -> npt.NDArray[np.float64]:
    """The feature matrix (one row per sentence, columns as `FEATURES`) the model reads."""
    return _features(title, sentences, _analyse(sentences), had_dateline)


def _features(
    title: str, sentences: Sequence[str], a: _Analysis, had_dateline: bool
) -> npt.NDArray[np.float64]:
    n = len(sentences)
    x = np.zeros((n, len(FEATURES)))
    if n == 0:
        return x
    title_terms = set(terms(" ".join(w for w in words(title) if w not in STOP_WORDS)))
    first = set(a.content[0])
    doc_words = sum(len(t) for t in a.tokens)
    offset = 0
    rank = np.empty(n)
    rank[np.argsort(-a.centrality, kind="stable")] = np.arange(n) / n
    for i, sentence in enumerate(sentences):
        tk = a.tokens[i]
        cs = set(a.content[i])
        raw = sentence.split()
        x[i] = (
            i,
            i / n,
            n,
            len(tk),
            doc_words,
            offset,
            a.centrality[i],
            rank[i],
            sum(a.df[t] for t in cs) / (len(cs) * n) if cs else 0.0,
            len(title_terms & cs) / len(title_terms) if title_terms else 0.0,
            len(first & cs) / len(first | cs) if first or cs else 0.0,
            len(cs),
            len(_DIGITS.findall(sentence)),
            len(_QUOTE.findall(sentence)),
            1.0 if sentence[:1] in _OPEN_QUOTES else 0.0,
            1.0 if sentence.rstrip("\"”'’) ").endswith("?") else 0.0,
            sum(1 for w in raw[1:] if w[:1].isupper()) / max(1, len(raw) - 1),
            1.0 if _SOURCES.intersection(tk) else 0.0,
            1.0 if i == 0 and had_dateline else 0.0,
        )
        offset += len(tk)
    return x


def _prepare(paragraphs: Sequence[str]) -> tuple[list[str], bool]:
    sentences: list[str] = []
    for paragraph in paragraphs:
        sentences.extend(split_sentences(paragraph))
    had_dateline = False
    if sentences:
        stripped = strip_dateline(sentences[0])
        had_dateline = stripped != sentences[0]
        sentences[0] = stripped
    return sentences, had_dateline


def score_sentences(
    title: str, sentences: Sequence[str], had_dateline: bool = False
) -> npt.NDArray[np.float64]:
    """The model's score for each sentence (higher: more summary-worthy)."""
    return load_model().predict(sentence_features(title, sentences, had_dateline))


@dataclass(frozen=True, slots=True)
class StorySummary:
    """A story's generated summary and highlights (verbatim sentences, document order)."""

    summary: tuple[str, ...]
    highlights: tuple[str, ...]


def summarize(title: str, paragraphs: Sequence[str], n: int | None = None) -> list[str]:
    """A 2-4 sentence extractive summary (exactly `n` sentences, or all, when `n` is given)."""
    if n is not None and n <= 0:
        return []
    sentences, had_dateline = _prepare(paragraphs)
    return _summary(title, sentences, had_dateline, n, None)


def highlights(title: str, paragraphs: Sequence[str], n: int = 3) -> list[str]:
    """The `n` most central sentences (early ones preferred), no two saying the same, in
    document order."""
    sentences, _ = _prepare(paragraphs)
    return _highlights(sentences, n, None)


def summarize_story(
    title: str, paragraphs: Sequence[str], n: int | None = None, highlights_n: int = 3
) -> StorySummary:
    """`summarize` and `highlights` together, splitting and analysing the story once."""
    sentences, had_dateline = _prepare(paragraphs)
    a = _analyse(sentences) if len(sentences) > 1 else None
    summary = [] if n is not None and n <= 0 else _summary(title, sentences, had_dateline, n, a)
    return StorySummary(tuple(summary), tuple(_highlights(sentences, highlights_n, a)))


def _summary(
    title: str, sentences: list[str], had_dateline: bool, n: int | None, a: _Analysis | None
) -> list[str]:
    if (n is not None and n >= len(sentences)) or len(sentences) <= 1:
        return sentences
    model = load_model()
    x = _features(title, sentences, a or _analyse(sentences), had_dateline)
    order = np.argsort(-model.predict(x), kind="stable")
    if n is not None:
        chosen = [int(i) for i in order[:n]]
    else:
        chosen = []
        total = 0
        # Best sentences first, until the summary is long enough (within min..max).
        for i in order[: model.max_sentences]:
            if len(chosen) >= model.min_sentences and total >= model.target_words:
                break
            chosen.append(int(i))
            total += len(sentences[i].split())
    return [sentences[i] for i in sorted(chosen)]


def _highlights(sentences: list[str], n: int, a: _Analysis | None) -> list[str]:
    if n <= 0:
        return []
    if len(sentences) <= n:
        return sentences
    a = a or _analyse(sentences)
    # Fragments ("Why?", "All rights reserved.") make poor bullets when better ones exist.
    long_enough = [i for i, tk in enumerate(a.tokens) if len(tk) >= 6]
    pool = long_enough if len(long_enough) >= n else list(range(len(sentences)))
    # News puts its key facts first: a mild position prior (chosen on the CNN training
    # half) lifts early central sentences over late ones that merely repeat the topic.
    weight = a.centrality / np.sqrt(1.0 + np.arange(len(sentences)))
    ranked = sorted(pool, key=lambda i: (-weight[i], i))
    chosen: list[int] = []
    for i in ranked:
        if all(_cosine(a.weights[i], a.weights[j]) < 0.5 for j in chosen):
            chosen.append(i)
            if len(chosen) == n:
                break
    for i in ranked:
        if len(chosen) == n:
            break
        if i not in chosen:
            chosen.append(i)
    return [sentences[i] for i in sorted(chosen)]


def _cosine(a: dict[str, float], b: dict[str, float]) -> float:
    if len(a) > len(b):
        a, b = b, a
    dot = sum(v * b.get(t, 0.0) for t, v in a.items())
    if not dot:
        return 0.0
    na = math.sqrt(sum(v * v for v in a.values()))
    nb = math.sqrt(sum(v * v for v in b.values()))
    return dot / (na * nb)
