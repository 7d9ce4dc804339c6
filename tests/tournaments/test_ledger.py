"""The tournament ledger's hash chain: appends, verification, tampering, concurrency.

No Docker: the ledger is plain files. Every kind of edit a person could make to the
file (change a value, fix up the hash too, drop, reorder or insert a line, tear the
last line, cut the tail) must be found, naming the first entry that doesn't verify.
"""

from __future__ import annotations

import json
import multiprocessing
from pathlib import Path

import pytest

from efflab.tournaments.ledger import GENESIS, Ledger, LedgerTampered, entry_hash, verify


def filled(tmp_path: Path, n: int = 5) -> Ledger:
    led = Ledger(tmp_path / "ledger.jsonl")
    for i in range(n):
        led.append({"verdict": "accepted", "metrics": {"latency": 10.0 + i}, "who": f"p{i}"})
    return led


def lines(led: Ledger) -> list[dict]:
    return [json.loads(x) for x in led.path.read_text().splitlines()]


def rewrite(led: Ledger, entries: list[dict]) -> None:
    led.path.write_text("".join(json.dumps(e, sort_keys=True) + "\n" for e in entries))


def test_chain_links_every_entry(tmp_path: Path) -> None:
    led = filled(tmp_path)
    es = lines(led)
    assert [e["seq"] for e in es] == list(range(5))
    assert es[0]["prev"] == GENESIS
    for a, b in zip(es, es[1:], strict=False):
        assert b["prev"] == a["hash"]
    assert all(entry_hash(e) == e["hash"] for e in es)
    v = verify(led.path)
    assert v.ok and len(v.entries) == 5 and v.to_json()["head"] == es[-1]["hash"]
    assert verify(tmp_path / "none.jsonl").ok  # no ledger yet: an empty, valid chain


def test_edited_value_is_found(tmp_path: Path) -> None:
    led = filled(tmp_path)
    text = led.path.read_text().splitlines()
    text[2] = text[2].replace('"latency":12.0', '"latency":1.0')
    led.path.write_text("\n".join(text) + "\n")
    v = verify(led.path)
    assert not v.ok and v.first_bad == 2 and "edited" in v.reason
    assert v.to_json()["first_bad_line"] == 3
    with pytest.raises(LedgerTampered, match="entry 2"):
        led.append({"verdict": "accepted"})  # nothing is chained onto a broken ledger
    assert len(led.path.read_text().splitlines()) == 5


def test_rehashed_edit_breaks_the_next_link(tmp_path: Path) -> None:
    led = filled(tmp_path)
    es = lines(led)
    es[1]["metrics"]["latency"] = 0.5
    es[1]["hash"] = entry_hash(es[1])  # a careful forger recomputes the entry's own hash
    rewrite(led, es)
    v = verify(led.path)
    assert not v.ok and v.first_bad == 2 and "prev" in v.reason


@pytest.mark.parametrize("edit", ["drop", "swap", "insert", "torn", "garbage"])
def test_structural_edits_are_found(tmp_path: Path, edit: str) -> None:
    led = filled(tmp_path)
    raw = led.path.read_text().splitlines(keepends=True)
    if edit == "drop":
        del raw[1]
        expect = 1
    elif edit == "swap":
        raw[1], raw[2] = raw[2], raw[1]
        expect = 1
    elif edit == "insert":
        fake = json.loads(raw[0])
        raw.insert(3, json.dumps(fake) + "\n")
        expect = 3
    elif edit == "torn":
        raw[-1] = raw[-1][:-10]
        expect = 4
    else:
        raw[3] = "not json\n"
        expect = 3
    led.path.write_text("".join(raw))
    v = verify(led.path)
    assert not v.ok and v.first_bad == expect, v.reason


def test_cut_tail_needs_the_published_head(tmp_path: Path) -> None:
    led = filled(tmp_path)
    head = lines(led)[-1]["hash"]
    raw = led.path.read_text().splitlines(keepends=True)
    led.path.write_text("".join(raw[:3]))
    assert verify(led.path).ok  # the chain alone can't see a clean cut ...
    v = verify(led.path, expect_head=head)  # ... a head published earlier can
    assert not v.ok and "cut" in v.reason
    led.path.write_text("".join(raw))
    assert verify(led.path, expect_head=lines(led)[2]["hash"]).ok  # older heads stay valid


def _append_many(path: str, who: int, n: int) -> None:
    led = Ledger(Path(path))
    for i in range(n):
        led.append({"who": who, "i": i, "pad": "x" * 3000})  # > PIPE_BUF: no atomic luck


def test_concurrent_appends_never_interleave(tmp_path: Path) -> None:
    path = tmp_path / "ledger.jsonl"
    ctx = multiprocessing.get_context("fork")
    procs = [ctx.Process(target=_append_many, args=(str(path), w, 15)) for w in range(6)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    v = verify(path)
    assert v.ok, v.reason
    assert len(v.entries) == 90
    assert {(e["who"], e["i"]) for e in v.entries} == {(w, i) for w in range(6) for i in range(15)}
