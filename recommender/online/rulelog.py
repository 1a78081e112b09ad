"""What merchandising rules did to one logged list (``decisions.rules``): the one writer and reader of the record.

A list's record says, per effect (``placed``, ``moved``, ``removed``), which products the
rules acted on and which rules. Serving writes it by **rule set**: the rules that ran are
stored once in ``rule_sets`` (their names in order), and a product's rules are the bits
of their positions in that set, in hexadecimal (rule ``r`` is bit ``1 << r``)::

    {"set": 12, "placed": {"P0042": "5"}, "moved": {"P0007": "4"}, "held_out": "8"}

reads: rules 0 and 2 of set 12 placed P0042, rule 2 moved P0007, and the customer is in
rule 3's holdout. A list that a hundred overlapping rules touch would otherwise repeat
their names on every row (kilobytes per list, and as much JSON to write per request).

Rows written by name read the same (``{rule: {"placed": [product ids]}}``, the form
:func:`expand` returns and the online report counts), so a log from before rule sets
keeps its meaning.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import sqlite_utils

from recommender import store

EFFECTS = ("placed", "moved", "removed")
HELD_OUT = "held_out"

ByRule = dict[
    str, dict[str, Any]
]  # {rule: {"placed" | "moved" | "removed": [product ids]}} or {rule: {"held_out": True}}


def positions(bits: int) -> list[int]:
    """The rule positions set in ``bits``, lowest first."""
    out = []
    while bits:
        low = bits & -bits
        out.append(low.bit_length() - 1)
        bits ^= low
    return out


def expand(marks: Mapping[str, Mapping[str, int]], held: int, names: Sequence[str]) -> ByRule:
    """``{rule: {effect: [product ids]}}`` from each product's rule bits (products in the order they were marked),
    with ``{rule: {"held_out": true}}`` for the rules whose holdout the customer is in."""
    out: ByRule = {}
    for effect in EFFECTS:
        for product_id, bits in marks.get(effect, {}).items():
            for r in positions(bits):
                out.setdefault(names[r], {}).setdefault(effect, []).append(product_id)
    for r in positions(held):
        out[names[r]] = {HELD_OUT: True}
    return out


def encode(rule_set: int, marks: Mapping[str, Mapping[str, int]], held: int) -> str:
    """The compact record of a list (see the module docstring)."""
    body: dict[str, Any] = {"set": rule_set}
    for effect in EFFECTS:
        got = marks.get(effect)
        if got:
            body[effect] = {product_id: format(bits, "x") for product_id, bits in got.items()}
    if held:
        body[HELD_OUT] = format(held, "x")
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False)


def decode(text: str | None, names_of: Callable[[int], Sequence[str] | None]) -> ByRule:
    """A logged record as ``{rule: {effect: [product ids]}}``; empty when there is none or it cannot be read.

    ``names_of(set_id)`` gives a rule set's names (None when it is unknown).
    """
    if not text:
        return {}
    try:
        found = json.loads(text)
        if not isinstance(found, dict):
            return {}
        if "set" not in found:
            return found  # written by name
        names = names_of(int(found["set"]))
        if names is None:
            return {}
        marks = {e: {str(p): int(h, 16) for p, h in found.get(e, {}).items()} for e in EFFECTS}
        return expand(marks, int(found.get(HELD_OUT, "0"), 16), names)
    except (ValueError, TypeError, AttributeError, IndexError):
        return {}


def names_in(db: sqlite_utils.Database) -> Callable[[int], Sequence[str] | None]:
    """A rule set's names from ``db`` for :func:`decode`, each set read once."""
    sets: dict[int, list[str] | None] = {}

    def names_of(set_id: int) -> list[str] | None:
        if set_id not in sets:
            sets[set_id] = store.rule_set_names(db, set_id)
        return sets[set_id]

    return names_of
