"""Parsers for article files: the plain-text article format and JSON Lines archives (see
SPEC.md), plus telling the formats apart (`sniff`) and decoding bytes (`decode`). Pure."""

from __future__ import annotations

import codecs
import json
import logging
import math
import re
import sys
import unicodedata
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, Literal

from news.articles import MAX_ID, Article, ParseError, RelatedLink
from news.dates import ParsedDate, parse_date, parse_iso
from news.text import clean

__all__ = [
    "MAX_RECORD_BYTES",
    "OversizedLine",
    "SourceKind",
    "decode",
    "mostly_utf8",
    "parse_jsonl",
    "parse_text_article",
    "sniff",
]

logger = logging.getLogger(__name__)


def _wordset(words: str) -> frozenset[str]:
    return frozenset(words.split())


SourceKind = Literal["text", "jsonl", "feed", "html"]

# ---------------------------------------------------------------------------------------------
# Unicode normalisation beyond news.text.clean

# Bidi embeddings/isolates and C0 controls carry no text; clean() keeps them, so drop them here.
_BIDI = "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u061c"
_C0 = "".join(map(chr, [*range(0x00, 0x09), *range(0x0E, 0x20), 0x7F]))
# (A regex, not str.translate: translate with a dict is ~20x slower on non-ASCII text.)
_DROP = re.compile(f"[{re.escape(_BIDI + _C0)}]")
# Line and paragraph separators other than "\n" become "\n" (a paragraph separator a blank line).
_NEWLINES = (
    ("\r\n", "\n"),
    ("\r", "\n"),
    ("\x0b", "\n"),
    ("\x0c", "\n"),
    ("\x85", "\n"),
    ("\u2028", "\n"),
    ("\u2029", "\n\n"),
)


def _fast_clean(text: str) -> str:
    """clean(text) with bidi and control characters dropped, skipping the work when there is
    nothing to normalise (most archive records): ~20x faster on clean text."""
    # Everything clean() or _DROP would change is a non-printable character (Unicode Z* or C*)
    # or a double space; "\n" is kept by both. So printable NFC text only needs strip().
    flat = text.replace("\n", "") if "\n" in text else text
    if (
        flat.isprintable()
        and "  " not in text
        and (text.isascii() or unicodedata.is_normalized("NFC", text))
    ):
        return text.strip()
    return clean(_DROP.sub("", text))


# ---------------------------------------------------------------------------------------------
# Plain-text articles

# Spaces, bars and dashes that separate header pieces ("Jane Doe | Reuters", "Delhi - ").
_PUNCT = " |-\u2013\u2014"
_MAX_TITLE = 300
_MAX_PLACE = 100
# At most this many paragraphs after "Story highlights" are highlights; see _Builder.
_MAX_HIGHLIGHTS = 4

_BYLINE = re.compile(
    r"(?:(?:edited|written|reported|compiled|story|text|words)\s+)?by\s*:?\s+(?P<who>\S.*)",
    re.IGNORECASE,
)
_DATE_KEY = re.compile(
    r"(?<![\w-])(?:(?:first|last)\s+)?(?P<key>published|updated|posted|modified)"
    r"(?:\s+(?:on|at))?(?:\s*(?P<colon>:)\s*|\s+)",
    re.IGNORECASE,
)
_CAPTION = re.compile(
    r"(?P<text>.*?)\s*\(?\s*(?P<key>Photograph|Photo|Image|Picture|Pic|PHOTOGRAPH|PHOTO|IMAGE"
    r"|PICTURE)(?:\s+[Cc]redit)?\s*:\s*[(\[]?\s*(?P<credit>[^()\[\]]{1,80}?)\s*[)\]]?\s*\)?"
)
# Substrings of every caption keyword: a cheap test before the regex.
_CAPTION_KEYS = ("Photo", "PHOTO", "Image", "IMAGE", "Pic", "PIC")
_ALSO_READ = re.compile(
    r"(?:also\s+read|read\s+also|also\s+see|see\s+also|read\s+more|must\s+read|don'?t\s+miss"
    r"|related(?:\s+(?:story|stories|article|articles|news|reading))?"
    r"|more\s+on\s+this(?:\s+story)?)"
    # then a separator: "Also read:", "ALSO READ |", "Also read - " (not "Also read-only")
    r"\s*(?:[:|]|\s[-\u2013\u2014](?:\s|$)|[-\u2013\u2014]\s)\s*(?P<title>.*)",
    re.IGNORECASE,
)
_TRAILING_URL = re.compile(r"\s*[(\[<]?\s*(?P<url>https?://[^\s)\]>]+)\s*[)\]>]?\s*$")
_HIGHLIGHTS = re.compile(
    r"(?:story\s+highlights|highlights|key\s+(?:points|highlights|takeaways)|at\s+a\s+glance"
    r"|in\s+brief|in\s+short|tl;?dr)\s*:?",
    re.IGNORECASE,
)
_SEPARATOR = re.compile(r"(?:[-*_=~\u2022\u00b7]\s*){3,}")
_BULLET = re.compile(
    r"(?:[\u2022\u00b7\u25aa\u25e6\u2023\u2219*\u2013\u2014-]|\d{1,2}[.)])\s+(?P<rest>\S.*)"
)

# Whole lines that are page furniture, dropped wherever they appear (compared case-folded,
# without trailing punctuation).
_BOILERPLATE_LINES = frozenset(
    (
        "read in app", "open in app", "continue in app", "share", "share this",
        "share this article", "share this story", "share on facebook", "share on twitter",
        "share on whatsapp",
        "share via email", "tweet", "email", "print", "copy link", "link copied", "advertisement",
        "advertisement - scroll to continue", "scroll to continue",
        "scroll to continue with content",
        "comments", "view comments", "bookmark", "save", "listen", "listen to this article",
        "read more", "also read", "facebook", "twitter", "whatsapp", "linkedin", "telegram",
        "reddit", "instagram", "youtube", "google news", "close", "menu", "skip to content",
    )
)  # fmt: skip
# Lines with these beginnings are dropped only at the end of the article, where sites put
# their app/follow/subscribe blurbs; in the middle they may be real sentences.
_BOILERPLATE_TAIL = re.compile(
    r"(?:follow\s+(?:\S+\s+){1,3}on\b|download\s+(?:the|our)|get\s+the\s+(?:latest|\w+\s+app)"
    r"|subscribe\s+(?:to|for|now)|sign\s+up\s+(?:for|to|now)|click\s+here|join\s+(?:us|our)"
    r"|for\s+(?:more|the\s+latest)\s+(?:news|stories|updates)|stay\s+(?:updated|tuned)"
    r"|(?:also\s+)?watch\s*:|catch\s+all\s+the|read\s+all\s+the\s+latest|install\s+the"
    r"|copyright\b|©|\(c\)\s|all\s+rights\s+reserved)",
    re.IGNORECASE,
)

_NAME_PARTICLES = _wordset(
    "and de da das do dos van von der den la le du di del della bin ibn al el y st"
)
_NAME_SUFFIXES = _wordset("II III IV JR SR")
_ROLE_WORDS = _wordset(
    "correspondent editor writer reporter staff contributor columnist analyst desk bureau "
    "producer journalist chief senior special"
)
_PUBLICATION_WORDS = _wordset(
    "news times post press daily herald tribune journal gazette agency radio tv "
    "television network media wire chronicle observer courier telegraph mail express star "
    "standard bulletin today review magazine online digital channel ledger guardian "
    "reuters afp ap bloomberg"
)
_PUBLICATION_SEPARATOR = re.compile(r"\s+(?:\||/|[-\u2013\u2014]|for)\s+")
_IN_PLACE = re.compile(r"\s+in\s+[A-Z][\w.' -]*$")
_AUTHOR_SPLIT = re.compile(r"\s*(?:,|&|\band\b)\s*", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class _Byline:
    author: str
    publication: str | None


def _is_role(part: str) -> bool:
    return any(word in _ROLE_WORDS for word in part.casefold().split())


def _is_publication(part: str) -> bool:
    words = part.split()
    if not words:
        return False
    if part.startswith("The ") or part.isupper():
        return True
    if any(word.casefold().strip(".") in _PUBLICATION_WORDS for word in words):
        return True
    return len(words) == 1 and part[:1].isupper()


def _name_word_ok(word: str) -> bool:
    if word.casefold() in _NAME_PARTICLES:
        return True
    letters = [ch for ch in word if ch.isalpha()]
    return bool(letters) and letters[0].isupper() and not any(ch.isdigit() for ch in word)


def _title_case(word: str) -> str:
    # "JANE" -> "Jane", "O'NEIL" -> "O'Neil", "JEAN-LUC" -> "Jean-Luc"; initials stay.
    return word if len(word) <= 2 else word.title()


def _parse_byline(line: str) -> _Byline | None:
    """Author and publication from a `By ...` line, or None when it is not a byline."""
    match = _BYLINE.fullmatch(line)
    if match is None:
        return None
    who = match.group("who").strip(_PUNCT + ",;:")
    publication: str | None = None
    names = who
    explicit = _PUBLICATION_SEPARATOR.split(who, maxsplit=1)
    if len(explicit) == 2:
        names, publication = explicit[0], explicit[1].strip() or None
    names = _IN_PLACE.sub("", names)
    parts = [part.strip() for part in names.split(",")]
    while len(parts) > 1:
        last = parts[-1]
        if _is_role(last):
            parts.pop()
        elif publication is None and " and " not in last and _is_publication(last):
            publication = parts.pop()
        else:
            break
    names = ", ".join(parts)
    words = names.split()
    # "and", "van", "de" do not make an all-capitals byline mixed-case.
    shout = not any(
        ch.islower() for word in words if word.casefold() not in _NAME_PARTICLES for ch in word
    )
    if publication is None and not shout:
        # "Palki Sharma WION": trailing all-capitals words after a mixed-case name.
        cut = len(words)
        while (
            cut > 1
            and len(words[cut - 1]) >= 2
            and words[cut - 1].isupper()
            and words[cut - 1] not in _NAME_SUFFIXES
        ):
            cut -= 1
        if cut < len(words):
            publication = " ".join(words[cut:])
            names = " ".join(words[:cut])
    authors = [a for a in _AUTHOR_SPLIT.split(names) if a]
    if not authors or len(authors) > 6:
        return None
    tidy: list[str] = []
    for author in authors:
        author_words = author.split()
        if not 1 <= len(author_words) <= 5 or not all(map(_name_word_ok, author_words)):
            return None
        tidy.append(" ".join(map(_title_case, author_words)) if shout else author)
    joined = tidy[0] if len(tidy) == 1 else ", ".join(tidy[:-1]) + " and " + tidy[-1]
    return _Byline(joined, publication)


def _caption(line: str) -> str | None:
    """`Lukashenko and Putin Photograph:( Reuters )` -> `Lukashenko and Putin (Photograph:
    Reuters)`; None when the line is not a photo caption."""
    if len(line) > _MAX_TITLE or not any(key in line for key in _CAPTION_KEYS):
        return None
    match = _CAPTION.fullmatch(line)
    if match is None:
        return None
    text, key, credit = match.group("text", "key", "credit")
    if not text and "(" not in line and len(credit.split()) > 5:
        return None  # "Photo: The best pictures of the week" reads as a headline, not a credit
    key = key.capitalize()
    text = text.strip(_PUNCT)
    return f"{text} ({key}: {credit})" if text else f"{key}: {credit}"


@dataclass(frozen=True, slots=True)
class _Dateline:
    place: str | None
    byline: _Byline | None
    published: ParsedDate | None
    updated: ParsedDate | None


def _parse_dateline(line: str, *, in_header: bool) -> _Dateline | None:
    """`New Delhi Published: Aug 17, 2020, 10:12 PM(IST) | Updated: ...`, or None.

    Every date on the line must parse, so a sentence such as "Updated figures show ..." stays
    body text; only in the header does `Published: <unreadable>` (with its colon) still count.
    """
    keys = list(_DATE_KEY.finditer(line))
    if not keys:
        return None
    prefix = line[: keys[0].start()].strip(_PUNCT + ",\u00b7\u2022")
    published = updated = None
    for index, key in enumerate(keys):
        end = keys[index + 1].start() if index + 1 < len(keys) else len(line)
        value = line[key.end() : end]
        parsed = parse_date(value.strip(_PUNCT + ",\u00b7\u2022"))
        if parsed is None:
            if not (in_header and key.group("colon")):
                return None
            logger.debug("unreadable date in dateline: %r", value)
        elif key.group("key").casefold() in ("published", "posted"):
            published = published or parsed
        else:
            updated = updated or parsed
    byline = _parse_byline(prefix) if prefix else None
    place = None
    if byline is None and prefix:
        if len(prefix) > _MAX_PLACE:
            return None
        place = prefix
    return _Dateline(place, byline, published, updated)


def _also_read(line: str) -> RelatedLink | Literal[False] | None:
    """A related link from an `Also read: <title>` line; None for an empty one (drop the line);
    False when the line is not an "Also read" line."""
    match = _ALSO_READ.fullmatch(line)
    if match is None:
        return False
    title = match.group("title")
    url = None
    url_match = _TRAILING_URL.search(title)
    if url_match is not None:
        url = url_match.group("url")
        title = title[: url_match.start()]
    title = title.strip(_PUNCT + ":")
    if not title:
        return RelatedLink(url, url) if url else None
    return RelatedLink(title, url)


def _is_boilerplate(line: str) -> bool:
    return line.casefold().rstrip(_PUNCT + ".:!>\u00bb\u203a\u2192") in _BOILERPLATE_LINES


def _is_tail_boilerplate(paragraph: str) -> bool:
    return len(paragraph) <= 300 and all(
        _is_boilerplate(line) or _BOILERPLATE_TAIL.match(line) for line in paragraph.split("\n")
    )


def _join_lines(lines: list[str]) -> str:
    # Lines of one block are one wrapped paragraph, except list items, which keep their line.
    out = lines[0]
    for line in lines[1:]:
        out += ("\n" if _BULLET.fullmatch(line) else " ") + line
    return out


def _bullet_items(lines: list[str]) -> list[str]:
    items: list[str] = []
    for line in lines:
        match = _BULLET.fullmatch(line)
        if match is not None:
            items.append(match.group("rest"))
        elif items:
            items[-1] += " " + line
        else:
            items.append(line)
    return items


def _structure(line: str) -> str | None:
    """What a structural (non-title) line is, for the "no title" error; None for text."""
    if _parse_byline(line) is not None:
        return "a byline"
    if _parse_dateline(line, in_header=False):
        return "a dateline"
    if _HIGHLIGHTS.fullmatch(line):
        return "the 'Story highlights' marker"
    if _also_read(line) is not False:
        return "an 'Also read' link"
    if _caption(line) is not None:
        return "a photo caption"
    return None


@dataclass(slots=True)
class _Builder:
    """Walks the lines after the title, sorting them into header fields, highlights and body.

    Highlights rule: after a `Story highlights` line, the highlights are
    - bullet items (`•`, `-`, `*`, `1.`), when the first paragraph is a list: every following
      list paragraph, up to the first paragraph that is not a list; otherwise
    - the paragraphs up to the first terminator: an `Also read` line, a separator (`***`), a
      photo caption or a dateline (as in the WION sample, where two paragraphs come before the
      first "Also read"), at most _MAX_HIGHLIGHTS of them;
    - with no terminator within _MAX_HIGHLIGHTS paragraphs (or before the end), only the first
      paragraph: the rest is more likely the story than a long list of highlights.
    """

    in_header: bool = True
    author: str | None = None
    publication: str | None = None
    place: str | None = None
    published: ParsedDate | None = None
    updated: ParsedDate | None = None
    caption: str | None = None
    body: list[str] = field(default_factory=list)
    highlights: list[str] = field(default_factory=list)
    related: list[RelatedLink] = field(default_factory=list)
    block: list[str] = field(default_factory=list)
    in_highlights: bool = False
    seen_highlights: bool = False
    highlight_bullets: bool = False
    pending: list[str] = field(default_factory=list)

    def feed(self, line: str) -> None:
        """Take the next (cleaned) line."""
        if not line:
            self._flush()
            return
        link = _also_read(line)
        if link is not False:
            self._flush()
            self._terminate_highlights()
            if link is not None and all(
                link.title.casefold() != seen.title.casefold() for seen in self.related
            ):
                self.related.append(link)
            return
        if _is_boilerplate(line):
            self._flush()
            return
        if _SEPARATOR.fullmatch(line):
            self._flush()
            self._terminate_highlights()
            return
        caption = _caption(line)
        if caption is not None:
            self._flush()
            self._terminate_highlights()
            self.caption = self.caption or caption
            return
        if _DATE_KEY.search(line) is not None:
            dateline = _parse_dateline(line, in_header=self.in_header)
            if dateline is not None:
                self._flush()
                self._terminate_highlights()
                self._take_dateline(dateline)
                return
        if self.in_header and self._header_line(line):
            return
        self.in_header = False
        self.block.append(line)

    def _header_line(self, line: str) -> bool:
        byline = _parse_byline(line)
        if byline is not None and self.author is None:
            self._flush()
            self.author, self.publication = byline.author, byline.publication
            return True
        if not self.seen_highlights and _HIGHLIGHTS.fullmatch(line):
            self._flush()
            self.in_highlights = self.seen_highlights = True
            return True
        if self.published is None and (parsed := parse_date(line)) is not None:
            self._flush()
            self.published = parsed
            return True
        return False

    def _take_dateline(self, dateline: _Dateline) -> None:
        self.published = self.published or dateline.published
        self.updated = self.updated or dateline.updated
        self.place = self.place or dateline.place
        if dateline.byline is not None and self.author is None:
            self.author = dateline.byline.author
            self.publication = dateline.byline.publication

    def _flush(self) -> None:
        if not self.block:
            return
        lines, self.block = self.block, []
        if not self.in_highlights:
            self.body.append(_join_lines(lines))
            return
        # A block that starts with a bullet is a list; other lines continue the item above.
        bullets = _BULLET.fullmatch(lines[0]) is not None
        if not self.pending:
            self.highlight_bullets = bullets
        if self.highlight_bullets:
            if bullets:
                self.pending.extend(_bullet_items(lines))
            else:
                self._close_highlights(keep=len(self.pending))
                self.body.append(_join_lines(lines))
            return
        self.pending.append(_join_lines(lines))
        if len(self.pending) > _MAX_HIGHLIGHTS:
            self._close_highlights(keep=1)

    def _terminate_highlights(self) -> None:
        if self.in_highlights and self.pending:
            self._close_highlights(keep=len(self.pending))

    def _close_highlights(self, *, keep: int) -> None:
        self.highlights.extend(self.pending[:keep])
        self.body.extend(self.pending[keep:])
        self.pending = []
        self.in_highlights = False

    def finish(self) -> None:
        """End of text: settle open highlights and drop trailing boilerplate."""
        self._flush()
        if self.in_highlights:
            self._close_highlights(keep=len(self.pending) if self.highlight_bullets else 1)
        while self.body and _is_tail_boilerplate(self.body[-1]):
            self.body.pop()


def _text_lines(text: str) -> list[str]:
    for separator, newline in _NEWLINES:
        if separator in text:
            text = text.replace(separator, newline)
    return [_fast_clean(line) for line in text.split("\n")]


def parse_text_article(text: str, *, source_name: str | None = None) -> Article:
    """Parse a plain-text article (SPEC "Plain-text article format").

    `source_name` is the publication to record when the byline names none (e.g. a feed's or
    site's name). Raises ParseError, with the line number, when there is no title or no body.
    """
    lines = _text_lines(text)
    # Page furniture above the headline ("Skip to content", "Menu", "***") is not the title.
    start = next(
        (
            index
            for index, line in enumerate(lines)
            if line and not _is_boilerplate(line) and not _SEPARATOR.fullmatch(line)
        ),
        None,
    )
    if start is None:
        raise ParseError("empty article: no title (every line is blank)", line=1)
    title, title_line = lines[start], start + 1
    kind = _structure(title)
    if kind is not None:
        raise ParseError(
            f"no title: line {title_line} is {kind} ({title[:60]!r}); the first non-empty line "
            "must be the headline",
            line=title_line,
        )
    if len(title) > _MAX_TITLE:
        raise ParseError(
            f"no title: line {title_line} has {len(title)} characters, too long for a headline "
            f"(at most {_MAX_TITLE}); the first non-empty line must be the headline",
            line=title_line,
        )
    builder = _Builder()
    for line in lines[start + 1 :]:
        builder.feed(line)
    builder.finish()
    if not builder.body:
        last = max(number for number, line in enumerate(lines, 1) if line)
        raise ParseError(
            f"no body: nothing but header lines from the title on line {title_line} "
            f"to the last line, {last}",
            line=last,
        )
    moment = builder.published or builder.updated
    return Article(
        title=title,
        body=tuple(builder.body),
        highlights=tuple(builder.highlights),
        source=builder.publication or source_name,
        author=builder.author,
        place=builder.place,
        published=moment.utc if moment else None,
        utc_offset_minutes=moment.utc_offset_minutes if moment else None,
        zone=moment.zone if moment else None,
        related=tuple(builder.related),
        caption=builder.caption,
    )


# ---------------------------------------------------------------------------------------------
# JSON Lines archives

_BLANK_LINE = re.compile(r"\n\s*\n")
_LINE_EDGES = re.compile(r" *\n *")


def _json_type(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, float) and not math.isfinite(value):
        # 1e999 loads as infinity; NaN and Infinity are JSON extensions Python accepts.
        return "NaN (not a number)" if math.isnan(value) else "an infinite number (too large)"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return "an object"


def _optional_str(record: dict[str, Any], key: str) -> str | None:
    value = record.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise ParseError(f"{key!r} must be a string or null, not {_json_type(value)}")
    value = _fast_clean(value)
    if "\n" in value or "\r" in value:
        value = " ".join(value.split())
    return value or None


def _required_str(record: dict[str, Any], key: str) -> str:
    if key not in record:
        raise ParseError(f"missing {key!r}")
    value = _optional_str(record, key)
    if value is None:
        raise ParseError(f"{key!r} is empty")
    return value


def _paragraphs(text: str) -> tuple[str, ...]:
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    text = _fast_clean(text)
    if "\n" not in text:
        return (text,) if text else ()
    out = []
    for paragraph in _BLANK_LINE.split(text):
        if " \n" in paragraph or "\n " in paragraph:
            paragraph = _LINE_EDGES.sub("\n", paragraph)
        paragraph = paragraph.strip()
        if paragraph:
            out.append(paragraph)
    return tuple(out)


def _record_article(record: object, line: int | None = None) -> Article:
    if not isinstance(record, dict):
        raise ParseError(f"expected a JSON object, got {_json_type(record)}")
    title = _required_str(record, "title")
    if "text" not in record:
        raise ParseError("missing 'text'")
    text = record["text"]
    if not isinstance(text, str):
        raise ParseError(f"'text' must be a string, not {_json_type(text)}")
    body = _paragraphs(text)
    if not body:
        raise ParseError("'text' is empty")

    external_id = _record_id(record.get("id"))

    published = None
    raw_date = record.get("published")
    if raw_date is not None:
        if not isinstance(raw_date, str):
            raise ParseError(f"'published' must be a string or null, not {_json_type(raw_date)}")
        if raw_date.strip():
            published = parse_iso(raw_date) or parse_date(raw_date)
            if published is None:
                raise ParseError(f"'published' is not a date: {raw_date[:60]!r}")

    url = _optional_str(record, "url")
    if url is not None and not url.lower().startswith(("http://", "https://")):
        raise ParseError(f"'url' must be an http(s) URL: {url[:60]!r}")

    summary = record.get("summary")
    sentences: tuple[str, ...] = ()
    if summary is not None:
        if not isinstance(summary, list):
            raise ParseError(f"'summary' must be a list of strings, not {_json_type(summary)}")
        for item in summary:
            if not isinstance(item, str):
                raise ParseError(f"'summary' items must be strings, not {_json_type(item)}")
        # One check for all the sentences: usually none needs cleaning beyond strip().
        joined = "".join(summary)
        if joined.isascii() and joined.isprintable() and "  " not in joined:
            cleaned = (item.strip() for item in summary)
        else:
            cleaned = (_fast_clean(item) for item in summary)
        sentences = tuple(sentence for sentence in cleaned if sentence)

    return Article(
        title=title,
        body=body,
        highlights=sentences,
        source=_optional_str(record, "source"),
        author=_optional_str(record, "author"),
        published=published.utc if published else None,
        utc_offset_minutes=published.utc_offset_minutes if published else None,
        zone=published.zone if published else None,
        url=url,
        category=_optional_str(record, "category"),
        external_id=external_id or None,
        reference_summary=sentences,
        line=line,
    )


def _record_id(value: object) -> str | None:
    """The record's `id` as text: a string, or a whole number written without a fraction."""
    if value is None:
        return None
    if isinstance(value, str):
        text = value.strip()
    elif isinstance(value, int) and not isinstance(value, bool):
        text = str(value)
    elif isinstance(value, float) and math.isfinite(value) and value.is_integer():
        # 12.0 or 1e3: a whole number, but beyond 2**53 a float no longer holds its digits.
        if abs(value) > 2**53:
            raise ParseError("'id' is too large a number to keep exactly; write it as a string")
        text = str(int(value))
    elif isinstance(value, float) and math.isfinite(value):
        raise ParseError(f"'id' must be a string or a whole number, not {value!r}")
    else:
        raise ParseError(f"'id' must be a string or a number, not {_json_type(value)}")
    if len(text) > MAX_ID:
        raise ParseError(f"'id' is too long: {len(text):,} characters (at most {MAX_ID:,})")
    return text


# Only an escape can put a lone surrogate into a str here (the lines are decoded with
# errors="replace"): a \uD800-\uDFFF escape that json.loads could not pair up.
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")
_SURROGATE = re.compile("[\ud800-\udfff]")


def _lone_surrogate(record: object) -> str | None:
    """The first string in `record` holding a lone surrogate (which no UTF-8 text, and so no
    database, can hold), as a path such as 'title' or 'summary'[2]; None if there is none."""
    # Iterative: a deeply nested record must not hit the recursion limit here.
    stack: list[tuple[str, object]] = [("", record)]
    while stack:
        where, value = stack.pop()
        if isinstance(value, str):
            if _SURROGATE.search(value):
                return where or "the record"
        elif isinstance(value, dict):
            for key, item in value.items():
                if _SURROGATE.search(key):
                    return f"a key in {where}" if where else "a key"
                stack.append((f"{where}[{key!r}]" if where else repr(key), item))
        elif isinstance(value, list):
            stack.extend((f"{where}[{index}]", item) for index, item in enumerate(value))
    return None


# A JSON Lines record longer than this (in bytes, as read) is skipped unread: real records are
# a few KB (the corpus's longest is 38 KB), and json.loads holds ~30x a line's size in memory.
MAX_RECORD_BYTES = 2 * 1024 * 1024


class OversizedLine(str):
    """Stands in for a JSON Lines line longer than MAX_RECORD_BYTES, which the reader skipped
    without holding it: its value is the line's size in bytes; parse_jsonl reports it."""


def parse_jsonl(lines: Iterable[str]) -> Iterator[tuple[int, Article | ParseError]]:
    """Parse a JSON Lines archive (SPEC "JSON Lines archive format"): one (line number,
    Article or ParseError) per non-blank line, so one bad record never stops the rest."""
    loads = json.loads
    for number, line in enumerate(lines, 1):
        if isinstance(line, OversizedLine):
            yield (
                number,
                ParseError(
                    f"record larger than {MAX_RECORD_BYTES // 2**20} MB ({int(line):,} bytes); "
                    "skipped",
                    line=number,
                ),
            )
            continue
        if number == 1 and line.startswith("\ufeff"):
            line = line[1:]
        if not line or line.isspace():
            continue
        try:
            try:
                record = loads(line)
            except json.JSONDecodeError as exc:
                raise ParseError(f"invalid JSON: {exc.msg} (column {exc.colno})") from None
            except RecursionError:
                raise ParseError("invalid JSON: nested too deeply") from None
            except ValueError as exc:
                # Python refuses integers of more than 4,300 digits (CVE-2020-10735).
                if "integer string conversion" in str(exc):
                    raise ParseError(
                        f"invalid JSON: a number longer than {sys.get_int_max_str_digits():,} "
                        "digits"
                    ) from None
                raise ParseError(f"invalid JSON: {exc}") from None
            if "\\u" in line and _SURROGATE_ESCAPE.search(line):
                where = _lone_surrogate(record)
                if where is not None:
                    raise ParseError(
                        f"{where} holds an unpaired surrogate escape (\\uD800-\\uDFFF), "
                        "which is not a character"
                    )
            yield number, _record_article(record, number)
        except ParseError as exc:
            yield number, ParseError(str(exc), line=number)


# ---------------------------------------------------------------------------------------------
# Format sniffing and decoding

_FEED_ROOTS = ("rss", "feed", "rdf:rdf")
_FEED_EXTENSIONS = frozenset({"rss", "atom", "xml", "rdf"})
_HTML_EXTENSIONS = frozenset({"html", "htm", "xhtml", "shtml", "php", "asp", "aspx"})
_JSONL_EXTENSIONS = frozenset({"jsonl", "ndjson", "jl"})
_PROLOGUE = re.compile(r"\s*(?:<\?.*?\?>|<!--.*?-->|<!(?!doctype\s+html)[^>]*>)", re.DOTALL)
_ELEMENT = re.compile(r"<(?P<name>[A-Za-z][\w.:-]*)")
_HTML_TAGS = re.compile(r"<(?:html|head|body|meta|title|div|p|article|section|main)[\s>/]", re.I)


def _extension(name: str) -> str:
    base = name.split("?", 1)[0].split("#", 1)[0].rstrip("/").rsplit("/", 1)[-1]
    return base.rsplit(".", 1)[-1].lower() if "." in base else ""


def _head_text(head: bytes) -> str:
    head = head[:8192]
    for bom, encoding in (
        (codecs.BOM_UTF32_LE, "utf-32-le"),
        (codecs.BOM_UTF32_BE, "utf-32-be"),
        (codecs.BOM_UTF16_LE, "utf-16-le"),
        (codecs.BOM_UTF16_BE, "utf-16-be"),
        (codecs.BOM_UTF8, "utf-8"),
    ):
        if head.startswith(bom):
            return head[len(bom) :].decode(encoding, errors="ignore")
    return head.decode("utf-8", errors="ignore")


def sniff(head: bytes, name: str = "") -> SourceKind:
    """Tell a source's format from its first few KB and its name (file name or URL):
    "jsonl", "feed" (RSS/Atom/RDF), "html" or "text" (a plain-text article)."""
    text = _head_text(head).lstrip("\ufeff \t\r\n")
    if text.startswith("{"):
        return "jsonl"
    if text.startswith("<"):
        rest = text
        while (prologue := _PROLOGUE.match(rest)) is not None and prologue.end() > 0:
            rest = rest[prologue.end() :]
        rest = rest.lstrip()
        if rest[:14].lower().startswith("<!doctype html"):
            return "html"
        element = _ELEMENT.match(rest)
        if element is not None:
            root = element.group("name").lower()
            if root in _FEED_ROOTS or root.endswith(":rdf"):
                return "feed"
            if root == "html":
                return "html"
    extension = _extension(name)
    if extension in _JSONL_EXTENSIONS:
        return "jsonl"
    if extension in _FEED_EXTENSIONS:
        return "feed"
    if extension in _HTML_EXTENSIONS:
        return "html"
    if text.startswith("<"):
        lowered = text[:4096].lower()
        if any(marker in lowered for marker in ("<rss", "<feed", "<rdf:rdf")):
            return "feed"
        if _HTML_TAGS.search(text[:4096]):
            return "html"
    return "text"


_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32-le"),
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)


def mostly_utf8(data: bytes) -> bool:
    """True when `data` is UTF-8, perhaps with a few invalid bytes (a truncated character, a
    stray cp1252 quote): the characters it decodes to outside ASCII are at least as many as
    the invalid sequences. Text in a single-byte charset (cp1252, koi8-r...) almost never
    forms valid UTF-8 sequences, so it is not mistaken for UTF-8."""
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    else:
        return True
    text = data.decode("utf-8", errors="replace")
    genuine = data.count("\ufffd".encode())  # U+FFFD the text really contained
    invalid = text.count("\ufffd") - genuine
    non_ascii = len(text) - len(text.encode("ascii", errors="ignore"))
    return non_ascii - invalid >= invalid


def decode(data: bytes) -> str:
    """Bytes to text: a BOM's encoding (BOM removed), else UTF-8 (a few invalid bytes
    replaced, never the whole text re-read in another charset), else cp1252 (the single
    cp1252 file in the corpus shows old Windows files do turn up)."""
    for bom, encoding in _BOMS:
        if data.startswith(bom):
            body = data[len(bom) :]
            if encoding != "utf-8":
                return body.decode(encoding, errors="replace")
            data = body
            break
    if mostly_utf8(data):
        return data.decode("utf-8", errors="replace")
    # cp1252 leaves five bytes undefined; they become U+FFFD rather than failing.
    return data.decode("cp1252", errors="replace")
