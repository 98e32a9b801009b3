"""Dates as news sites write them: parsed to UTC, with the article's own zone kept for display.

`parse_date` reads the styles seen on news pages and feeds, e.g.::

    Aug 17, 2020, 10:12 PM(IST)        August 17, 2020 10:12 PM IST
    17 August 2020, 22:12 GMT          Mon, 17 Aug 2020 22:12:00 +0000   (RFC 2822)
    2020-08-17T22:12:00+05:30          2020-08-17 22:12                  (ISO 8601)
    17.08.2020 22:12 MSK               Sat 17 Aug 2020 09.30 BST          10:12 a.m. ET, Aug 17

It is strict on purpose: every word must be a month, a weekday, a known zone or one of a
few fillers ("at", "on", "hrs"), so a sentence that merely contains a date is not taken for
a dateline. A date with no zone is UTC.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError


def _wordset(words: str) -> frozenset[str]:
    return frozenset(words.split())


# Fixed offsets in minutes. Abbreviations are ambiguous in general; these are the readings a
# news page most likely means: IST is India (+05:30), not Irish or Israel time; CST and AST
# are the North American zones, not China or Arabia; BST is British Summer Time.
ZONES: dict[str, int] = {
    "UTC": 0, "UT": 0, "GMT": 0, "Z": 0, "WET": 0,
    "WEST": 60, "BST": 60, "CET": 60, "MET": 60, "WAT": 60,
    "CEST": 120, "MEST": 120, "EET": 120, "CAT": 120, "SAST": 120, "IST": 330,
    "EEST": 180, "MSK": 180, "TRT": 180, "EAT": 180, "AST": -240, "ADT": -180,
    "IRST": 210, "GST": 240, "AFT": 270, "PKT": 300, "NPT": 345, "ICT": 420, "WIB": 420,
    "WITA": 480, "WIT": 540, "SGT": 480, "MYT": 480, "HKT": 480, "PHT": 480, "AWST": 480,
    "JST": 540, "KST": 540, "ACST": 570, "ACDT": 630, "AEST": 600, "AEDT": 660,
    "NZST": 720, "NZDT": 780,
    "EST": -300, "EDT": -240, "CST": -360, "CDT": -300, "MST": -420, "MDT": -360,
    "PST": -480, "PDT": -420, "AKST": -540, "AKDT": -480, "HST": -600,
    "NST": -210, "NDT": -150, "BRT": -180, "ART": -180,
}  # fmt: skip

# US generic zones ("10 a.m. ET") whose offset depends on daylight saving at that date.
_REGION_ZONES = {
    "ET": "America/New_York",
    "CT": "America/Chicago",
    "MT": "America/Denver",
    "PT": "America/Los_Angeles",
}

_MONTHS = {
    name: number
    for number, names in enumerate(
        (
            ("jan", "january"), ("feb", "february"), ("mar", "march"), ("apr", "april"),
            ("may",), ("jun", "june"), ("jul", "july"), ("aug", "august"),
            ("sep", "sept", "september"), ("oct", "october"), ("nov", "november"),
            ("dec", "december"),
        ),
        start=1,
    )
    for name in names
}  # fmt: skip
_WEEKDAYS = _wordset(
    "mon monday tue tues tuesday wed weds wednesday thu thur thurs thursday fri friday "
    "sat saturday sun sunday"
)
# Words that may sit inside a date without changing it ("17th", "at", "22:12 hrs").
_FILLERS = _wordset("st nd rd th at on the of hrs hr h hours local time")

_TOKEN = re.compile(
    r"""
    (?P<ymd>(?P<y1>\d{4})([-/])(?P<m1>\d{1,2})\3(?P<d1>\d{1,2}))(?!\d)
  | (?P<dmy>(?P<d2>\d{1,2})([./-])(?P<m2>\d{1,2})\8(?P<y2>\d{4}))(?!\d)
  | (?P<time>(?P<hour>\d{1,2})[:.](?P<minute>\d{2})(?:[:.](?P<second>\d{2})(?:\.\d+)?)?)
  | (?P<offset>[+-]\d{1,2}(?::?\d{2})?)(?!\d)
  | (?P<ampm>[aApP]\.?[mM]\.?)(?![A-Za-z])
  | (?P<word>[A-Za-z]+)
  | (?P<num>\d+)
  | (?P<other>[^\s,()\[\]|/.\-:;·•])
    """,
    re.VERBOSE,
)
_ISO_T = re.compile(r"(?<=\d)T(?=\d)")


@dataclass(frozen=True, slots=True)
class ParsedDate:
    """A moment in UTC, with the offset and zone name the source wrote it in (if any)."""

    utc: datetime
    utc_offset_minutes: int | None = None
    zone: str | None = None


def parse_iso(text: str) -> ParsedDate | None:
    """Parse an ISO 8601 date or datetime (naive means UTC); None if it is not one."""
    text = text.strip()
    if len(text) < 10 or not text[:4].isdigit():
        return None
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    offset = parsed.utcoffset()
    if offset is None:
        return ParsedDate(parsed.replace(tzinfo=UTC))
    try:
        utc = parsed.astimezone(UTC)
    except OverflowError:
        return None  # 9999-12-31T23:00-05:00 is past the last moment datetime can hold
    return ParsedDate(utc, int(offset.total_seconds()) // 60)


def parse_date(text: str) -> ParsedDate | None:
    """Parse a date as news sites write it (see the module docstring); None if it is not one."""
    iso = parse_iso(text)
    if iso is not None:
        return iso
    return _parse_loose(_ISO_T.sub(" ", text))


def _parse_loose(text: str) -> ParsedDate | None:
    year = month = day = None
    hour = minute = second = None
    meridiem: str | None = None
    zone: str | None = None
    offset: int | None = None
    after_time_or_utc = False
    tokens = list(_TOKEN.finditer(text))
    for index, match in enumerate(tokens):
        kind = match.lastgroup
        value = match.group()
        if kind in ("ymd", "dmy"):
            # Numeric dates are year-month-day or day-month-year (never US month/day/year).
            if year is not None or month is not None or day is not None:
                return None
            n = "1" if kind == "ymd" else "2"
            year, month, day = (int(match.group(g + n)) for g in "ymd")
        elif kind == "time":
            if hour is not None:
                return None
            hour, minute = int(match.group("hour")), int(match.group("minute"))
            second = int(match.group("second") or 0)
            after_time_or_utc = True
        elif kind == "offset":
            if not after_time_or_utc or offset is not None:
                return None
            offset = _offset_minutes(value)
            if offset is None:
                return None
        elif kind == "ampm":
            meridiem = value[0].lower()
        elif kind == "num":
            number = int(value)
            following = tokens[index + 1].lastgroup if index + 1 < len(tokens) else None
            if len(value) == 4 and year is None:
                year = number
            elif len(value) <= 2 and following == "ampm" and hour is None:
                hour, minute, second = number, 0, 0
            elif len(value) <= 2 and day is None:
                day = number
            else:
                return None
        elif kind == "word":
            word = value.lower()
            upper = value.upper()
            if word in _MONTHS:
                if month is not None:
                    return None
                month = _MONTHS[word]
            elif word in _WEEKDAYS or word in _FILLERS:
                continue
            elif upper in ZONES or upper in _REGION_ZONES:
                if zone is not None:
                    return None
                zone = upper
                after_time_or_utc = upper in ("UTC", "GMT", "UT") or after_time_or_utc
            else:
                return None
        else:
            return None
    if year is None or month is None or day is None:
        return None
    if hour is not None and meridiem is not None and 1 <= hour <= 12:
        hour = hour % 12 + (12 if meridiem == "p" else 0)
    try:
        local = datetime(year, month, day, hour or 0, minute or 0, second or 0)  # noqa: DTZ001
    except ValueError:
        return None
    try:
        return _attach_zone(local, zone, offset)
    except OverflowError:
        return None  # in UTC the moment falls before year 1 or after 9999


def _offset_minutes(value: str) -> int | None:
    sign = -1 if value[0] == "-" else 1
    digits = value[1:].replace(":", "")
    if len(digits) <= 2:
        hours, minutes = int(digits), 0
    elif len(digits) == 4:
        hours, minutes = int(digits[:2]), int(digits[2:])
    else:
        return None
    if hours > 14 or minutes > 59:
        return None
    return sign * (hours * 60 + minutes)


def _attach_zone(local: datetime, zone: str | None, offset: int | None) -> ParsedDate | None:
    if zone in ("UTC", "GMT", "UT", "Z") and offset is not None:
        # "UTC+05:30", "GMT-4": the offset is the zone; no abbreviation to show.
        zone = None
    elif offset is not None and zone is not None:
        return None  # "+0200 EST" contradicts itself
    if zone == "Z":
        zone = "UTC"
    if zone is None:
        if offset is None:
            return ParsedDate(local.replace(tzinfo=UTC))
        shifted = local.replace(tzinfo=timezone(timedelta(minutes=offset)))
        return ParsedDate(shifted.astimezone(UTC), offset)
    if zone in _REGION_ZONES:
        region_offset = _region_offset(local, _REGION_ZONES[zone])
        if region_offset is None:
            return None
        minutes = region_offset
    else:
        minutes = ZONES[zone]
    aware = local.replace(tzinfo=timezone(timedelta(minutes=minutes)))
    return ParsedDate(aware.astimezone(UTC), minutes, zone)


def _region_offset(local: datetime, key: str) -> int | None:
    try:
        offset = local.replace(tzinfo=ZoneInfo(key)).utcoffset()
    except ZoneInfoNotFoundError:
        return None
    return None if offset is None else int(offset.total_seconds()) // 60
