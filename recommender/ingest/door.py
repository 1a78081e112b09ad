"""The tombstone door of CSV imports: which lines name erased customers, and parsing without them.

An erased customer is not in ``customers``, so the parsers of events and
consents already refuse their lines, as "unknown customer". This module turns
that into the door's answer: it finds the lines of erased customers (two light
passes over the file: distinct ids, then their lines), refuses them with
``FILE:LINE: customer ... was erased on DATE``, or, for ``--skip-erased``,
hands their line numbers to the parser, which passes over them, so every other
line keeps its number in any error. Nothing here runs unless the
database has tombstones and the file names an id that is not a customer.
"""

from __future__ import annotations

import csv
import gzip
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, NamedTuple

import sqlite_utils

from recommender import store
from recommender.config import Settings
from recommender.errors import ErasedCustomerError, ValidationError
from recommender.store import tombstones
from recommender.values import normalise_id

Opener = Callable[[Path], IO[str]]


class ErasedLine(NamedTuple):
    """A line of a file that names an erased customer: where, who, and when they were erased (ISO UTC)."""

    line: int
    customer_id: str
    erased_on: str


def refuse(path: Path, lines: list[ErasedLine], skip_erased: bool) -> None:
    """Raise :class:`ErasedCustomerError` naming the first erased line and counting them all (unless skipping)."""
    if skip_erased or not lines:
        return
    first = lines[0]
    more = f"and {len(lines) - 1} more line(s) of erased customers; " if len(lines) > 1 else ""
    raise ErasedCustomerError(
        f"{path}:{first.line}: customer {first.customer_id!r} was erased on {first.erased_on} "
        f"({more}nothing was imported; --skip-erased leaves such lines out)",
        count=len(lines),
    )


def records(path: Path, opener: Opener) -> Iterator[tuple[int, list[str], list[str]]]:
    """``(line number, cells, raw physical lines)`` of every CSV record, header first."""
    with opener(path) as fh:
        raw: list[str] = []

        def lines() -> Iterator[str]:
            for text in fh:
                raw.append(text)
                yield text

        reader = csv.reader(lines())
        try:
            for cells in reader:
                yield reader.line_num, cells, raw[:]
                raw.clear()
        except (UnicodeDecodeError, gzip.BadGzipFile, csv.Error, EOFError) as exc:
            raise ValidationError(f"{path}:{reader.line_num}: unreadable CSV ({exc})") from None


def _customer_cells(path: Path, column: str, opener: Opener) -> Iterator[tuple[int, str]]:
    """``(line, normalised id)`` of ``column`` in every record (nothing when the header lacks it)."""
    index = None
    for line, cells, _ in records(path, opener):
        if index is None:
            if not cells:
                continue  # blank lines before the header
            if column not in cells:
                return
            index = cells.index(column)
        elif len(cells) > index:
            cid = normalise_id(cells[index].strip())
            if cid:
                yield line, cid


def erased_lines(
    db: sqlite_utils.Database,
    settings: Settings,
    path: Path,
    column: str,
    opener: Opener,
    gone: dict[str, str] | None = None,
) -> list[ErasedLine]:
    """The :class:`ErasedLine` of every line whose ``column`` names an erased customer.

    Without ``gone`` (which ids are erased), a first pass collects the distinct
    ids and looks up those that are not customers; only lines of erased ones are kept.
    """
    if gone is None:
        ids = {cid for _, cid in _customer_cells(path, column, opener)}
        known = store.existing_of(db, "customers", list(ids))
        gone = tombstones.erased_on(db, settings, [c for c in ids if c not in known])
        if not gone:
            return []
    return [ErasedLine(line, cid, gone[cid]) for line, cid in _customer_cells(path, column, opener) if cid in gone]


def without_erased_emails(
    db: sqlite_utils.Database,
    settings: Settings,
    path: Path,
    rows: list,
    known: set,
    gone: dict[str, str],
    skip_erased: bool,
) -> tuple[list, int]:
    """Refuse (or with ``skip_erased`` leave out) new customers carrying the e-mail of an erased one.

    An erasure tombstones the person's e-mail beside their id (keyed the same way), so a
    spreadsheet's other rendering of their id (``1.785E+4`` for ``17850`` is caught by the
    id rule; ``C0834.0`` for ``C0834`` is not a rendering, it is another id) cannot bring
    them back under a new id. Known customers and ids already found erased are not looked at.
    """
    new = [r for r in rows if r.id not in known and r.id not in gone and r.email]
    taken = tombstones.erased_emails(db, settings, [r.email for r in new])
    hits = [r for r in new if r.email in taken]
    if not hits:
        return rows, 0
    if not skip_erased:
        more = f" (and {len(hits) - 1} more new customer(s) with an erased e-mail)" if len(hits) > 1 else ""
        raise ErasedCustomerError(
            f"{path}: new customer {hits[0].id!r} carries the e-mail of a customer erased on "
            f"{taken[hits[0].email]}{more}; nothing was imported (--skip-erased leaves such "
            "lines out; `recommender resignup` brings a person back on purpose)",
            count=len(hits),
        )
    dropped = {r.id for r in hits}
    return [r for r in rows if r.id not in dropped], len(hits)
