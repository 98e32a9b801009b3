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

A query that says no more than "the story holds the keys of one of its paths" (words and
one-word field values, no phrase, at most two disjunctions) is never verified with
`Query.matches`: with single-word exclusions it takes one disjointness test, and without
any its subscribers are filed under the keys themselves. Identical queries (same
canonical form) are filed and checked once, however many chats subscribe to them.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TypeVar

from news.query import Doc, Query

__all__ = ["Percolator"]

_T = TypeVar("_T")

# An index key: a stem for a text term, "field:word" for a field filter value (stems
# hold no colon, so the two never collide).
_Key = str
_Path = tuple[_Key, ...]  # one key, or two keys a story must both hold

# Without a hint, how common a stem is guessed from its length; a field word (a
# category or source) is taken to be commoner than any word.
_FIELD_COST = 1.0
# Beyond this many pairs, the cross product of two disjunctions is not worth filing.
_MAX_PATHS = 9


@dataclass(slots=True, eq=False)  # identity: slots are set members
class _Slot:
    """One distinct query, the paths it is filed under, and its subscribers.

    When `exact`, a story holding a path matches unless it holds one of the `avoid`
    keys (single-word exclusions, one-word negated field values)."""

    query: Query
    paths: tuple[_Path, ...]
    exact: bool
    avoid: frozenset[_Key]
    subscribers: set[int] = field(default_factory=set)

    @property
    def direct(self) -> bool:
        """Exact with nothing to avoid: subscribers are filed under the keys."""
        return self.exact and not self.avoid


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
        # The index: by one key, or by a pair (first key, then second key); subscribers
        # of direct queries apart from the queries to check, so that gathering them is a
        # few set operations in C.
        self._direct: dict[_Key, set[int]] = {}
        self._check: dict[_Key, set[_Slot]] = {}
        self._direct_pairs: dict[_Key, dict[_Key, set[int]]] = {}
        self._check_pairs: dict[_Key, dict[_Key, set[_Slot]]] = {}

    def __len__(self) -> int:
        """The number of subscriptions."""
        return len(self._subscriptions)

    def __contains__(self, sub_id: object) -> bool:
        """Whether a subscription id is indexed."""
        return sub_id in self._subscriptions

    def add(self, sub_id: int, query: Query) -> None:
        """Index a subscription (replacing any earlier query under the same id)."""
        if sub_id in self._subscriptions:
            self.remove(sub_id)
        canonical = query.canonical
        slot = self._slots.get(canonical)
        if slot is None:
            slot = self._slots[canonical] = self._slot(query)
            if not slot.direct:
                for path in slot.paths:
                    _file(self._check, self._check_pairs, path, slot)
        if slot.direct:
            for path in slot.paths:
                _file(self._direct, self._direct_pairs, path, sub_id)
        slot.subscribers.add(sub_id)
        self._subscriptions[sub_id] = canonical

    def add_many(self, subscriptions: Iterable[tuple[int, Query]]) -> None:
        """Index many subscriptions (e.g. all of them at start-up)."""
        for sub_id, query in subscriptions:
            self.add(sub_id, query)

    def remove(self, sub_id: int) -> None:
        """Drop a subscription; unknown ids are ignored."""
        canonical = self._subscriptions.pop(sub_id, None)
        if canonical is None:
            return
        slot = self._slots[canonical]
        slot.subscribers.discard(sub_id)
        gone = not slot.subscribers
        if gone:
            del self._slots[canonical]
        for path in slot.paths:
            if slot.direct:
                _unfile(self._direct, self._direct_pairs, path, sub_id)
            elif gone:
                _unfile(self._check, self._check_pairs, path, slot)

    def candidates(self, doc: Doc) -> list[Query]:
        """The distinct queries the story has to be checked against (subscriptions
        matched outright by their keys are not among them)."""
        return [slot.query for slot in self._gather(doc)[0]]

    def match(self, doc: Doc) -> list[int]:
        """Sorted ids of the subscriptions whose query matches the story."""
        check, matched = self._gather(doc)
        keys = doc.keys
        for slot in check:
            if keys.isdisjoint(slot.avoid) if slot.exact else slot.query.matches(doc):
                matched.update(slot.subscribers)
        return sorted(matched)

    def _gather(self, doc: Doc) -> tuple[set[_Slot], set[int]]:
        keys = doc.keys
        matched: set[int] = set()
        check: set[_Slot] = set()
        # dict.keys() & keys walks the story's few hundred keys, not the index: C speed,
        # however many subscriptions there are.
        direct, checks = self._direct, self._check
        hits = direct.keys() & keys
        if hits:
            matched.update(*[direct[key] for key in hits])
        hits = checks.keys() & keys
        if hits:
            check.update(*[checks[key] for key in hits])
        # Few pairs start with one key: a plain loop beats building a set.
        direct_pairs, check_pairs = self._direct_pairs, self._check_pairs
        for first in direct_pairs.keys() & keys:
            for second, subscribers in direct_pairs[first].items():
                if second in keys:
                    matched.update(subscribers)
        for first in check_pairs.keys() & keys:
            for second, slots in check_pairs[first].items():
                if second in keys:
                    check.update(slots)
        return check, matched

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
        return _Slot(query, tuple(dict.fromkeys(paths)), exact, frozenset(avoid))


def _file(
    singles: dict[_Key, set[_T]], pairs: dict[_Key, dict[_Key, set[_T]]], path: _Path, member: _T
) -> None:
    if len(path) == 1:
        singles.setdefault(path[0], set()).add(member)
    else:
        pairs.setdefault(path[0], {}).setdefault(path[1], set()).add(member)


def _unfile(
    singles: dict[_Key, set[_T]], pairs: dict[_Key, dict[_Key, set[_T]]], path: _Path, member: _T
) -> None:
    # Empty buckets are dropped, so that the index never outgrows its subscriptions.
    if len(path) == 1:
        _discard(singles, path[0], member)
        return
    inner = pairs.get(path[0])
    if inner is not None:
        _discard(inner, path[1], member)
        if not inner:
            del pairs[path[0]]


def _discard(table: dict[_Key, set[_T]], key: _Key, member: _T) -> None:
    bucket = table.get(key)
    if bucket is not None:
        bucket.discard(member)
        if not bucket:
            del table[key]
