"""Summary, related-story and near-duplicate quality against the known baselines.

Run: ``.venv/bin/python -m benchmarks.quality [--quick] [--shared PATH]``.

* Summaries: ROUGE-1/2/L F1 (rouge-score, Porter stemming) on the CNN test half (stories
  501-1000 of cnndm_validation_sample.jsonl; the model only ever saw stories 1-500) and on
  the de-duplicated BBC set, for Lead-1/2/3 and sumy's LexRank on our sentence split, our
  summary and our generated highlights; ms per story on one core (splitting included).
* Related stories: precision@5 (share of the 5 related stories in the story's category) on
  the de-duplicated BBC set, ours against a scikit-learn TF-IDF cosine baseline tuned on
  the even-numbered half of the stories; latency at 100,000 stories.
* Near-duplicates: the 137 listed BBC repeats, and every other pair of BBC + CNN stories.
"""

from __future__ import annotations

import os

# One core: BLAS would otherwise spread a matrix product over every CPU.
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import csv  # noqa: E402
import difflib  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import re  # noqa: E402
import resource  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from collections import defaultdict  # noqa: E402
from collections.abc import Callable, Sequence  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402
import numpy.typing as npt  # noqa: E402

from benchmarks.common import percentile, print_table, shared_dir, write_json  # noqa: E402
from news import neardup  # noqa: E402
from news.related import (  # noqa: E402
    DUPLICATE_COSINE,
    MAX_FIT_STORIES,
    RelatedIndex,
    RelatedModel,
    story_text,
)
from news.sentences import split_paragraphs, split_sentences, strip_dateline  # noqa: E402
from news.summarize import highlights, summarize  # noqa: E402

Record = dict[str, Any]
Summarizer = Callable[[Record], list[str]]
_WORD = re.compile(r"[^\W_]+")


def _read(path: Path) -> list[Record]:
    with path.open(encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def _paragraphs(record: Record) -> list[str]:
    return split_paragraphs(record["text"])


def _our_split(record: Record) -> list[str]:
    sentences: list[str] = []
    for paragraph in _paragraphs(record):
        sentences.extend(split_sentences(paragraph))
    return sentences


def _lead(k: int, strip: bool = False) -> Summarizer:
    def run(record: Record) -> list[str]:
        sentences = _our_split(record)[:k]
        if strip and sentences:
            sentences[0] = strip_dateline(sentences[0])
        return sentences

    return run


class _Tokenizer:
    """The word tokenizer sumy asks for (its own needs NLTK data we cannot download)."""

    def to_words(self, text: str) -> list[str]:
        return _WORD.findall(text)


def _lexrank(k: int) -> Summarizer:
    from sumy.models.dom import ObjectDocumentModel, Paragraph, Sentence
    from sumy.nlp.stemmers import Stemmer
    from sumy.summarizers.lex_rank import LexRankSummarizer
    from sumy.utils import get_stop_words

    summarizer = LexRankSummarizer(Stemmer("english"))
    summarizer.stop_words = get_stop_words("english")
    tokenizer = _Tokenizer()

    def run(record: Record) -> list[str]:
        sentences = _our_split(record)
        doc = ObjectDocumentModel([Paragraph([Sentence(s, tokenizer) for s in sentences])])
        picked = {str(s) for s in summarizer(doc, k)}
        # Keep document order and our exact sentence text.
        return [s for s in sentences if s.strip() in picked][:k]

    return run


def _ours(record: Record) -> list[str]:
    return summarize(record["title"], _paragraphs(record))


def _ours_highlights(record: Record) -> list[str]:
    return highlights(record["title"], _paragraphs(record))


def _run_system(system: Summarizer, records: Sequence[Record]) -> tuple[list[list[str]], float]:
    system(records[0])  # warm caches (stemmer, model) outside the timing
    start = time.process_time()
    outputs = [system(r) for r in records]
    ms = (time.process_time() - start) * 1000 / len(records)
    return outputs, ms


def _rouge(records: Sequence[Record], outputs: Sequence[Sequence[str]]) -> npt.NDArray[np.float64]:
    from rouge_score import rouge_scorer

    scorer = rouge_scorer.RougeScorer(["rouge1", "rouge2", "rougeL"], use_stemmer=True)
    scores = np.zeros((len(records), 3))
    for i, (record, summary) in enumerate(zip(records, outputs, strict=True)):
        s = scorer.score("\n".join(record["summary"]), "\n".join(summary))
        scores[i] = (s["rouge1"].fmeasure, s["rouge2"].fmeasure, s["rougeL"].fmeasure)
    return scores * 100


def _bootstrap_diff(
    ours: npt.NDArray[np.float64], base: npt.NDArray[np.float64], rounds: int = 2000
) -> list[list[float]]:
    """95% paired-bootstrap interval of mean(ours - base) per ROUGE column."""
    rng = np.random.default_rng(0)
    diff = ours - base
    idx = rng.integers(0, len(diff), (rounds, len(diff)))
    means = diff[idx].mean(axis=1)
    low, high = np.percentile(means, [2.5, 97.5], axis=0)
    return [[round(float(a), 2), round(float(b), 2)] for a, b in zip(low, high, strict=True)]


def summaries(cnn_test: Sequence[Record], bbc: Sequence[Record]) -> dict[str, Any]:
    """ROUGE and speed of every summariser on both sets."""
    systems: dict[str, Summarizer] = {
        "Lead-1": _lead(1),
        "Lead-2": _lead(2),
        "Lead-3": _lead(3),
        "Lead-3, dateline removed": _lead(3, strip=True),
        "LexRank-3 (sumy)": _lexrank(3),
        "LexRank-2 (sumy)": _lexrank(2),
        "ours: summarize()": _ours,
        "ours: highlights(n=3)": _ours_highlights,
    }
    result: dict[str, Any] = {}
    per_story: dict[tuple[str, str], npt.NDArray[np.float64]] = {}
    for set_name, records in (("cnn_test", cnn_test), ("bbc", bbc)):
        rows: dict[str, Any] = {}
        for name, system in systems.items():
            outputs, ms = _run_system(system, records)
            scores = _rouge(records, outputs)
            per_story[set_name, name] = scores
            r1, r2, rl = scores.mean(axis=0)
            rows[name] = {
                "rouge1": round(float(r1), 2),
                "rouge2": round(float(r2), 2),
                "rougeL": round(float(rl), 2),
                "ms_per_story": round(ms, 3),
                "sentences": round(float(np.mean([len(o) for o in outputs])), 2),
                "words": round(
                    float(np.mean([sum(len(s.split()) for s in o) for o in outputs])), 1
                ),
            }
        result[set_name] = {"stories": len(records), "systems": rows}
    result["cnn_test"]["ours_minus_lead3_95ci"] = _bootstrap_diff(
        per_story["cnn_test", "ours: summarize()"], per_story["cnn_test", "Lead-3"]
    )
    keep = [i for i, r in enumerate(cnn_test) if r.get("category") != "studentnews"]
    result["cnn_test"]["without_studentnews"] = {
        name: [round(float(v), 2) for v in per_story["cnn_test", name][keep].mean(axis=0)]
        for name in ("Lead-3", "ours: summarize()")
    } | {"stories": len(keep)}
    return result


def _precision_at_5(neighbours: Sequence[Sequence[int]], cats: Sequence[str]) -> list[float]:
    return [
        sum(cats[j] == cats[i] for j in found) / 5 if found else 0.0
        for i, found in enumerate(neighbours)
    ]


def _halves(values: Sequence[float]) -> dict[str, float]:
    arr = np.asarray(values)
    return {
        "all": round(float(arr.mean()), 4),
        "tune_half": round(float(arr[0::2].mean()), 4),
        "other_half": round(float(arr[1::2].mean()), 4),
    }


def _tfidf_baseline(texts: Sequence[str], cats: Sequence[str]) -> tuple[dict[str, Any], Any]:
    from sklearn.feature_extraction.text import TfidfVectorizer

    grid: list[dict[str, Any]] = [
        {"stop_words": "english", "sublinear_tf": True},
        {"stop_words": "english", "sublinear_tf": True, "min_df": 2},
        {"stop_words": "english", "sublinear_tf": True, "min_df": 2, "max_df": 0.5},
        {"stop_words": "english", "sublinear_tf": True, "ngram_range": (1, 2), "min_df": 2},
    ]
    best: tuple[float, dict[str, Any], list[float], Any] | None = None
    for params in grid:
        vectorizer = TfidfVectorizer(**params)
        x = vectorizer.fit_transform(texts)
        sims = (x @ x.T).toarray()
        np.fill_diagonal(sims, -np.inf)
        top = np.argpartition(-sims, 5, axis=1)[:, :5]
        p = _precision_at_5(top.tolist(), cats)
        tune = float(np.mean(p[0::2]))
        if best is None or tune > best[0]:
            best = (tune, params, p, vectorizer)
    assert best is not None
    _, params, p, vectorizer = best
    shown = {k: list(v) if isinstance(v, tuple) else v for k, v in params.items()}
    return {"params": shown, "precision_at_5": _halves(p)}, vectorizer


def _rss_mb(field: str = "VmRSS") -> float:
    """Resident memory now (VmRSS) or at its highest in this program (VmHWM; unlike
    ru_maxrss, not inherited from the parent across fork and exec)."""
    with open("/proc/self/status", encoding="ascii") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def related(
    bbc_all: Sequence[Record],
    bbc: Sequence[Record],
    cnn: Sequence[Record],
    duplicates: Sequence[tuple[str, str]],
    n_big: int,
    queries: int,
) -> dict[str, Any]:
    """Precision@5 on BBC, the duplicate guard, and latency/memory at `n_big` stories."""
    cats = [r["category"] for r in bbc]
    texts = [story_text(r["title"], _paragraphs(r)) for r in bbc]
    out: dict[str, Any] = {"stories": len(bbc)}

    start = time.process_time()
    model = RelatedModel.fit(texts)
    out["fit_seconds"] = round(time.process_time() - start, 2)
    start = time.process_time()
    vectors = model.embed(texts)
    out["embed_ms_per_story"] = round((time.process_time() - start) * 1000 / len(texts), 3)
    out["model_bytes"] = len(model.to_bytes())
    index = RelatedIndex(model.dims)
    index.add(list(range(len(bbc))), vectors)
    ours = _precision_at_5([[j for j, _ in index.similar(i, 5)] for i in range(len(bbc))], cats)
    out["ours"] = {"dims": model.dims, "precision_at_5": _halves(ours)}
    out["tfidf_baseline"], vectorizer = _tfidf_baseline(texts, cats)

    # Duplicate guard: the index holds every BBC story, repeats included.
    all_texts = [story_text(r["title"], _paragraphs(r)) for r in bbc_all]
    all_vectors = model.embed(all_texts)
    pos = {r["id"]: i for i, r in enumerate(bbc_all)}
    dup_cos = [float(all_vectors[pos[a]] @ all_vectors[pos[b]]) for a, b in duplicates]
    full = RelatedIndex(model.dims)
    full.add(list(range(len(bbc_all))), all_vectors)
    twins: dict[int, set[int]] = defaultdict(set)
    for a, b in duplicates:
        twins[pos[a]].add(pos[b])
        twins[pos[b]].add(pos[a])
    for group in list(twins.values()):
        for member in list(group):
            group |= twins[member]
    shown = sum(
        1 for i in range(len(bbc_all)) for j, _ in full.similar(i, 5) if j in twins.get(i, set())
    )
    gram = vectors @ vectors.T
    np.fill_diagonal(gram, -1.0)
    out["duplicate_guard"] = {
        "threshold": DUPLICATE_COSINE,
        "listed_pairs": len(duplicates),
        "listed_min_cosine": round(min(dup_cos), 5),
        "listed_shown_as_related": shown,
        "distinct_pairs_above_threshold": int(np.count_nonzero(np.triu(gram) >= DUPLICATE_COSINE)),
    }

    # Latency at scale: BBC + CNN vectors, each copied with noise (cosine ~0.9 to its
    # source, so copies are similar but not duplicates) up to n_big rows.
    cnn_texts = [story_text(r["title"], _paragraphs(r)) for r in cnn]
    base = np.vstack([vectors, model.embed(cnn_texts)])
    rng = np.random.default_rng(0)
    big = RelatedIndex(model.dims)
    big.reserve(n_big)  # as the store does when it loads every vector at start-up
    chunk = 10_000
    for start_id in range(0, n_big, chunk):
        count = min(chunk, n_big - start_id)
        src = base[rng.integers(0, len(base), count)]
        noise = rng.normal(0.0, 0.5 / np.sqrt(model.dims), src.shape).astype(np.float32)
        vecs = src + noise
        vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
        big.add(list(range(start_id, start_id + count)), vecs)
    sample = rng.choice(n_big, queries, replace=False)
    times = []
    for story_id in sample:
        t0 = time.perf_counter()
        big.similar(int(story_id), 5)
        times.append(time.perf_counter() - t0)
    ms = [t * 1000 for t in times]
    out["ours"]["at_scale"] = {
        "stories": n_big,
        "queries": queries,
        "p50_ms": round(percentile(ms, 50), 3),
        "p95_ms": round(percentile(ms, 95), 3),
        "max_ms": round(max(ms), 3),
        "index_mb": round(big.nbytes / 2**20, 1),
    }
    # A new story joins: embed it, add it (one at a time, as ingest does).
    join = []
    for offset, text in enumerate(cnn_texts[:200]):
        t0 = time.perf_counter()
        big.add([n_big + offset], model.embed([text]))
        join.append((time.perf_counter() - t0) * 1000)
    out["ours"]["at_scale"]["join_ms_p50"] = round(percentile(join, 50), 3)
    out["ours"]["at_scale"]["join_ms_max"] = round(max(join), 3)
    del big
    out["ours"]["fresh_process"] = _probe_rss(model, n_big)

    # The baseline at the same scale: its sparse rows repeated up to n_big.
    from scipy import sparse

    x = vectorizer.transform(texts + cnn_texts).tocsr()
    reps = -(-n_big // x.shape[0])
    big_x = sparse.vstack([x] * reps).tocsr()[:n_big]
    times = []
    for story_id in sample[: max(20, queries // 5)]:
        t0 = time.perf_counter()
        sims = (big_x @ big_x[int(story_id)].T).toarray().ravel()
        sims[int(story_id)] = -np.inf
        top = np.argpartition(-sims, 5)[:5]
        top[np.argsort(-sims[top])]
        times.append(time.perf_counter() - t0)
    ms = [t * 1000 for t in times]
    out["tfidf_baseline"]["at_scale"] = {
        "stories": n_big,
        "queries": len(times),
        "p50_ms": round(percentile(ms, 50), 3),
        "p95_ms": round(percentile(ms, 95), 3),
        "matrix_mb": round(
            (big_x.data.nbytes + big_x.indices.nbytes + big_x.indptr.nbytes) / 2**20, 1
        ),
    }
    return out


def _rss_probe(model_path: Path, n: int) -> None:
    """In a fresh process: RSS of numpy + our module, then with the model and an n-story
    index (what the related-story feature adds to the bot)."""
    report = {"rss_mb_imports": round(_rss_mb(), 1)}
    model = RelatedModel.from_bytes(model_path.read_bytes())
    report["rss_mb_model"] = round(_rss_mb(), 1)
    rng = np.random.default_rng(1)
    index = RelatedIndex(model.dims)
    index.reserve(n)
    # Batches of 1,000, as the store reads its vector column at start-up.
    for start in range(0, n, 1000):
        count = min(1000, n - start)
        vecs = rng.standard_normal((count, model.dims), dtype=np.float32)
        vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
        index.add(list(range(start, start + count)), vecs)
    report["rss_mb_index"] = round(_rss_mb(), 1)
    print(json.dumps(report))


def _fit_probe(corpus: Path, n: int) -> None:
    """In a fresh process: time and peak RSS of fitting on `n` stories (BBC + CNN texts
    repeated), the cost of a scheduled refit at the sample cap."""
    records = _read(corpus / "bbc_news_summary.jsonl") + _read(
        corpus / "cnndm_validation_sample.jsonl"
    )
    texts = [story_text(r["title"], _paragraphs(r)) for r in records]
    texts = (texts * (n // len(texts) + 1))[:n]
    rss = _rss_mb()
    start = time.perf_counter()
    model = RelatedModel.fit(texts)
    seconds = time.perf_counter() - start
    peak = _rss_mb("VmHWM")
    print(
        json.dumps(
            {
                "stories": n,
                "seconds": round(seconds, 1),
                "rss_mb_before": round(rss, 1),
                "peak_rss_mb": round(peak, 1),
                "dims": model.dims,
            }
        )
    )


def _subprocess_json(*args: str) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.quality", *args],
        check=True,
        capture_output=True,
        text=True,
        cwd=Path(__file__).resolve().parents[1],
    )
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def _probe_rss(model: RelatedModel, n: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "model.npz"
        path.write_bytes(model.to_bytes())
        return _subprocess_json("--rss-probe", str(path), str(n))


def near_duplicates(
    records: Sequence[Record], duplicates: Sequence[tuple[str, str]]
) -> dict[str, Any]:
    """Recall on the listed BBC repeats and every flagged pair among BBC + CNN."""
    start = time.process_time()
    sigs = [neardup.signature(r["title"], r["text"]) for r in records]
    ms = (time.process_time() - start) * 1000 / len(records)
    pos = {r["id"]: i for i, r in enumerate(records)}
    values = np.stack([s.values for s in sigs])
    # Candidates through the LSH bands only, as the store finds them.
    buckets: dict[int, list[int]] = defaultdict(list)
    for i, sig in enumerate(sigs):
        for key in sig.bands:
            buckets[key].append(i)
    candidates: set[tuple[int, int]] = set()
    for members in buckets.values():
        for a in range(len(members)):
            for b in range(a + 1, len(members)):
                candidates.add((members[a], members[b]))
    flagged = {(a, b) for a, b in candidates if neardup.is_near_duplicate(sigs[a], sigs[b])}
    listed = {tuple(sorted((pos[a], pos[b]))) for a, b in duplicates}
    root: dict[int, int] = {}
    for a, b in sorted(listed):
        root[b] = root.get(a, a)
    same = {(a, b) for a, b in flagged if root.get(a, a) == root.get(b, b)}
    others = sorted(flagged - same)
    # Brute force over every pair for the closest pair left unflagged.
    best_unflagged = 0.0
    for i in range(len(records) - 1):
        sims = np.count_nonzero(values[i + 1 :] == values[i], axis=1) / neardup.NUM_PERM
        for j in np.nonzero(sims >= 0.5)[0]:
            pair = (i, i + 1 + int(j))
            if pair not in flagged:
                best_unflagged = max(best_unflagged, float(sims[j]))
    extra: list[dict[str, Any]] = []
    ratios: list[float] = []
    for a, b in others:
        ra, rb = records[a], records[b]
        ratio = difflib.SequenceMatcher(None, ra["text"], rb["text"], autojunk=False).ratio()
        ratios.append(round(ratio, 3))
        extra.append(
            {
                "pair": [ra["id"], rb["id"]],
                "titles": [ra["title"], rb["title"]],
                "similarity": round(neardup.similarity(sigs[a], sigs[b]), 3),
                "text_char_ratio": round(ratio, 3),
            }
        )
    caught = sum(1 for pair in listed if pair in flagged)
    return {
        "threshold": neardup.THRESHOLD,
        "stories": len(records),
        "ms_per_signature": round(ms, 3),
        "listed_caught": caught,
        "listed_total": len(listed),
        "candidate_pairs": len(candidates),
        "flagged_pairs": len(flagged),
        "flagged_beyond_list": extra,
        "min_char_ratio_of_flagged_beyond_list": min(ratios, default=None),
        "max_similarity_unflagged": round(best_unflagged, 3),
    }


def main(argv: Sequence[str] | None = None) -> None:
    """Run everything, print the table, write benchmarks/results/quality.json."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shared", help="shared folder (default: $NEWSBOT_SHARED or ../shared)")
    parser.add_argument("--quick", action="store_true", help="small samples, for a smoke run")
    parser.add_argument("--rss-probe", nargs=2, metavar=("MODEL", "N"), help=argparse.SUPPRESS)
    parser.add_argument("--fit-probe", type=int, metavar="N", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.rss_probe:
        _rss_probe(Path(args.rss_probe[0]), int(args.rss_probe[1]))
        return
    corpus = shared_dir(args.shared) / "corpus"
    if args.fit_probe:
        _fit_probe(corpus, args.fit_probe)
        return

    cnn = _read(corpus / "cnndm_validation_sample.jsonl")
    bbc_all = _read(corpus / "bbc_news_summary.jsonl")
    with (corpus / "bbc_duplicates.tsv").open(encoding="utf-8") as fh:
        duplicates = [
            (r["kept_id"], r["duplicate_id"]) for r in csv.DictReader(fh, delimiter="\t")
        ]
    repeat_ids = {b for _, b in duplicates}
    bbc = [r for r in bbc_all if r["id"] not in repeat_ids]
    cnn_test = cnn[500:]
    n_big, queries = 100_000, 1000
    bbc_sum = bbc
    if args.quick:
        cnn_test, bbc_sum, n_big, queries = cnn_test[:100], bbc[:200], 10_000, 200

    results: dict[str, Any] = {
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs",
        "python": platform.python_version(),
        "quick": args.quick,
    }
    results["summaries"] = summaries(cnn_test, bbc_sum)
    results["related"] = related(bbc_all, bbc, cnn, duplicates, n_big, queries)
    fit_n = 3000 if args.quick else MAX_FIT_STORIES
    probe_args = ["--fit-probe", str(fit_n)] + (["--shared", args.shared] if args.shared else [])
    results["related"]["fit_at_sample_cap"] = _subprocess_json(*probe_args)
    results["near_duplicates"] = near_duplicates(bbc_all + cnn, duplicates)
    _print(results)
    path = write_json("quality", results)
    print(f"\nwrote {path}")


def _print(results: dict[str, Any]) -> None:
    s = results["summaries"]
    print(
        f"\nSummaries: ROUGE F1 x100 (rouge-score, stemming); CNN test half "
        f"({s['cnn_test']['stories']} stories), BBC de-duplicated ({s['bbc']['stories']})"
    )
    rows = []
    for name, c in s["cnn_test"]["systems"].items():
        b = s["bbc"]["systems"][name]
        rows.append(
            [
                name,
                c["rouge1"],
                c["rouge2"],
                c["rougeL"],
                c["words"],
                c["ms_per_story"],
                b["rouge1"],
                b["rouge2"],
                b["rougeL"],
                b["ms_per_story"],
            ]
        )
    print_table(
        ["system", "CNN R-1", "R-2", "R-L", "words", "ms", "BBC R-1", "R-2", "R-L", "ms"], rows
    )
    ci = s["cnn_test"]["ours_minus_lead3_95ci"]
    print(f"ours - Lead-3 on CNN, 95% paired bootstrap: R-1 {ci[0]}, R-2 {ci[1]}, R-L {ci[2]}")

    r = results["related"]
    print(f"\nRelated stories: precision@5 on BBC ({r['stories']} stories, repeats removed)")
    big = r["ours"]["at_scale"]
    base_big = r["tfidf_baseline"]["at_scale"]
    print_table(
        ["system", "P@5 all", "tune half", "other half", "stories", "p50 ms", "p95 ms", "MB"],
        [
            [
                f"ours: LSA {r['ours']['dims']}d",
                *(f"{v:.4f}" for v in r["ours"]["precision_at_5"].values()),
                big["stories"],
                big["p50_ms"],
                big["p95_ms"],
                big["index_mb"],
            ],
            [
                "TF-IDF cosine (tuned)",
                *(f"{v:.4f}" for v in r["tfidf_baseline"]["precision_at_5"].values()),
                base_big["stories"],
                base_big["p50_ms"],
                base_big["p95_ms"],
                base_big["matrix_mb"],
            ],
        ],
    )
    g = r["duplicate_guard"]
    fresh = r["ours"]["fresh_process"]
    print(
        f"A fresh process: {fresh['rss_mb_imports']} MB RSS with numpy and news.related, "
        f"{fresh['rss_mb_model']} MB with the model, {fresh['rss_mb_index']} MB with a "
        f"{big['stories']:,}-story index."
    )
    print(
        f"Model {r['model_bytes'] / 2**20:.1f} MB, fit {r['fit_seconds']} s, embed "
        f"{r['embed_ms_per_story']} ms/story, join the {big['stories']:,}-story index "
        f"{big['join_ms_p50']} ms/story (max {big['join_ms_max']}, when the matrix grows); "
        f"listed BBC repeats: min cosine "
        f"{g['listed_min_cosine']} (guard {g['threshold']}), shown as related "
        f"{g['listed_shown_as_related']}"
    )
    fit = r["fit_at_sample_cap"]
    print(
        f"Refit at the sample cap ({fit['stories']:,} stories, fresh process): "
        f"{fit['seconds']} s, peak RSS {fit['peak_rss_mb']} MB (from {fit['rss_mb_before']} MB)"
    )
    n = results["near_duplicates"]
    print(
        f"\nNear-duplicates (threshold {n['threshold']}, {n['stories']} stories, "
        f"{n['ms_per_signature']} ms/signature): listed BBC repeats caught "
        f"{n['listed_caught']}/{n['listed_total']}; other pairs flagged "
        f"{len(n['flagged_beyond_list'])} (all revisions of one article: text similarity "
        f">= {n['min_char_ratio_of_flagged_beyond_list']}); closest pair not flagged "
        f"{n['max_similarity_unflagged']}; candidate pairs from LSH bands {n['candidate_pairs']}"
    )


if __name__ == "__main__":
    main()
