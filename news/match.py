"""Topic matching: which subscriptions does a new story match, without scanning them all.

The percolator idea (Elasticsearch percolator, Lucene Monitor's presearcher): each
subscription's query is filed under keys that any story it matches must contain, and a
story is verified only against the queries filed under keys it holds.

A query is a conjunction of disjunctions: each OR-group (a lone word or phrase is a group
of one; a phrase contributes each of its words), and each positive field filter (any of
its values). Every disjunction gives one key per alternative: the alternative's rarest
stem, or ``field:word`` for a field value. The query is filed under the cross product of
its two rarest disjunctions (a pair of keys the story must both hold), or under the
alternatives of its only one. Rarity comes from a term-frequency hint (document counts
per stem, e.g. an fts5vocab 'row' table) or, without one, from stem length.

A query that says no more than "the story holds the keys of one of its paths, and none of
these keys" (words and one-word field values, no phrase, at most two disjunctions,
single-word exclusions) is *exact*: it is never verified with `Query.matches`, its
subscribers are filed under its paths and under the keys it avoids. Other queries are
filed once per distinct query (same canonical form), however many chats subscribe, and
verified when a story reaches them.

Matching is a handful of numpy operations over the rows filed under the story's keys:
each row is (second, target), where second is `_ALONE` (the key alone is the path),
`_AVOID` (the target avoids the key) or the code of the pair's second key; target is a
subscription id, or ``~number`` of a query to verify. A row counts when its second key
is among the story's; a subscription then matches unless an avoid row of a key the story
holds names it. Each key's rows live in a Python set (cheap to change one at a time) and
an array compiled from it when the key is next looked up.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from news.query import Doc, Query

__all__ = ["Percolator"]

# An index key: a stem for a text term, "field:word" for a field filter value (stems
# hold no colon, so the two never collide).
_Key = str
_Path = tuple[_Key, ...]  # one key, or two keys a story must both hold
_Ids = npt.NDArray[np.int64]

# Without a hint, how common a stem is guessed from its length; a field word (a
# category or source) is taken to be commoner than any word.
_FIELD_COST = 1.0
# Beyond this many pairs, the cross product of two disjunctions is not worth filing.
_MAX_PATHS = 9
# The "second" of a row: the key alone, a key to avoid, or (from _FIRST_CODE on) the code
# of a pair's second key.
_ALONE = 0
_AVOID = 1
_FIRST_CODE = 2
_NO_IDS: _Ids = np.empty(0, dtype=np.int64)


@dataclass(slots=True, eq=False)
class _Slot:
    """One distinct query, the paths it is filed under, and its subscribers.

    When `exact`, a story holding a path matches unless it holds one of the `avoid`
    keys (single-word exclusions, one-word negated field values); otherwise the story is
    verified with `Query.matches`, and rows name the slot by ``~number``."""

    query: Query
    number: int
    paths: tuple[_Path, ...]
    exact: bool
    avoid: frozenset[_Key]
    subscribers: set[int] = field(default_factory=set)


class Percolator:
    """An index of subscription queries, matched against one story at a time."""

    def __init__(self, term_frequency: Mapping[str, float] | None = None) -> None:
        """`term_frequency` maps stems to how common they are (e.g. document counts from
        an fts5vocab 'row' table); without it the longest stem counts as rarest."""
        self._frequency = term_frequency
        self._field_cost = (
            max(term_frequency.values(), default=1.0) + 1.0
            if term_frequency is not None
            else _FIELD_COST
        )
        self._subscriptions: dict[int, str] = {}  # sub id -> canonical query
        self._slots: dict[str, _Slot] = {}  # canonical query -> slot
        self._checked: dict[int, _Slot] = {}  # number -> slot, for the inexact ones
        self._numbers = itertools.count()
        # The index: per key, its (second, target) rows, and the same as an array.
        self._rows: dict[_Key, set[tuple[int, int]]] = {}
        self._arrays: dict[_Key, _Ids] = {}
        self._stale: set[_Key] = set()  # keys whose array is out of date
        # Codes of the keys that are some pair's second, with how many rows name them;
        # freed codes are reused, so the codes stay below the most seconds ever indexed.
        self._codes: dict[_Key, int] = {}
        self._uses: dict[_Key, int] = {}
        self._free_codes: list[int] = []
        self._code_limit = _FIRST_CODE

    def __len__(self) -> int:
        """The number of subscriptions."""
        return len(self._subscriptions)

    def __contains__(self, sub_id: object) -> bool:
        """Whether a subscription id is indexed."""
        return sub_id in self._subscriptions

    def add(self, sub_id: int, query: Query) -> None:
        """Index a subscription (replacing any earlier query under the same id). Ids are
        non-negative (SQLite row ids)."""
        if sub_id < 0:
            raise ValueError(f"subscription ids are non-negative, not {sub_id}")
        if sub_id in self._subscriptions:
            self.remove(sub_id)
        canonical = query.canonical
        slot = self._slots.get(canonical)
        if slot is None:
            slot = self._slots[canonical] = self._slot(query)
            if not slot.exact:
                self._checked[slot.number] = slot
                self._file(slot, ~slot.number)
        if slot.exact:
            self._file(slot, sub_id)
        slot.subscribers.add(sub_id)
        self._subscriptions[sub_id] = canonical

    def add_many(self, subscriptions: Iterable[tuple[int, Query]]) -> None:
        """Index many subscriptions (e.g. all of them at start-up)."""
        for sub_id, query in subscriptions:
            self.add(sub_id, query)
        self._compile()

    def remove(self, sub_id: int) -> None:
        """Drop a subscription; unknown ids are ignored."""
        canonical = self._subscriptions.pop(sub_id, None)
        if canonical is None:
            return
        slot = self._slots[canonical]
        slot.subscribers.discard(sub_id)
        if slot.exact:
            self._unfile(slot, sub_id)
        if not slot.subscribers:
            del self._slots[canonical]
            if not slot.exact:
                del self._checked[slot.number]
                self._unfile(slot, ~slot.number)

    def candidates(self, doc: Doc) -> list[Query]:
        """The distinct queries the story has to be verified against (subscriptions
        settled by the index alone are not among them)."""
        return [slot.query for slot in self._gather(doc)[2]]

    def match(self, doc: Doc) -> list[int]:
        """Sorted ids of the subscriptions whose query matches the story."""
        matched, blocked, checked = self._gather(doc)
        verified = [sub for slot in checked if slot.query.matches(doc) for sub in slot.subscribers]
        if verified:
            matched = np.concatenate((matched, np.array(verified, dtype=np.int64)))
        if not matched.size:
            return []
        # Sorted and deduplicated (an OR files a subscription under several keys), less
        # the blocked: a sort and comparisons, cheaper than np.unique or np.isin here.
        matched.sort()
        keep = np.empty(matched.size, dtype=bool)
        keep[0] = True
        np.not_equal(matched[1:], matched[:-1], out=keep[1:])
        if blocked.size:
            blocked.sort()
            at = np.searchsorted(blocked, matched)
            at[at == blocked.size] = 0
            keep &= blocked[at] != matched
        ids: list[int] = matched[keep].tolist()
        return ids

    def _gather(self, doc: Doc) -> tuple[_Ids, _Ids, list[_Slot]]:
        """What the story's keys reach: subscriptions filed under a path it holds, the
        subscriptions it blocks by holding a key they avoid, and the slots to verify."""
        if self._stale:
            self._compile()
        keys = doc.keys
        # dict.keys() & keys walks the story's few hundred keys, not the index.
        arrays = self._arrays
        blocks = [arrays[key] for key in arrays.keys() & keys]
        if not blocks:
            return _NO_IDS, _NO_IDS, []
        rows = np.concatenate(blocks)
        codes = self._codes
        present = np.zeros(self._code_limit, dtype=bool)
        present[_ALONE] = True
        present[[codes[key] for key in codes.keys() & keys]] = True
        second, target = rows[:, 0], rows[:, 1]
        reached = target[present[second]]
        blocked = target[second == _AVOID]
        numbers = reached[reached < 0]
        checked = [self._checked[~n] for n in set(numbers.tolist())] if numbers.size else []
        return reached[reached >= 0], blocked, checked

    # --- keeping the index --------------------------------------------------------------

    def _file(self, slot: _Slot, target: int) -> None:
        for path in slot.paths:
            self._change(path[0], _ALONE if len(path) == 1 else self._hold(path[1]), target)
        if slot.exact:
            for key in slot.avoid:
                self._change(key, _AVOID, target)

    def _unfile(self, slot: _Slot, target: int) -> None:
        for path in slot.paths:
            code = _ALONE if len(path) == 1 else self._release(path[1])
            self._change(path[0], code, target, remove=True)
        if slot.exact:
            for key in slot.avoid:
                self._change(key, _AVOID, target, remove=True)

    def _change(self, key: _Key, second: int, target: int, *, remove: bool = False) -> None:
        if remove:
            rows = self._rows[key]
            rows.discard((second, target))
            if not rows:  # empty entries are dropped: the index never outgrows its rows
                del self._rows[key]
        else:
            self._rows.setdefault(key, set()).add((second, target))
        self._stale.add(key)

    def _hold(self, key: _Key) -> int:
        """The code of a pair's second key, counting one more row that names it."""
        code = self._codes.get(key)
        if code is None:
            code = self._free_codes.pop() if self._free_codes else self._code_limit
            self._code_limit = max(self._code_limit, code + 1)
            self._codes[key] = code
        self._uses[key] = self._uses.get(key, 0) + 1
        return code

    def _release(self, key: _Key) -> int:
        """The code of a pair's second key, counting one row fewer (freed at none)."""
        code = self._codes[key]
        self._uses[key] -= 1
        if not self._uses[key]:
            del self._uses[key], self._codes[key]
            self._free_codes.append(code)
        return code

    def _compile(self) -> None:
        for key in self._stale:
            rows = self._rows.get(key)
            if rows:
                self._arrays[key] = np.array(list(rows), dtype=np.int64)
            else:
                self._arrays.pop(key, None)
        self._stale.clear()

    # --- choosing keys ------------------------------------------------------------------

    def _cost(self, key: _Key) -> float:
        if ":" in key:
            return self._field_cost
        if self._frequency is not None:
            # A stem the hint has never seen is rare; +1 makes alternatives add up.
            return float(self._frequency.get(key, 0)) + 1.0
        return 1.0 / len(key) ** 3

    def _slot(self, query: Query) -> _Slot:
        """Choose the paths to file `query` under, and whether holding one is a match."""
        cost = self._cost
        disjunctions: list[tuple[_Key, ...]] = []
        for group in query.groups:
            if len(group) == 1:
                # Every word of a lone term is required: each is a disjunction of one.
                disjunctions.extend((stem,) for stem in group[0].stems)
            else:
                disjunctions.append(tuple(min(t.stems, key=cost) for t in group))
        for flt in query.filters:
            if not flt.negated:
                disjunctions.append(
                    tuple(f"{flt.field}:{max(v.split(), key=len)}" for v in flt.values)
                )
        if not disjunctions:
            # parse_query never builds a query without a positive group or filter.
            raise ValueError(f"query {query.canonical!r} has nothing to index")
        ranked = sorted(set(disjunctions), key=lambda d: (sum(map(cost, d)), d))
        first = ranked[0]
        paths: list[_Path] = [(key,) for key in first]
        filed = 1
        if len(ranked) > 1 and len(first) * len(ranked[1]) <= _MAX_PATHS:
            filed = 2
            paths = []
            for a, b in itertools.product(first, ranked[1]):
                # The rarer key first: fewer stories reach the second step.
                pair = (a,) if a == b else tuple(sorted((a, b), key=lambda k: (cost(k), k)))
                paths.append(pair)
        # Exact: the paths say all the query asks for, but for keys to avoid.
        avoid = [t.stems[0] for t in query.excluded if not t.is_phrase]
        avoid += [f"{f.field}:{v}" for f in query.filters if f.negated for v in f.values]
        exact = (
            filed == len(ranked)
            and all(not t.is_phrase for group in query.groups for t in group)
            and all(not t.is_phrase for t in query.excluded)
            and all(" " not in v for f in query.filters for v in f.values)
        )
        number = next(self._numbers)
        return _Slot(query, number, tuple(dict.fromkeys(paths)), exact, frozenset(avoid))
