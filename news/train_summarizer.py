"""Rebuild the shipped sentence model: ``python -m news.train_summarizer``.

Trains on the first 500 stories of ``shared/corpus/cnndm_validation_sample.jsonl`` only
(the other 500 are the benchmark's test half), labelling each sentence by its ROUGE-1/2
overlap with the closest publisher-written highlight. The summary length rule is chosen
by 5-fold cross-validation on the same 500 stories, then the model is fitted on all of
them and written to ``news/models/summarizer.json``. Needs the ``bench`` extras
(scikit-learn, rouge-score); running the bot does not.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from news.summarize import FEATURES, MODEL_PATH, SentenceModel, _prepare, sentence_features

log = logging.getLogger(__name__)

TRAIN_STORIES = 500
PARAMS: dict[str, Any] = {
    "n_estimators": 150,
    "max_depth": 3,
    "learning_rate": 0.05,
    "subsample": 0.8,
    "min_samples_leaf": 50,
    "random_state": 0,
}
TARGET_WORDS = (0, 25, 30, 35, 40, 45)
MIN_SENTENCES, MAX_SENTENCES = 2, 4
# A finite stand-in for "always go left" in padded tree nodes (JSON has no infinity).
_ALWAYS_LEFT = 1e308


def default_shared() -> Path:
    """The shared data folder: $NEWSBOT_SHARED, else ``shared`` beside the checkout."""
    env = os.environ.get("NEWSBOT_SHARED")
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[1].parent / "shared"


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """The records of a JSON Lines file."""
    with path.open(encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


@dataclass(frozen=True, slots=True)
class Example:
    """One training story: its sentences, features, labels and reference highlights."""

    sentences: list[str]
    features: npt.NDArray[np.float64]
    labels: npt.NDArray[np.float64]
    reference: list[str]


def _ngrams(tokens: Sequence[str], n: int) -> Counter[tuple[str, ...]]:
    return Counter(tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1))


def _f1(candidate: Counter[tuple[str, ...]], reference: Counter[tuple[str, ...]]) -> float:
    overlap = sum((candidate & reference).values())
    if not overlap:
        return 0.0
    p = overlap / sum(candidate.values())
    r = overlap / sum(reference.values())
    return 2 * p * r / (p + r)


def make_examples(records: Sequence[dict[str, Any]]) -> list[Example]:
    """Sentences, features and ROUGE labels for each record with highlights."""
    from rouge_score import tokenizers

    tokenizer = tokenizers.DefaultTokenizer(use_stemmer=True)
    examples: list[Example] = []
    for record in records:
        sentences, had_dateline = _prepare([record["text"]])
        if not sentences or not record["summary"]:
            continue
        x = sentence_features(record["title"], sentences, had_dateline)
        highlights = [tokenizer.tokenize(h) for h in record["summary"]]
        refs = [(_ngrams(h, 1), _ngrams(h, 2)) for h in highlights]
        labels = np.zeros(len(sentences))
        for i, sentence in enumerate(sentences):
            tokens = tokenizer.tokenize(sentence)
            one, two = _ngrams(tokens, 1), _ngrams(tokens, 2)
            # The closest highlight: each highlight usually paraphrases one sentence.
            labels[i] = max((_f1(one, r1) + _f1(two, r2)) / 2 for r1, r2 in refs)
        examples.append(Example(sentences, x, labels, list(record["summary"])))
    return examples


def select(scores: npt.NDArray[np.float64], sentences: Sequence[str], target: int) -> list[str]:
    """The selection rule of `summarize` for a word target (0: always the minimum)."""
    chosen: list[int] = []
    total = 0
    for i in np.argsort(-scores, kind="stable")[:MAX_SENTENCES]:
        if len(chosen) >= MIN_SENTENCES and total >= target:
            break
        chosen.append(int(i))
        total += len(sentences[i].split())
    return [sentences[i] for i in sorted(chosen)]


def rouge(pairs: Sequence[tuple[Sequence[str], Sequence[str]]]) -> tuple[float, float, float]:
    """Mean ROUGE-1/2/L F1 x 100 (rouge-score, stemming) of (reference, summary) pairs."""
    from rouge_score import rouge_scorer

    scorer = rouge_scorer.RougeScorer(["rouge1", "rouge2", "rougeL"], use_stemmer=True)
    total = np.zeros(3)
    for reference, summary in pairs:
        s = scorer.score("\n".join(reference), "\n".join(summary))
        total += (s["rouge1"].fmeasure, s["rouge2"].fmeasure, s["rougeL"].fmeasure)
    r1, r2, rl = total / max(1, len(pairs)) * 100
    return float(r1), float(r2), float(rl)


def _complete_tree(tree: Any, depth: int) -> tuple[list[int], list[float], list[float]]:
    """A fitted scikit-learn tree as a complete binary tree in heap order."""
    internal = 2**depth - 1
    feature = [0] * internal
    threshold = [_ALWAYS_LEFT] * internal
    leaf = [0.0] * (2**depth)

    def fill(node: int, heap: int, level: int) -> None:
        left, right = tree.children_left[node], tree.children_right[node]
        if left == -1:
            first = last = heap
            for _ in range(depth - level):
                first, last = 2 * first + 1, 2 * last + 2
            for i in range(first, last + 1):
                leaf[i - internal] = float(tree.value[node].ravel()[0])
            return
        feature[heap] = int(tree.feature[node])
        threshold[heap] = float(tree.threshold[node])
        fill(left, 2 * heap + 1, level + 1)
        fill(right, 2 * heap + 2, level + 1)

    fill(0, 0, 0)
    return feature, threshold, leaf


def export(gbm: Any, target_words: int) -> SentenceModel:
    """Our numpy model from a fitted GradientBoostingRegressor."""
    depth = int(gbm.max_depth)
    parts = [_complete_tree(est.tree_, depth) for est in gbm.estimators_[:, 0]]
    return SentenceModel(
        features=FEATURES,
        depth=depth,
        base=float(np.ravel(gbm.init_.constant_)[0]),
        learning_rate=float(gbm.learning_rate),
        feature=np.array([p[0] for p in parts], dtype=np.intp),
        threshold=np.array([p[1] for p in parts], dtype=np.float64),
        leaf=np.array([p[2] for p in parts], dtype=np.float64),
        min_sentences=MIN_SENTENCES,
        max_sentences=MAX_SENTENCES,
        target_words=target_words,
    )


def train(
    records: Sequence[dict[str, Any]], folds: int = 5
) -> tuple[SentenceModel, dict[str, Any]]:
    """Fit the model on `records`; returns it with the cross-validation report."""
    from sklearn.ensemble import GradientBoostingRegressor
    from sklearn.model_selection import KFold

    # Student-news transcripts carry boilerplate highlights ("This page includes the show
    # Transcript"): they would teach the model nothing about the story.
    kept = [r for r in records if r.get("category") != "studentnews"]
    examples = make_examples(kept)
    log.info("training on %d stories (%d sentences)", len(examples), _count(examples))
    cv_scores: list[npt.NDArray[np.float64]] = [np.zeros(0)] * len(examples)
    splitter = KFold(folds, shuffle=True, random_state=0)
    for fit_idx, held_idx in splitter.split(np.arange(len(examples))):
        gbm = GradientBoostingRegressor(**PARAMS)
        gbm.fit(*_stack([examples[i] for i in fit_idx]))
        for i in held_idx:
            cv_scores[i] = gbm.predict(examples[i].features)
    report: dict[str, Any] = {"stories": len(examples), "folds": folds, "cv": {}}
    best, best_mean = 0, -1.0
    for target in TARGET_WORDS:
        pairs = [
            (ex.reference, select(s, ex.sentences, target))
            for ex, s in zip(examples, cv_scores, strict=True)
        ]
        scores = rouge(pairs)
        report["cv"][str(target)] = [round(v, 2) for v in scores]
        log.info(
            "target_words=%d: cross-validated ROUGE-1/2/L %.2f / %.2f / %.2f", target, *scores
        )
        if sum(scores) / 3 > best_mean + 1e-9:
            best, best_mean = target, sum(scores) / 3
    report["target_words"] = best
    gbm = GradientBoostingRegressor(**PARAMS)
    x, y = _stack(examples)
    gbm.fit(x, y)
    model = export(gbm, best)
    drift = float(np.max(np.abs(model.predict(x) - gbm.predict(x))))
    if drift > 1e-9:
        raise RuntimeError(f"exported trees disagree with scikit-learn by {drift}")
    return model, report


def _stack(examples: Sequence[Example]) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    x = np.vstack([ex.features for ex in examples])
    y = np.concatenate([ex.labels for ex in examples])
    return x, y


def _count(examples: Sequence[Example]) -> int:
    return sum(len(ex.sentences) for ex in examples)


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: train on the CNN training half and write the model JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shared", type=Path, default=default_shared(), help="shared folder")
    parser.add_argument("--out", type=Path, default=MODEL_PATH, help="model JSON to write")
    parser.add_argument("--stories", type=int, default=TRAIN_STORIES, help="training stories")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    corpus = args.shared / "corpus" / "cnndm_validation_sample.jsonl"
    if not corpus.exists():
        print(f"error: {corpus} not found (set --shared or NEWSBOT_SHARED)", file=sys.stderr)
        return 2
    records = read_jsonl(corpus)[: args.stories]
    model, report = train(records)
    data = model.to_json()
    data["trained_on"] = (
        f"first {args.stories} stories of cnndm_validation_sample.jsonl, studentnews dropped"
    )
    data["params"] = PARAMS
    data["report"] = report
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(data, separators=(",", ":")) + "\n", encoding="utf-8")
    log.info("wrote %s (target_words=%d)", args.out, report["target_words"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
