"""Large archives of distinct, realistic stories for the benchmarks, made from the shared
corpus (read in place, never copied into the repository).

Each generated story takes the shape of a random corpus story (its number of paragraphs
and of sentences in each) and fills it with sentences drawn at random from the stories of
the same category, so its words, sentence lengths and topic are a real story's, while its
text, title, id and URL are its own: every record is a new story to the exact and the
near-duplicate checks, and to the related-stories index a story of its category.

    .venv/bin/python -m benchmarks.archive N OUT.jsonl [--shared PATH] [--seed N]
"""

from __future__ import annotations

import argparse
import itertools
import json
import random
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from benchmarks.common import shared_dir
from news.sentences import split_paragraphs, split_sentences

CORPUS_FILES = ("bbc_news_summary.jsonl", "cnndm_validation_sample.jsonl")


def _records(corpus: Path) -> list[dict[str, Any]]:
    return [
        json.loads(line)
        for name in CORPUS_FILES
        for line in (corpus / name).read_text(encoding="utf-8").splitlines()
        if line.strip()
    ]


def build_archive(corpus: Path, target: int, out: Path, *, seed: int = 1) -> int:
    """Write `target` distinct stories as JSON Lines to `out`; returns how many."""
    rng = random.Random(seed)
    shapes: list[tuple[str, str, list[int]]] = []
    pools: dict[str, list[str]] = defaultdict(list)
    for record in _records(corpus):
        category = record.get("category") or "news"
        source = "BBC" if record["id"].startswith("bbc") else "CNN"
        counts = []
        for paragraph in split_paragraphs(record["text"]):
            sentences = split_sentences(paragraph)
            pools[category].extend(sentences)
            counts.append(len(sentences))
        if counts:
            shapes.append((category, source, counts))
    start = datetime(2015, 1, 1, tzinfo=UTC)
    titles: set[str] = set()
    with out.open("w", encoding="utf-8") as handle:
        for n in range(target):
            category, source, counts = rng.choice(shapes)
            pool = pools[category]
            paragraphs = [" ".join(rng.choice(pool) for _ in range(c)) for c in counts]
            title = _title(rng, pool, titles)
            sentences = [s for p in paragraphs[:2] for s in split_sentences(p)][:3]
            published = start + timedelta(minutes=rng.randrange(10 * 365 * 24 * 60))
            record = {
                "id": f"gen-{n:06d}",
                "title": title,
                "category": category,
                "published": published.isoformat(),
                "url": f"https://news.example.com/{category}/{n:06d}",
                "text": "\n\n".join(paragraphs),
                "summary": sentences,
                "source": source,
            }
            handle.write(json.dumps(record, ensure_ascii=False) + "\n")
    return target


def _title(rng: random.Random, pool: list[str], seen: set[str]) -> str:
    """A headline-like title: the opening words of a sentence of the category, or (once
    those run out in a small category) of two, unique."""
    for attempt in itertools.count():
        words = rng.choice(pool).rstrip(".!?\"'").split()[: rng.randint(5, 9)]
        if attempt >= 10:
            words += rng.choice(pool).rstrip(".!?\"'").split()[: rng.randint(3, 5)]
        title = " ".join(words)
        if len(title) >= 12 and title not in seen:
            seen.add(title)
            return title
    raise AssertionError("unreachable")


def main() -> None:
    """Write an archive: `python -m benchmarks.archive N OUT.jsonl`."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("stories", type=int)
    parser.add_argument("out", type=Path)
    parser.add_argument("--shared", help="path of the shared/ folder")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    corpus = shared_dir(args.shared) / "corpus"
    count = build_archive(corpus, args.stories, args.out, seed=args.seed)
    print(f"wrote {count:,} stories to {args.out}")


if __name__ == "__main__":
    main()
