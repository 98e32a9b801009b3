"""Related stories: a latent semantic (LSA) embedding of each story and a dense index.

`RelatedModel` turns a story into a short L2-normalised vector: hashed word and word-pair
counts, sublinear tf-idf, then a truncated SVD fitted on the archive. New stories are
embedded with the fitted model, so they join the index without a rebuild; `should_refit`
says when the archive has grown enough for a refit to pay. `RelatedIndex` keeps the
vectors in one float32 matrix and answers "more like this" with one matrix-vector product.
Only `RelatedModel.fit` needs scikit-learn; embedding and querying need numpy alone.
"""

from __future__ import annotations

import io
import itertools
import json
import logging
import math
import zlib
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from news.text import words

log = logging.getLogger(__name__)

FORMAT = "newsbot-lsa/2"
HASH_BITS = 20
MAX_FEATURES = 50_000
MAX_FIT_STORIES = 10_000
# Cosine above which two stories are the same story (calibrated on bbc_duplicates.tsv;
# see benchmarks/quality.py): such a story is never shown as related to its twin.
DUPLICATE_COSINE = 0.9985
MIN_SCORE = 0.1

FloatArray = npt.NDArray[np.float32]


def _word_set(text: str) -> frozenset[str]:
    return frozenset(text.split())


# scikit-learn's English stop-word list, kept here so that embedding needs no sklearn.
STOP_WORDS = _word_set(
    """a about above across after afterwards again against all almost alone along already
    also although always am among amongst amoungst amount an and another any anyhow anyone
    anything anyway anywhere are around as at back be became because become becomes
    becoming been before beforehand behind being below beside besides between beyond bill
    both bottom but by call can cannot cant co con could couldnt cry de describe detail do
    done down due during each eg eight either eleven else elsewhere empty enough etc even
    ever every everyone everything everywhere except few fifteen fifty fill find fire first
    five for former formerly forty found four from front full further get give go had has
    hasnt have he hence her here hereafter hereby herein hereupon hers herself him himself
    his how however hundred i ie if in inc indeed interest into is it its itself keep last
    latter latterly least less ltd made many may me meanwhile might mill mine more moreover
    most mostly move much must my myself name namely neither never nevertheless next nine
    no nobody none noone nor not nothing now nowhere of off often on once one only onto or
    other others otherwise our ours ourselves out over own part per perhaps please put
    rather re same see seem seemed seeming seems serious several she should show side since
    sincere six sixty so some somehow someone something sometime sometimes somewhere still
    such system take ten than that the their them themselves then thence there thereafter
    thereby therefore therein thereupon these they thick thin third this those though three
    through throughout thru thus to together too top toward towards twelve twenty two un
    under until up upon us very via was we well were what whatever when whence whenever
    where whereafter whereas whereby wherein whereupon wherever whether which while whither
    who whoever whole whom whose why will with within without would yet you your yours
    yourself yourselves"""
)


def story_text(title: str, paragraphs: Iterable[str]) -> str:
    """The text a story is embedded from: its title, then its body."""
    return "\n\n".join([title, *paragraphs])


def kept_words(folded: Iterable[str]) -> list[str]:
    """The words that count (one-letter words and stop words dropped), in order."""
    return [w for w in folded if len(w) > 1 and w not in STOP_WORDS]


def features(text: str) -> list[str]:
    """Words (folded, stop words and one-letter words dropped) and adjacent word pairs:
    what `feature_buckets` hashes (kept readable for tests and for debugging)."""
    kept = kept_words(words(text))
    return kept + [f"{a} {b}" for a, b in itertools.pairwise(kept)]


_U32 = np.uint64(0xFFFFFFFF)
_PAIR_A, _PAIR_B, _PAIR_C = np.uint64(0x9E3779B1), np.uint64(0x85EBCA77), np.uint64(0x27D4EB2F)


def feature_buckets(
    folded: Sequence[str], bits: int = HASH_BITS, cache: dict[str, int] | None = None
) -> npt.NDArray[np.int64]:
    """Hash buckets of a story's features, one per token: CRC-32 of each kept word (stable
    across processes), and for each adjacent pair a multiply-mix of its two words' hashes
    (numpy, no string per pair). `folded` is `news.text.words` of the story's text; `cache`
    (word -> CRC-32) may be shared across the stories of a batch, which repeat most words."""
    kept = kept_words(folded)
    if cache is None:
        cache = {}
    crc = zlib.crc32
    hashes = np.fromiter(
        (cache[w] if w in cache else cache.setdefault(w, crc(w.encode("utf-8"))) for w in kept),
        dtype=np.uint64,
        count=len(kept),
    )
    mask = np.uint64((1 << bits) - 1)
    pairs = (hashes[:-1] * _PAIR_A + hashes[1:] * _PAIR_B + _PAIR_C) & _U32
    pairs ^= pairs >> np.uint64(15)
    pairs = (pairs * _PAIR_B) & _U32
    pairs ^= pairs >> np.uint64(13)
    return np.concatenate([hashes & mask, pairs & mask]).astype(np.int64)


def hashed_features(text: str, bits: int = HASH_BITS) -> npt.NDArray[np.int64]:
    """Feature hash buckets of `text`, one per token (see `feature_buckets`)."""
    return feature_buckets(words(text), bits)


def _counts(
    folded: Sequence[str], bits: int, cache: dict[str, int] | None = None
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    buckets, counts = np.unique(feature_buckets(folded, bits, cache), return_counts=True)
    return buckets, counts


def refit_due(fitted_on: int, stories_now: int) -> bool:
    """Whether a model fitted on an archive of `fitted_on` stories is due for a refit at
    `stories_now` (see `RelatedModel.should_refit`)."""
    return stories_now >= max(2 * fitted_on, 2) and stories_now > fitted_on


def _compact(
    counted: tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]],
) -> tuple[npt.NDArray[np.int32], npt.NDArray[np.int16]]:
    buckets, counts = counted
    return buckets.astype(np.int32), np.minimum(counts, 32_767).astype(np.int16)


# Stories projected together in `embed_words`: bounds the (features x dims) scratch matrix.
_EMBED_CHUNK = 64


@dataclass(frozen=True, slots=True, eq=False)
class RelatedModel:
    """A fitted tf-idf + truncated SVD projection from story text to `dims` numbers."""

    columns: npt.NDArray[np.int64]  # sorted hash buckets kept as features
    idf: FloatArray  # one weight per column
    # (columns, dims): the SVD components as one contiguous row per feature, so that a
    # story gathers a few hundred rows of `dims` floats instead of strided columns.
    rows: FloatArray
    fitted_on: int  # stories in the archive when the model was fitted
    bits: int = HASH_BITS

    @property
    def dims(self) -> int:
        """Length of the vectors `embed` returns."""
        return int(self.rows.shape[1])

    @property
    def components(self) -> FloatArray:
        """The SVD components, (dims, columns) as scikit-learn gives them (a view)."""
        return self.rows.T

    @classmethod
    def fit(
        cls,
        texts: Sequence[str],
        dims: int = 100,
        *,
        max_features: int = MAX_FEATURES,
        max_stories: int = MAX_FIT_STORIES,
        seed: int = 0,
        fitted_on: int | None = None,
    ) -> RelatedModel:
        """Fit on an archive's texts (a random sample of `max_stories` when larger);
        `fitted_on` is the archive's size when `texts` are only a sample of it."""
        from sklearn.decomposition import TruncatedSVD

        n_archive = len(texts) if fitted_on is None else fitted_on
        if len(texts) > max_stories:
            pick = np.random.default_rng(seed).choice(len(texts), max_stories, replace=False)
            texts = [texts[i] for i in sorted(pick)]
        n = len(texts)
        cache: dict[str, int] = {}
        # Each story's features are counted once (int32 buckets, int16 counts: about 6 bytes
        # a feature, 40 MB for 10,000 stories) for the document frequencies and the matrix.
        counted = [_compact(_counts(words(text), HASH_BITS, cache)) for text in texts]
        df_all = np.bincount(
            np.concatenate([b for b, _ in counted]) if counted else np.zeros(0, np.int32),
            minlength=1 << HASH_BITS,
        )
        # Words seen once say nothing about similarity; words in most stories neither.
        min_df, max_df = (2, 0.5 * n) if n >= 20 else (1, float(n))
        uniq = np.flatnonzero((df_all >= min_df) & (df_all <= max_df))
        df = df_all[uniq]
        del df_all
        if len(uniq) > max_features:
            top = np.argsort(-df, kind="stable")[:max_features]
            top.sort()
            uniq, df = uniq[top], df[top]
        idf = (np.log((1.0 + n) / (1.0 + df)) + 1.0).astype(np.float32)
        k = min(dims, len(uniq) - 1, n - 1)
        if k < 1:
            components = np.zeros((1, len(uniq)), dtype=np.float32)
        else:
            x = _tfidf_matrix(counted, uniq, idf)
            svd = TruncatedSVD(k, algorithm="randomized", n_iter=7, random_state=seed)
            svd.fit(x)
            components = svd.components_.astype(np.float32)
        log.info("related model: %d stories, %d features, %d dims", n, len(uniq), k)
        return cls(uniq.astype(np.int64), idf, np.ascontiguousarray(components.T), n_archive)

    def embed(self, texts: Sequence[str]) -> FloatArray:
        """L2-normalised float32 vectors, one row per text (zeros for a text with no known
        words)."""
        return self.embed_words([words(text) for text in texts])

    def embed_words(self, docs: Sequence[Sequence[str]]) -> FloatArray:
        """`embed` for texts already split by `news.text.words` (an importer has split them
        for its dedup keys): one row per story, the batch projected in a few matrix
        products instead of one per story."""
        out = np.zeros((len(docs), self.dims), dtype=np.float32)
        if not len(self.columns) or not docs:
            return out
        cache: dict[str, int] = {}
        per_doc = [feature_buckets(doc, self.bits, cache) for doc in docs]
        lengths = np.fromiter((len(b) for b in per_doc), dtype=np.int64, count=len(docs))
        # One sort for the whole batch: (story, bucket) keys give each story's counts.
        keys = np.repeat(np.arange(len(docs), dtype=np.int64), lengths) << np.int64(self.bits)
        keys |= np.concatenate(per_doc) if per_doc else np.zeros(0, dtype=np.int64)
        keys, counts = np.unique(keys, return_counts=True)
        doc = keys >> np.int64(self.bits)
        buckets = keys & np.int64((1 << self.bits) - 1)
        pos = np.minimum(np.searchsorted(self.columns, buckets), len(self.columns) - 1)
        known = self.columns[pos] == buckets
        doc, cols = doc[known], pos[known]
        weights = ((1.0 + np.log(counts[known])) * self.idf[cols]).astype(np.float32)
        norms = np.sqrt(np.bincount(doc, weights * weights, minlength=len(docs)))
        weights /= norms[doc].astype(np.float32)
        chunks = np.append(np.arange(0, len(docs), _EMBED_CHUNK), len(docs))
        bounds = [int(b) for b in np.searchsorted(doc, chunks).tolist()]
        rows_t = self.rows
        for lo, hi in itertools.pairwise(bounds):
            if lo == hi:
                continue
            part = rows_t[cols[lo:hi]] * weights[lo:hi, None]
            d = doc[lo:hi]
            first = np.flatnonzero(np.r_[True, d[1:] != d[:-1]])
            out[d[first]] = np.add.reduceat(part, first, axis=0)
        norms_out = np.linalg.norm(out, axis=1)
        nonzero = norms_out > 0
        out[nonzero] /= norms_out[nonzero, None]
        return out

    def should_refit(self, stories_now: int) -> bool:
        """True once the archive has doubled since the fit (a refit then costs O(1) per
        story, amortised) or when the model was fitted on fewer than 2 stories."""
        return refit_due(self.fitted_on, stories_now)

    def to_bytes(self) -> bytes:
        """A self-contained serialisation (numpy .npz, no pickle)."""
        meta = {"format": FORMAT, "fitted_on": self.fitted_on, "bits": self.bits}
        buf = io.BytesIO()
        np.savez(
            buf,
            meta=np.frombuffer(json.dumps(meta).encode("utf-8"), dtype=np.uint8),
            columns=self.columns,
            idf=self.idf,
            components=self.components,
        )
        return buf.getvalue()

    @staticmethod
    def readable(data: bytes) -> bool:
        """Whether `from_bytes` can read `data`, checked from its metadata alone (no
        20 MB of components read just to ask)."""
        if not data.startswith(b"PK"):
            return False
        try:
            with np.load(io.BytesIO(data), allow_pickle=False) as npz:
                meta = json.loads(npz["meta"].tobytes().decode("utf-8"))
        except (ValueError, KeyError, OSError):
            return False
        return bool(meta.get("format") == FORMAT)

    @classmethod
    def from_bytes(cls, data: bytes) -> RelatedModel:
        """Read a model written by `to_bytes` (ValueError for anything else, a model of an
        older format included: its hashing differs, so it must be refitted)."""
        if not data.startswith(b"PK"):
            raise ValueError(f"not a {FORMAT} model")
        with np.load(io.BytesIO(data), allow_pickle=False) as npz:
            meta = json.loads(npz["meta"].tobytes().decode("utf-8"))
            if meta.get("format") != FORMAT:
                raise ValueError(f"not a {FORMAT} model: {meta.get('format')!r}")
            return cls(
                # copy=False: the arrays read are ours already; a second 20 MB copy of the
                # components would stay in the bot's heap.
                columns=npz["columns"].astype(np.int64, copy=False),
                idf=npz["idf"].astype(np.float32, copy=False),
                rows=np.ascontiguousarray(npz["components"].astype(np.float32, copy=False).T),
                fitted_on=int(meta["fitted_on"]),
                bits=int(meta["bits"]),
            )


def _tfidf_matrix(
    docs: Iterable[tuple[npt.NDArray[np.int32], npt.NDArray[np.int16]]],
    columns: npt.NDArray[np.int64],
    idf: FloatArray,
) -> Any:
    """Sublinear tf-idf rows, L2-normalised, as a CSR matrix over `columns`."""
    from scipy import sparse

    indptr = [0]
    indices: list[npt.NDArray[np.int32]] = []
    data: list[FloatArray] = []
    for buckets, counts in docs:
        pos = np.minimum(np.searchsorted(columns, buckets), len(columns) - 1)
        known = columns[pos] == buckets
        cols = pos[known].astype(np.int32)
        w = ((1.0 + np.log(counts[known])) * idf[cols]).astype(np.float32)
        norm = float(np.linalg.norm(w))
        if norm > 0:
            w /= norm
        indices.append(cols)
        data.append(w)
        indptr.append(indptr[-1] + len(cols))
    return sparse.csr_matrix(
        (np.concatenate(data), np.concatenate(indices), np.asarray(indptr)),
        shape=(len(indptr) - 1, len(columns)),
    )


def pack_vector(vector: npt.ArrayLike) -> bytes:
    """A vector as little-endian float32 bytes (for a BLOB column)."""
    return np.asarray(vector, dtype="<f4").tobytes()


def unpack_vector(data: bytes) -> FloatArray:
    """The vector `pack_vector` wrote."""
    return np.frombuffer(data, dtype="<f4").astype(np.float32, copy=True)


class RelatedIndex:
    """Story vectors in one float32 matrix: add, remove and top-k cosine queries.

    Story ids are small non-negative integers (database row ids): a flat array maps an id
    to its row, 4 bytes per id up to the largest one, instead of a dict of Python ints."""

    def __init__(self, dims: int, duplicate_cosine: float = DUPLICATE_COSINE) -> None:
        self.dims = dims
        self.duplicate_cosine = duplicate_cosine
        self._vectors = np.zeros((0, dims), dtype=np.float32)
        self._ids = np.zeros(0, dtype=np.int64)
        self._row_of = np.full(0, -1, dtype=np.int32)
        self._size = 0

    def __len__(self) -> int:
        return self._size

    def __contains__(self, story_id: object) -> bool:
        return isinstance(story_id, int) and self._row(story_id) >= 0

    @property
    def nbytes(self) -> int:
        """Bytes held by the vectors and id maps (allocated capacity included)."""
        return int(self._vectors.nbytes + self._ids.nbytes + self._row_of.nbytes)

    def _row(self, story_id: int) -> int:
        if 0 <= story_id < len(self._row_of):
            return int(self._row_of[story_id])
        return -1

    def add(self, ids: Sequence[int], vectors: npt.ArrayLike) -> None:
        """Add or replace stories' vectors (rows of `vectors`, in the order of `ids`)."""
        vecs = np.asarray(vectors, dtype=np.float32).reshape(-1, self.dims)
        keys = np.asarray(ids, dtype=np.int64).reshape(-1)
        if len(keys) != len(vecs):
            raise ValueError(f"{len(keys)} ids for {len(vecs)} vectors")
        if len(keys) == 0:
            return
        if keys.min() < 0 or keys.max() >= 2**31 - 1:
            raise ValueError("story ids must be in 0 .. 2**31 - 2")
        # A repeated id keeps its last vector, as one-by-one adds would.
        keys, last = np.unique(keys[::-1], return_index=True)
        vecs = vecs[::-1][last]
        top = int(keys[-1]) + 1
        if top > len(self._row_of):
            grown = np.full(max(top, len(self._row_of) * 5 // 4 + 1024), -1, dtype=np.int32)
            grown[: len(self._row_of)] = self._row_of
            self._row_of = grown
        rows = self._row_of[keys].astype(np.int64)
        fresh = rows < 0
        count = int(np.count_nonzero(fresh))
        self.reserve(self._size + count)
        rows[fresh] = np.arange(self._size, self._size + count)
        self._ids[rows[fresh]] = keys[fresh]
        self._row_of[keys[fresh]] = rows[fresh]
        self._size += count
        self._vectors[rows] = vecs

    def reserve(self, size: int) -> None:
        """Make room for `size` stories in one allocation (e.g. before loading them all)."""
        capacity = len(self._ids)
        if size <= capacity:
            return
        # Grow by a quarter (not double) so a big index wastes little memory.
        capacity = max(size, capacity + capacity // 4 + 16)
        vectors = np.zeros((capacity, self.dims), dtype=np.float32)
        ids = np.zeros(capacity, dtype=np.int64)
        vectors[: self._size] = self._vectors[: self._size]
        ids[: self._size] = self._ids[: self._size]
        self._vectors, self._ids = vectors, ids

    def remove(self, story_id: int) -> bool:
        """Drop a story; False when it was not in the index."""
        row = self._row(story_id)
        if row < 0:
            return False
        self._row_of[story_id] = -1
        last = self._size - 1
        if row != last:
            # Move the last row into the hole so the live rows stay contiguous.
            moved = int(self._ids[last])
            self._vectors[row] = self._vectors[last]
            self._ids[row] = moved
            self._row_of[moved] = row
        self._size = last
        return True

    def vector(self, story_id: int) -> FloatArray:
        """The stored vector of a story (KeyError when absent)."""
        return np.array(self._vectors[self._row_checked(story_id)], dtype=np.float32)

    def _row_checked(self, story_id: int) -> int:
        row = self._row(story_id)
        if row < 0:
            raise KeyError(story_id)
        return row

    def similar(
        self, story_id: int, k: int = 5, exclude: Collection[int] = ()
    ) -> list[tuple[int, float]]:
        """The `k` stories most like `story_id`, best first, as (id, cosine); never the
        story itself, its near-duplicates, or ids in `exclude`. KeyError when absent."""
        vec = self._vectors[self._row_checked(story_id)]
        return self.similar_to_vector(vec, k, {story_id, *exclude})

    def similar_to_vector(
        self,
        vector: npt.ArrayLike,
        k: int = 5,
        exclude: Collection[int] = (),
        min_score: float = MIN_SCORE,
    ) -> list[tuple[int, float]]:
        """The `k` stories most like `vector`, best first, as (id, cosine), leaving out
        ids in `exclude`, near-duplicates of the vector and of each other."""
        n = self._size
        if n == 0 or k <= 0:
            return []
        query = np.asarray(vector, dtype=np.float32).reshape(self.dims)
        sims = self._vectors[:n] @ query
        want = min(n, 2 * k + len(exclude) + 8)
        while True:
            if want < n:
                top = np.argpartition(-sims, want - 1)[:want]
                top = top[np.argsort(-sims[top], kind="stable")]
            else:
                top = np.argsort(-sims, kind="stable")
            found, settled = self._pick(top, sims, k, exclude, min_score)
            if settled or want >= n:
                return found
            want = min(n, want * 4)

    def _pick(
        self,
        top: npt.NDArray[np.intp],
        sims: FloatArray,
        k: int,
        exclude: Collection[int],
        min_score: float,
    ) -> tuple[list[tuple[int, float]], bool]:
        """The best candidates among `top`; False when more candidates could qualify."""
        chosen: list[tuple[int, float]] = []
        chosen_rows: list[int] = []
        for row in top:
            score = float(sims[row])
            if score < min_score:
                return chosen, True
            story_id = int(self._ids[row])
            if score >= self.duplicate_cosine or story_id in exclude:
                continue
            vec = self._vectors[row]
            # Two copies of one story would fill two of the k places with the same news.
            if any(float(self._vectors[r] @ vec) >= self.duplicate_cosine for r in chosen_rows):
                continue
            chosen.append((story_id, score))
            chosen_rows.append(int(row))
            if len(chosen) == k:
                return chosen, True
        return chosen, False


def cosine(a: npt.ArrayLike, b: npt.ArrayLike) -> float:
    """Cosine similarity of two vectors (0 when either is zero)."""
    va = np.asarray(a, dtype=np.float64)
    vb = np.asarray(b, dtype=np.float64)
    den = math.sqrt(float(va @ va) * float(vb @ vb))
    return float(va @ vb) / den if den else 0.0
