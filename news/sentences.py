"""A rule-based sentence splitter for news text, with no model and no downloads.

Every sentence is a verbatim, whitespace-trimmed substring of the input, so callers can
quote it and find it again. Blank lines always end a sentence; a single line break ends
one when it starts or ends a bullet item or a sentence, so bullet lists split item by item
while hard-wrapped prose is kept together.
"""

from __future__ import annotations

import re


def _word_set(text: str) -> frozenset[str]:
    return frozenset(text.split())


# Titles that precede a name: a full stop after them never ends a sentence.
_TITLES = _word_set(
    """mr mrs ms messrs mme mlle dr prof gov sen sens rep reps rev gen lt col sgt capt cmdr
    adm maj pres supt det insp cpl pvt hon fr sr sra srta st mt ft pt vs v e.g i.e cf
    approx viz al ald cllr atty"""
)
# Abbreviations that can also close a sentence ("bought by Apple Inc. The deal ..."):
# these end one only when the next word is a typical sentence opener.
_ABBREVIATIONS = _word_set(
    """jan feb mar apr jun jul aug sep sept oct nov dec mon tue tues wed thu thur thurs fri
    sat sun inc corp co ltd plc llc bros jr sr esq etc no nos vol vols fig figs ed eds op
    ave blvd rd hwy dept univ assn est approx min max ca a.m p.m am pm
    ala ariz ark calif colo conn del fla ga ill ind kan kans ky la md mass mich minn miss mo
    mont neb nev okla ore pa penn tenn tex va vt wash wis wyo"""
)
# Words that start a new sentence after an ambiguous abbreviation ("in the U.S. The ...").
_OPENERS = _word_set(
    """the a an he she it they we i you his her its their our my this that these those there
    but and so yet or in on at for from with by after before when while as if although
    though since because meanwhile however still also then now today yesterday last
    earlier later some many most more several few all both each no not one two three what
    who why how where which mr mrs ms dr"""
)
_BULLETS = "•●▪■◦‣∙·"
_BULLET_LINE = re.compile(rf"^\s*(?:[-*+{_BULLETS}]\s*|\d{{1,3}}[.)]\s+|\(?[a-z]\)\s+)")
_PARAGRAPH = re.compile(r"\n[ \t\u00a0]*\n\s*")
_INLINE_BULLET = re.compile(rf"(?<=\s)(?=[{_BULLETS}])")
# A candidate end: terminal punctuation, closing quotes/brackets, then whitespace.
_END = re.compile(r"(?:\.\.\.|…|[.!?])+[\"'”’»)\]]*(?=\s)")
_WORD_BEFORE = re.compile(r"([\w.]+)$")
_NEXT_WORD = re.compile(r"\s*[\"'“‘«(\[]*([^\W_]+)")
_SPACE_RUN = re.compile(r"\s+")
_LETTER = re.compile(r"[^\W\d_]")
_TERMINAL = re.compile(r"[.!?:;…\"'”’)\]]$")
_DATELINE = re.compile(
    r"""^(?:
        (?:[A-Z][\w.'’-]*(?:[ ,]{1,2}[A-Z][\w.'’-]*){0,4}\s*)?   # Place, Country
        \((?:[A-Z][\w.&'’-]*)(?:\ [A-Z][\w.&'’-]*){0,3}\)        # (CNN) / (Rolling Stone)
        (?:\s*(?:--|[-—–:]))?\s*                                 # optional dash
      | [A-Z][A-Z.'’-]+(?:[ ,]{1,2}[A-Z][\w.'’-]*){0,3}\s+(?:--|[-—–])\s+  # WASHINGTON --
    )""",
    re.VERBOSE,
)


def split_sentences(text: str) -> list[str]:
    """Split news text into sentences, each a verbatim trimmed substring of `text`."""
    out: list[str] = []
    for start, end in _spans(text):
        piece = text[start:end].strip()
        if piece:
            out.append(piece)
    return out


def sentence_spans(text: str) -> list[tuple[int, int]]:
    """(start, end) offsets of the sentences `split_sentences` returns, in order."""
    spans: list[tuple[int, int]] = []
    for start, end in _spans(text):
        piece = text[start:end]
        stripped = piece.strip()
        if stripped:
            lead = len(piece) - len(piece.lstrip())
            spans.append((start + lead, start + lead + len(stripped)))
    return spans


def split_paragraphs(text: str) -> list[str]:
    """The blank-line separated paragraphs of `text`, trimmed, empty ones dropped."""
    return [p.strip() for p in _PARAGRAPH.split(text) if p.strip()]


def strip_dateline(sentence: str) -> str:
    """`sentence` without a leading dateline such as ``(CNN)`` or ``WASHINGTON (Reuters) -``.

    The result is still a verbatim substring; a sentence that is nothing but a dateline
    is returned unchanged."""
    match = _DATELINE.match(sentence)
    if not match:
        return sentence
    rest = sentence[match.end() :]
    # Only a real sentence may follow: "(CNN)Share ..." but not "(Update) and more".
    if not rest or not (rest[0].isupper() or rest[0].isdigit() or rest[0] in "\"'“‘"):
        return sentence
    return rest


def _spans(text: str) -> list[tuple[int, int]]:
    spans: list[tuple[int, int]] = []
    pos = 0
    for para in _PARAGRAPH.finditer(text):
        _split_paragraph(text, pos, para.start(), spans)
        pos = para.end()
    _split_paragraph(text, pos, len(text), spans)
    return spans


def _split_paragraph(text: str, start: int, end: int, spans: list[tuple[int, int]]) -> None:
    lines: list[tuple[int, int]] = []
    line_start = start
    while True:
        nl = text.find("\n", line_start, end)
        if nl < 0:
            lines.append((line_start, end))
            break
        lines.append((line_start, nl))
        line_start = nl + 1
    # Join hard-wrapped lines; break where a bullet item or a sentence ends.
    block_start, block_end = lines[0]
    for ls, le in lines[1:]:
        prev = text[block_start:block_end]
        line = text[ls:le]
        if _breaks_line(prev, line):
            _split_block(text, block_start, block_end, spans)
            block_start = ls
        block_end = le
    _split_block(text, block_start, block_end, spans)


def _breaks_line(prev: str, line: str) -> bool:
    prev_s, line_s = prev.rstrip(), line.lstrip()
    if not prev_s or not line_s:
        return True
    if _BULLET_LINE.match(line_s) or _BULLET_LINE.match(prev.lstrip()):
        return True
    if _TERMINAL.search(prev_s):
        return True
    # An upper-case start after a line without a hyphen or comma is a new item or heading.
    return line_s[0].isupper() and prev_s[-1] not in ",-(" and len(prev_s) < 60


def _split_block(text: str, start: int, end: int, spans: list[tuple[int, int]]) -> None:
    block = text[start:end]
    cuts = [0]
    for bullet in _INLINE_BULLET.finditer(block):
        cuts.append(bullet.start())
    for match in _END.finditer(block):
        if _ends_sentence(block, match):
            cuts.append(match.end())
    cuts = sorted(set(cuts))
    cuts.append(len(block))
    piece_start = 0
    for cut in cuts[1:]:
        # A piece without a letter ("2.", '"...') is a list number or an opening quote:
        # it belongs to the sentence after it.
        if cut < len(block) and not _LETTER.search(block, piece_start, cut):
            continue
        if piece_start < cut:
            spans.append((start + piece_start, start + cut))
        piece_start = cut


def _ends_sentence(block: str, match: re.Match[str]) -> bool:
    end = match.end()
    after = _SPACE_RUN.match(block, end)
    rest = after.end() if after else end
    if rest >= len(block):
        return True
    first = block[rest]
    nxt = _NEXT_WORD.match(block, rest)
    if first in _BULLETS:
        return True
    if nxt is None:
        # Punctuation or a dash follows: only an opening quote starts a new sentence.
        return first in '"“‘«'
    word = nxt.group(1)
    if not (word[0].isupper() or word[0].isdigit()):
        return False
    punct = match.group(0)
    if punct != ".":
        # "?", "!", an ellipsis, or a full stop inside quotes or brackets ("... over." He).
        return True
    before = _WORD_BEFORE.search(block, max(0, match.start() - 30), match.start())
    if before is None:
        return True
    token = before.group(1)
    low = token.lower()
    if low in _TITLES:
        return False
    opener = word.lower() in _OPENERS
    if low in _ABBREVIATIONS:
        return opener and not (low in ("no", "nos") and word[0].isdigit())
    # Initials and dotted acronyms: "George W. Bush", "the U.S. Senate", "U.S. The ...".
    if len(token) == 1 and token.isalpha():
        return opener
    if "." in token and all(len(part) <= 2 for part in token.split(".")):
        return opener
    return True
