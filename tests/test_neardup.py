"""Near-duplicate detection: MinHash signatures, LSH band keys, serialisation."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from news.neardup import (
    BANDS,
    NUM_PERM,
    NearDupSignature,
    is_near_duplicate,
    signature,
    similarity,
)

BODY = (
    "China's economy has expanded by a breakneck 9.5% during 2004, faster than predicted "
    "and well above 2003's 9.1%. The news may mean more limits on investment and lending "
    "as Beijing tries to take the heat out of the economy. Inflation has remained under "
    "control, with consumer prices up 3.9% on the year. The government has said it wants "
    "to see growth of about 8% this year, and analysts expect more measures to cool the "
    "property market and curb bank lending in the months to come."
)
OTHER = (
    "Manchester United beat Arsenal 2-1 at Old Trafford on Sunday, with Wayne Rooney "
    "scoring the winner late in the second half. The result lifts United to third place "
    "in the Premier League, while Arsenal stay second, eight points behind Chelsea. Both "
    "managers praised the referee for keeping control of a bad-tempered game."
)


def test_same_body_under_a_reworded_headline_is_a_duplicate() -> None:
    a = signature("China continues breakneck growth", BODY)
    b = signature("China continues rapid growth", BODY)
    assert similarity(a, b) == 1.0
    assert is_near_duplicate(a, b)
    assert a.bands == b.bands


def test_case_whitespace_and_paragraph_breaks_do_not_matter() -> None:
    a = signature("t", BODY)
    b = signature("t", BODY.upper().replace(". ", ".\n\n  "))
    assert is_near_duplicate(a, b)


def test_a_small_edit_is_still_a_duplicate() -> None:
    edited = BODY.replace("consumer prices", "shop prices").replace("analysts", "economists")
    assert is_near_duplicate(signature("t", BODY), signature("t", edited))


def test_different_stories_are_not_duplicates() -> None:
    a, b = signature("China", BODY), signature("United", OTHER)
    assert similarity(a, b) < 0.1
    assert not is_near_duplicate(a, b)
    assert not set(a.bands) & set(b.bands)


def test_a_follow_up_sharing_one_paragraph_is_not_a_duplicate() -> None:
    follow_up = BODY.split(". ")[0] + ". " + OTHER
    assert not is_near_duplicate(signature("t", BODY), signature("t", follow_up))


def test_short_bodies_compare_with_their_titles() -> None:
    a = signature("Earthquake hits northern Japan, no tsunami warning", "")
    b = signature("Earthquake hits northern Japan, no tsunami warning", "")
    c = signature("Floods close roads across southern England", "")
    assert is_near_duplicate(a, b)
    assert not is_near_duplicate(a, c)


def test_empty_stories_are_duplicates_of_nothing() -> None:
    empty = signature("", "")
    assert empty.empty
    assert empty.bands == ()
    assert similarity(empty, signature("", "")) == 0.0
    assert not is_near_duplicate(empty, empty)


def test_bands_are_stable_small_non_negative_ints() -> None:
    sig = signature("t", BODY)
    assert len(sig.bands) == BANDS
    assert len(set(sig.bands)) == BANDS  # the band number is mixed into each key
    assert all(0 <= key < 2**63 for key in sig.bands)
    # Stored keys must not change between processes or releases.
    assert signature("t", BODY).bands == sig.bands
    assert sig.bands[0] == 7980515444840265173


def test_signature_round_trips_through_bytes() -> None:
    sig = signature("t", BODY)
    data = sig.to_bytes()
    assert len(data) < 4 * NUM_PERM + 16
    again = NearDupSignature.from_bytes(data)
    assert similarity(sig, again) == 1.0
    assert again.bands == sig.bands
    assert again.shingles == sig.shingles
    empty = NearDupSignature.from_bytes(signature("", "").to_bytes())
    assert empty.empty
    with pytest.raises(ValueError, match="unsupported"):
        NearDupSignature.from_bytes(b"\x09" + data[1:])


@pytest.mark.corpus
def test_every_listed_bbc_repeat_is_caught(corpus_dir: Path) -> None:
    records = {}
    with (corpus_dir / "bbc_news_summary.jsonl").open(encoding="utf-8") as fh:
        for line in fh:
            record = json.loads(line)
            records[record["id"]] = record
    with (corpus_dir / "bbc_duplicates.tsv").open(encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh, delimiter="\t"))
    assert len(rows) == 137
    for row in rows:
        kept, copy = records[row["kept_id"]], records[row["duplicate_id"]]
        a = signature(kept["title"], kept["text"])
        b = signature(copy["title"], copy["text"])
        assert is_near_duplicate(a, b), row
        assert set(a.bands) & set(b.bands), row  # found as a candidate, without a scan
