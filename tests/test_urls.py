"""Canonical URLs: one story, one address, whatever link it was reached by."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from news.urls import canonical_url, host_of, is_http_url, is_tracking_param


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("HTTPS://News.Example.COM/Path/Story.html", "https://news.example.com/Path/Story.html"),
        ("http://news.example:80/a", "http://news.example/a"),
        ("https://news.example:443/a", "https://news.example/a"),
        ("https://news.example:8443/a", "https://news.example:8443/a"),
        ("https://news.example", "https://news.example/"),
        ("https://news.example/a#comments", "https://news.example/a"),
        ("https://news.example/a?", "https://news.example/a"),
        ("https://news.example/a?utm_source=rss&utm_medium=feed", "https://news.example/a"),
        ("https://news.example/a?b=2&a=1", "https://news.example/a?a=1&b=2"),
        ("https://news.example/a?id=7&UTM_Campaign=x&fbclid=abc", "https://news.example/a?id=7"),
        (
            "https://news.example/a?gclid=1&mc_cid=2&mc_eid=3&igshid=4&ref=5&ref_src=6&cmpid=7"
            "&ocid=8&spm=9&_ga=10&yclid=11&ns_campaign=12&keep=yes",
            "https://news.example/a?keep=yes",
        ),
        ("https://news.example/a?q=b%20c&x=%2F", "https://news.example/a?q=b%20c&x=%2F"),
        ("https://news.example/a?flag&utm_x=1", "https://news.example/a?flag"),
        ("https://news.example./a", "https://news.example/a"),
        ("  https://news.example/a  ", "https://news.example/a"),
        ("https://[2001:DB8::1]:443/a", "https://[2001:db8::1]/a"),
        ("https://user:pw@news.example/a", "https://user:pw@news.example/a"),
        ("https://news.example/a;jsessionid=1", "https://news.example/a;jsessionid=1"),
        ("mailto:editor@news.example", "mailto:editor@news.example"),
        ("not a url", "not a url"),
        ("https://news.example:99999/a", "https://news.example:99999/a"),
    ],
)
def test_canonical_url(url: str, expected: str) -> None:
    assert canonical_url(url) == expected


def test_reference_and_referrer_are_not_confused() -> None:
    # Only exact names are dropped: `reference` or `refresh` are real parameters.
    assert canonical_url("https://n.example/a?reference=3&refresh=1") == (
        "https://n.example/a?reference=3&refresh=1"
    )
    assert is_tracking_param("utm_content")
    assert is_tracking_param("FBCLID")
    assert not is_tracking_param("id")


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("https://news.example/a", True),
        ("http://127.0.0.1:8080/feed", True),
        ("HTTP://NEWS.EXAMPLE", True),
        ("ftp://news.example/a", False),
        ("javascript:alert(1)", False),
        ("https://", False),
        ("//news.example/a", False),
        ("/relative/path", False),
        ("https://news.example:port/a", False),
        ("", False),
    ],
)
def test_is_http_url(value: str, expected: bool) -> None:
    assert is_http_url(value) is expected


def test_host_of() -> None:
    assert host_of("https://WWW.News.Example:8080/a") == "www.news.example"
    assert host_of("nonsense") == ""


_segment = st.text(alphabet="abcXYZ019-._~%", min_size=0, max_size=8)
_param = st.sampled_from(["a", "b", "id", "utm_source", "fbclid", "page", "ref", "q"])
_query = st.lists(st.tuples(_param, _segment), max_size=5)


@given(
    scheme=st.sampled_from(["http", "https", "HTTP", "Https"]),
    host=st.sampled_from(["news.example", "NEWS.example", "a.b.example", "127.0.0.1"]),
    port=st.sampled_from(["", ":80", ":443", ":8080"]),
    path=st.lists(_segment, max_size=4),
    query=_query,
    fragment=_segment,
)
def test_canonical_url_is_idempotent_and_tracking_free(
    scheme: str, host: str, port: str, path: list[str], query: list[tuple[str, str]], fragment: str
) -> None:
    qs = "&".join(f"{k}={v}" for k, v in query)
    url = f"{scheme}://{host}{port}/{'/'.join(path)}?{qs}#{fragment}"
    once = canonical_url(url)
    assert canonical_url(once) == once
    assert is_http_url(once)
    assert "#" not in once
    assert "utm_source=" not in once
    assert "fbclid=" not in once
    assert once.startswith(("http://", "https://"))


def test_a_url_guid_keeps_its_fragment_while_the_link_drops_it() -> None:
    """Issue 9: 50 diary notes `page.html#note-N` are 50 items, not the 7 pages they are on."""
    from bot.feeds import scoped_guid
    from news.feeds import FeedEntry, dedup_keys, entry_to_article

    guids = [f"https://field-diary.example/week-1.html#note-{n}" for n in (1, 2)]
    keys = []
    for n, guid in enumerate(guids):
        entry = FeedEntry(guid, guid, f"Note {n}", f"Text {n}.", None, None, (), None)
        article = entry_to_article(entry, feed_title="Field Diary")
        keys.append(dedup_keys(article))
        assert scoped_guid(guid, "https://field-diary.example/feed.xml") == guid
    assert [k[0] for k in keys] == guids  # guids: distinct, fragments kept
    assert keys[0][1] == keys[1][1] == canonical_url(guids[0])  # one page
    assert "#" not in canonical_url(guids[0])
