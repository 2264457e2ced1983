"""The gate index may skip an earlier file only when no new identifier can be in it."""

from __future__ import annotations

import random
import stat
from pathlib import Path

from radpipe.deid.gate_index import MAX_PARTS, GateIndex, probe_value
from radpipe.deid.identifiers import IdentifierIndex, PhiKind, gate_hashes, identifier_forms

KEY = b"k" * 32
WORDS = (
    "jane doe garcia garcía josé jose smith mrn 0012 3456 k229 0417 left lung clear ap st mary hospital 12 05 2023 "
    "o'neil"
).split()
KINDS = [PhiKind.NAME, PhiKind.PATIENT_ID, PhiKind.ACCESSION, PhiKind.INSTITUTION, PhiKind.DATE, PhiKind.UID]


def _value(rng: random.Random) -> tuple[PhiKind, str]:
    kind = rng.choice(KINDS)
    if kind is PhiKind.UID:
        return kind, f"1.2.{rng.randint(1, 3)}.{rng.randint(1000, 1003)}"
    if kind is PhiKind.DATE:
        return kind, f"{rng.choice(['2023', '2024'])}{rng.choice(['05', '12'])}{rng.choice(['05', '12'])}"
    separator = "^" if kind is PhiKind.NAME else rng.choice([" ", "-", ""])
    return kind, separator.join(rng.sample(WORDS, rng.randint(1, 4)))


def _text(rng: random.Random) -> str:
    pieces = []
    for _ in range(rng.randint(1, 14)):
        choice = rng.random()
        if choice < 0.1:
            pieces.append(f"1.2.{rng.randint(1, 3)}.{rng.randint(1000, 1003)}")
        elif choice < 0.2:
            pieces.append(f"{rng.choice(['05', '12'])}/{rng.choice(['05', '12'])}/{rng.choice(['2023', '2024'])}")
        else:
            pieces.append(rng.choice(WORDS).upper() if rng.random() < 0.3 else rng.choice(WORDS))
    return rng.choice([" ", "-", ", ", " / "]).join(pieces)


def test_a_new_identifier_found_in_a_text_always_meets_one_of_its_probes() -> None:
    rng = random.Random(14)
    newly_found = 0
    for _ in range(3000):
        old = gate_hashes(KEY, identifier_forms(_value(rng) for _ in range(rng.randint(0, 3))))
        new = gate_hashes(KEY, identifier_forms([_value(rng)]))  # one value: its own probes must be met
        text = _text(rng)
        if IdentifierIndex(KEY, old).find(text) is not None:
            continue
        if IdentifierIndex(KEY, {**old, **new}).find(text) is None:
            continue
        newly_found += 1
        assert IdentifierIndex(KEY, old).probes(text) & set(new), text
    assert newly_found > 200  # the property was put to the test, not passed by default


def test_probes_of_a_text_do_not_meet_identifiers_it_does_not_hold() -> None:
    rng = random.Random(3)
    index = IdentifierIndex(KEY, {})
    unrelated = gate_hashes(KEY, identifier_forms([(PhiKind.NAME, "Zqxjvw^Kopt"), (PhiKind.PATIENT_ID, "ZZ990011")]))
    assert all(not index.probes(_text(rng)) & set(unrelated) for _ in range(500))


def test_the_index_finds_files_by_probe_drops_files_that_left_and_merges_parts(tmp_path: Path) -> None:
    index = GateIndex(tmp_path, rules="r1")
    index.add("reports", {"reports/a.parquet": {1, 2}, "reports/b.parquet": {3}})
    index.add("reports", {"reports/c.parquet": {2, 4}, "reports/a.parquet": {99}})  # a is indexed already
    assert index.indexed("reports") == {"reports/a.parquet", "reports/b.parquet", "reports/c.parquet"}
    assert index.matching("reports", {2}) == {"reports/a.parquet", "reports/c.parquet"}
    assert index.matching("reports", {99}) == set()
    assert index.matching("instances", {2}) == set()

    index.tidy("reports", {"reports/b.parquet", "reports/c.parquet"})  # a was rewritten away (an erasure)
    assert index.indexed("reports") == {"reports/b.parquet", "reports/c.parquet"}
    assert index.matching("reports", {1, 2}) == {"reports/c.parquet"}

    for number in range(MAX_PARTS + 2):
        index.add("reports", {f"reports/n{number}.parquet": {1000 + number}})
    current = index.indexed("reports")
    index.tidy("reports", current)
    assert len(index.parts("reports")) == 1 and index.indexed("reports") == current
    assert index.matching("reports", {1005, 3}) == {"reports/n5.parquet", "reports/b.parquet"}

    assert GateIndex(tmp_path, rules="r2").indexed("reports") == set()  # other rules: nothing vouched for
    folder = tmp_path / "gate-index"
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert all(stat.S_IMODE(p.stat().st_mode) == 0o600 for p in folder.iterdir())


def test_probe_values_are_the_first_64_bits_of_a_hash() -> None:
    assert probe_value("ffffffffffffffff0000") == 2**64 - 1
