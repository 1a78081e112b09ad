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
from pathlib import Path
from typing import IO, Callable, Iterator

import sqlite_utils

from recommender import store
from recommender.config import Settings
from recommender.errors import ErasedCustomerError, ValidationError
from recommender.store import tombstones
from recommender.values import normalise_id

Opener = Callable[[Path], IO[str]]


def refuse(path: Path, lines: list[tuple[int, str, str]], skip_erased: bool) -> None:
    """Raise :class:`ErasedCustomerError` naming the first erased line and counting them all (unless skipping)."""
    if skip_erased or not lines:
        return
    line, cid, when = lines[0]
    more = f"and {len(lines) - 1} more line(s) of erased customers; " if len(lines) > 1 else ""
    raise ErasedCustomerError(f"{path}:{line}: customer {cid!r} was erased on {when} ({more}nothing was imported; "
                              "--skip-erased leaves such lines out)", count=len(lines))


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


def erased_lines(db: sqlite_utils.Database, settings: Settings, path: Path, column: str, opener: Opener,
                 gone: dict[str, str] | None = None) -> list[tuple[int, str, str]]:
    """``(line, customer id, erased on)`` of every line whose ``column`` names an erased customer.

    Without ``gone`` (which ids are erased), a first pass collects the distinct
    ids and looks up those that are not customers; only lines of erased ones are kept.
    """
    if gone is None:
        ids = {cid for _, cid in _customer_cells(path, column, opener)}
        known = store.existing_of(db, "customers", list(ids))
        gone = tombstones.erased_on(db, settings, [c for c in ids if c not in known])
        if not gone:
            return []
    return [(line, cid, gone[cid]) for line, cid in _customer_cells(path, column, opener) if cid in gone]
