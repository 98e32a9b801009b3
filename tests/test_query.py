"""The query language: parsing, FTS5 expressions, filters, canonical form, matching."""

from __future__ import annotations

import sqlite3
import unicodedata
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from news.query import (
    MAX_QUERY_CHARS,
    Doc,
    FieldFilter,
    Query,
    QueryError,
    field_key,
    parse_query,
)
from news.text import FTS_TOKENIZE

C = "category"
S = "source"

# (typed, fts(), filters, canonical)
PARSE_CASES: list[tuple[str, str | None, tuple[FieldFilter, ...], str]] = [
    ("belarus", '"belarus"', (), "belarus"),
    ("Belarus  protests", '"belarus" AND "protests"', (), "belarus protests"),
    ("protests BELARUS", '"belarus" AND "protests"', (), "belarus protests"),
    ("belarus belarus", '"belarus"', (), "belarus"),
    ('"Belarus protests"', '"belarus protests"', (), '"belarus protests"'),
    ('"belarus"', '"belarus"', (), "belarus"),
    ("a b OR c", '"a" AND ("b" OR "c")', (), "a b OR c"),
    ("c OR b a", '"a" AND ("b" OR "c")', (), "a b OR c"),
    ("x OR y OR z", '("x" OR "y" OR "z")', (), "x OR y OR z"),
    ("cats or dogs", '"cats" AND "dogs" AND "or"', (), "cats dogs or"),
    ("cats OR", '"cats"', (), "cats"),
    ("OR cats OR OR dogs", '("cats" OR "dogs")', (), "cats OR dogs"),
    ("protests -sport", '("protests") NOT ("sport")', (), "protests -sport"),
    (
        'protests -"world cup" -sport',
        '("protests") NOT ("sport" OR "world cup")',
        (),
        'protests -sport -"world cup"',
    ),
    ("protests \u2212sport", '("protests") NOT ("sport")', (), "protests -sport"),
    ("cats NOT dogs", '("cats") NOT ("dogs")', (), "cats -dogs"),
    ("cats AND dogs", '"cats" AND "dogs"', (), "cats dogs"),
    ("cats and dogs", '"and" AND "cats" AND "dogs"', (), "and cats dogs"),
    ("e-mail", '"e mail"', (), '"e mail"'),
    ("don't panic", '"don t" AND "panic"', (), '"don t" panic'),
    ("Café Zürich", '"cafe" AND "zurich"', (), "cafe zurich"),
    ("\u201csmart quotes\u201d", '"smart quotes"', (), '"smart quotes"'),
    ('"unbalanced quote', '"unbalanced quote"', (), '"unbalanced quote"'),
    ('a "b c', '"a" AND "b c"', (), 'a "b c"'),
    ("category:sport", None, (FieldFilter(C, ("sport",)),), "category:sport"),
    ("Category:SPORT", None, (FieldFilter(C, ("sport",)),), "category:sport"),
    ("source:BBC", None, (FieldFilter(S, ("bbc",)),), "source:bbc"),
    (
        'source:"BBC  News" brexit',
        '"brexit"',
        (FieldFilter(S, ("bbc news",)),),
        'brexit source:"bbc news"',
    ),
    (
        "category:sport OR category:tech",
        None,
        (FieldFilter(C, ("sport", "tech")),),
        "category:sport OR category:tech",
    ),
    (
        "election -category:opinion -category:opinions",
        '"election"',
        (FieldFilter(C, ("opinion", "opinions"), negated=True),),
        "election -category:opinion -category:opinions",
    ),
    (
        "category:sport -football",
        None,
        (FieldFilter(C, ("sport",)),),
        "category:sport -football",
    ),
    ("category:intl_world", None, (FieldFilter(C, ("intl world",)),), 'category:"intl world"'),
    # Hostile input: FTS5 and SQL syntax is text, never syntax.
    ("NEAR(a b)", '"b" AND "near a"', (), 'b "near a"'),
    ("NEAR(a b, 5)", '"5" AND "b" AND "near a"', (), '5 b "near a"'),
    ("foo*", '"foo"', (), "foo"),
    ("^start", '"start"', (), "start"),
    ("title:belarus", '"title belarus"', (), '"title belarus"'),
    ("body : x", '"body" AND "x"', (), "body x"),
    ("'; DROP TABLE stories; --", '"drop" AND "stories" AND "table"', (), "drop stories table"),
    ('x" OR 1=1 --', '"or 1 1" AND "x"', (), '"or 1 1" x'),
    ('a "" b', '"a" AND "b"', (), "a b"),
    ('say ""hi""', '"hi" AND "say"', (), "hi say"),
    ("{a b}: c + d", '"a" AND "b" AND "c" AND "d"', (), "a b c d"),
    ("a\x00 b\t\x7fc \u202ed", '"a" AND "b" AND "c" AND "d"', (), "a b c d"),
    ("news \U0001f525\U0001f525 today", '"news" AND "today"', (), "news today"),
    # Right-to-left text: Hebrew and Arabic words, sorted by code point.
    (
        "\u0645\u0631\u062d\u0628\u0627 \u05e9\u05dc\u05d5\u05dd",
        '"\u05e9\u05dc\u05d5\u05dd" AND "\u0645\u0631\u062d\u0628\u0627"',
        (),
        "\u05e9\u05dc\u05d5\u05dd \u0645\u0631\u062d\u0628\u0627",
    ),
    ("x" * MAX_QUERY_CHARS, '"' + "x" * MAX_QUERY_CHARS + '"', (), "x" * MAX_QUERY_CHARS),
]


@pytest.mark.parametrize(("typed", "fts", "filters", "canonical"), PARSE_CASES)
def test_parse(
    typed: str, fts: str | None, filters: tuple[FieldFilter, ...], canonical: str
) -> None:
    query = parse_query(typed)
    assert query.fts() == fts
    assert query.filters == filters
    assert query.canonical == canonical
    # The canonical form is itself a query meaning the same thing.
    assert parse_query(query.canonical) == query


# (typed, a fragment of the reply)
ERROR_CASES: list[tuple[str, str]] = [
    ("", "nothing to search for"),
    ("   ", "nothing to search for"),
    ("!!! ??? ***", "nothing to search for"),
    ('""', "nothing to search for"),
    ("\U0001f525\U0001f525", "nothing to search for"),
    ("OR", "nothing to search for"),
    ("AND NOT", "nothing to search for"),
    ("-opinion", "protests -opinion"),
    ('-"world cup"', 'protests -"world cup"'),
    ("NOT opinion", "protests -opinion"),
    ("-category:opinion", "protests -category:opinion"),
    ("-a -b", "at least one word"),
    ("category:", "category: needs a name"),
    ('source:"" x', "source: needs a name"),
    ("category:!!!", "category:sport"),
    ("a OR -b", "OR can't join an exclusion"),
    ("-a OR b", "OR can't join an exclusion"),
    ("bbc OR source:bbc", "not a word and a field"),
    ("category:a OR source:b", "not a word and a field"),
    ("x" * (MAX_QUERY_CHARS + 1), "too long"),
    ("word " * 1000, "too long"),
    ("x" * 5000, "at most 500"),
    (" ".join(f"w{i}" for i in range(31)), "too many terms"),
]


@pytest.mark.parametrize(("typed", "fragment"), ERROR_CASES)
def test_parse_errors(typed: str, fragment: str) -> None:
    with pytest.raises(QueryError) as caught:
        parse_query(typed)
    message = str(caught.value)
    assert fragment.lower() in message.lower()
    assert caught.value.message == message
    assert len(message) < 200  # a short chat reply


def test_thirty_terms_are_allowed() -> None:
    query = parse_query(" ".join(f"w{i}" for i in range(30)))
    assert len(query.groups) == 30


def test_display_keeps_the_users_spelling() -> None:
    assert parse_query("  Belarus   PROTESTS ").display == "Belarus PROTESTS"
    assert parse_query("stories; --").display == "stories"
    assert parse_query('a OR "b  c" -d category:"Long  name"').display == (
        'a OR "b c" -d category:"Long name"'
    )
    assert parse_query("covid-19 \u201cvaccine trial").display == 'covid-19 "vaccine trial"'


def test_equivalent_spellings_are_equal() -> None:
    first = parse_query("Belarus  protests")
    second = parse_query("protests belarus")
    assert first == second
    assert first.canonical == second.canonical == "belarus protests"
    assert hash(first) == hash(second)
    assert parse_query("belarus protest") != first


def test_field_key() -> None:
    assert field_key("BBC  News") == "bbc news"
    assert field_key("intl_world") == "intl world"
    assert field_key("Économie") == "economie"
    assert field_key(" !! ") == ""


@pytest.mark.parametrize(
    ("value", "story", "expected"),
    [
        ("bbc", "BBC News", True),
        ("news", "BBC News", True),
        ("bbc news", "BBC News", True),
        ("bbc new", "BBC News", False),
        ("tech", "biotech", False),
        ("tech", "Tech", True),
        ("opinion", "opinions", False),
        ("us", "US", True),
        ("world", "intl_world", True),
        ("sport", None, False),
    ],
)
def test_filter_whole_words(value: str, story: str | None, expected: bool) -> None:
    query = parse_query(f'category:"{value}"')
    doc = Doc.from_fields("t", [], [], story, None)
    assert query.matches(doc) is expected
    negated = parse_query(f'x -category:"{value}"')
    assert negated.matches(Doc.from_fields("x", [], [], story, None)) is not expected


def _doc(
    title: str = "",
    highlights: tuple[str, ...] = (),
    body: tuple[str, ...] = (),
    category: str | None = None,
    source: str | None = None,
) -> Doc:
    return Doc.from_fields(title, highlights, body, category, source)


@pytest.mark.parametrize(
    ("query", "doc", "expected"),
    [
        ("protest", _doc("Protesters protested"), True),
        ("protest", _doc("Prosecutors"), False),
        ("protest", _doc("Protests in Minsk"), True),
        ("protesting", _doc("", body=("They protest.",)), True),
        ("cafe", _doc("Un café"), True),
        ("CAFÉ", _doc("the cafe"), True),
        ('"belarus protests"', _doc("Belarus protests grow"), True),
        ('"belarus protests"', _doc("Protests in Belarus"), False),
        ('"belarus protests"', _doc("Belarus", body=("protests",)), False),
        ('"belarus protests"', _doc("", ("Minsk and Belarus", "Protests grow")), True),
        ('"belarus protests"', _doc("", body=("Belarus.", "Protests.")), True),
        ("e-mail", _doc("His e-mail leaked"), True),
        ("e-mail", _doc("mail from e"), False),
        ("minsk OR kyiv belarus", _doc("Kyiv", body=("Belarus",)), True),
        ("minsk OR kyiv belarus", _doc("Kyiv"), False),
        ("belarus -sport", _doc("Belarus sport"), False),
        ("belarus -sport", _doc("Belarus"), True),
        ('belarus -"ice hockey"', _doc("Belarus ice and hockey"), True),
        ('belarus -"ice hockey"', _doc("Belarus ice hockey"), False),
        ("belarus source:bbc", _doc("Belarus", source="BBC News"), True),
        ("belarus source:bbc", _doc("Belarus", source="CNN"), False),
        ("category:sport -football", _doc("Tennis", category="sport"), True),
        ("category:sport -football", _doc("Football", category="sport"), False),
    ],
)
def test_matches(query: str, doc: Doc, expected: bool) -> None:
    assert parse_query(query).matches(doc) is expected


@pytest.fixture(scope="module")
def fts_db() -> Iterator[sqlite3.Connection]:
    db = sqlite3.connect(":memory:")
    db.execute(
        f"CREATE VIRTUAL TABLE fts USING fts5(title, highlights, body, tokenize='{FTS_TOKENIZE}')"
    )
    db.execute(
        "INSERT INTO fts(rowid, title, highlights, body) VALUES (1, ?, '', ?)",
        ("Drop table stories", "near a b 1 1 x foo start"),
    )
    yield db
    db.close()


HOSTILE = [case[0] for case in PARSE_CASES] + [
    "NEAR(",
    "NEAR",
    "*",
    "^",
    "col:",
    "a AND",
    "NOT",
    "x NOT",
    "a OR",
    '"',
    '""""',
    "'",
    "\\",
    "%_",
    "a + b",
    "(a OR b) AND NOT c",
    "{title body}: x",
    "x" * 5000,
    "\x00" * 10 + "a",
    "\ud800 lone surrogate",
    "\u202e\u05d0\u05d1\u05d2",
    "\U0001f44d\U0001f3fd",
]


@pytest.mark.parametrize("typed", HOSTILE)
def test_hostile_queries_run_in_fts5(fts_db: sqlite3.Connection, typed: str) -> None:
    try:
        query = parse_query(typed)
    except QueryError:
        return
    for expression in (query.fts(), query.fts_exclude()):
        if expression is not None:
            rows = fts_db.execute("SELECT rowid FROM fts WHERE fts MATCH ?", (expression,))
            assert rows.fetchall() in ([], [(1,)])
    assert query.fts() is not None or query.filters
    # Shown back to the user: no control, format or lone surrogate characters.
    assert not any(unicodedata.category(c)[0] == "C" for c in query.display)
    query.display.encode()


def test_drop_table_is_a_search(fts_db: sqlite3.Connection) -> None:
    query = parse_query("'; DROP TABLE stories; --")
    rows = fts_db.execute("SELECT rowid FROM fts WHERE fts MATCH ?", (query.fts(),)).fetchall()
    assert rows == [(1,)]


def _parse(text: str) -> Query | str:
    """The parsed query, or the QueryError reply."""
    try:
        return parse_query(text)
    except QueryError as error:
        return str(error)


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.text(max_size=80))
def test_any_text_parses_safely(fts_db: sqlite3.Connection, typed: str) -> None:
    result = _parse(typed)
    if isinstance(result, str):
        assert result  # a QueryError always says what was wrong
        return
    query = result
    assert query.groups or any(not f.negated for f in query.filters)
    for expression in (query.fts(), query.fts_exclude()):
        if expression is not None:
            fts_db.execute("SELECT rowid FROM fts WHERE fts MATCH ?", (expression,)).fetchall()
    assert parse_query(query.canonical) == query
    assert parse_query(query.canonical).canonical == query.canonical


_SYNTAX = st.sampled_from(
    ["OR", "AND", "NOT", "-", '"', "category:", "source:", "(", ")", "*", ":", "NEAR", " "]
)


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.lists(st.one_of(_SYNTAX, st.text(alphabet="abcé -\"'", max_size=6)), max_size=12))
def test_syntax_soup_parses_safely(fts_db: sqlite3.Connection, pieces: list[str]) -> None:
    try:
        query = parse_query(" ".join(pieces))
    except QueryError:
        return
    for expression in (query.fts(), query.fts_exclude()):
        if expression is not None:
            fts_db.execute("SELECT rowid FROM fts WHERE fts MATCH ?", (expression,)).fetchall()
    assert parse_query(query.canonical) == query
