"""Reading a shop's CSV files strictly, with messages that say what to do.

The csv module is lenient where leniency loses data silently: an unbalanced
quote swallows the following lines into one cell, a duplicate header keeps only
the last column, an extra cell is dropped, a NUL byte is stored. Here each of
these stops the file with ``FILE:LINE: reason``, and the usual causes of a
wrong file (another separator, another encoding, an order export given to the
wrong command, an empty file) are named with their fix.
"""

from __future__ import annotations

import csv
import gzip
import io
import sys
import zlib
from collections.abc import Callable, Container, Iterator, Sequence
from pathlib import Path
from typing import Any

from recommender.errors import ValidationError
from recommender.values import show


def open_text(path: Path) -> io.TextIOBase:
    """Open a CSV, transparently decompressing ``.gz``; refuse what is plainly not UTF-8 text."""
    if not path.is_file():
        raise ValidationError(f"{path}: no such file")
    try:
        with open(path, "rb") as raw:
            magic = raw.read(2)
        if path.suffix == ".gz":
            return io.TextIOWrapper(gzip.open(path, "rb"), encoding="utf-8-sig", newline="")
        if magic == b"\x1f\x8b":
            raise ValidationError(f"{path} is gzip-compressed: name it {path.name}.gz (or decompress it)")
        if magic in (b"\xff\xfe", b"\xfe\xff"):
            raise ValidationError(f"{path} is UTF-16 text: save it as UTF-8 CSV (in Excel: CSV UTF-8)")
        return open(path, encoding="utf-8-sig", newline="")
    except OSError as exc:
        raise ValidationError(f"{path}: cannot read ({exc.strerror or exc})") from None


def _physical_line_of_bad_byte(path: Path) -> tuple[int, str] | None:
    """Where the first byte that is not UTF-8 is: ``(line, description)``, counting lines by ``\\n``.

    The text decoder reads ahead in blocks, so the CSV reader's line number at
    the failure is not the line of the bad byte; scanning again (only on this
    error path) finds the real one.
    """
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as raw:
            for number, line in enumerate(raw, start=1):
                try:
                    line.decode("utf-8")
                except UnicodeDecodeError as exc:
                    byte = line[exc.start]
                    return number, f"byte 0x{byte:02X} at column {exc.start + 1}"
    except (OSError, EOFError, zlib.error):
        return None
    return None


def _not_utf8(path: Path, fallback_line: int) -> ValidationError:
    where = _physical_line_of_bad_byte(path)
    line, detail = where if where else (fallback_line, "a byte that is not UTF-8")
    return ValidationError(
        f"{path}:{line}: not UTF-8 text ({detail}); save the file as UTF-8 (in Excel: CSV UTF-8) and import it again"
    )


# Headers that say "this is a raw order export, not an interactions file".
_ONLINE_RETAIL_COLUMNS = {"InvoiceNo", "StockCode", "CustomerID", "InvoiceDate"}
_SHOPIFY_COLUMNS = {"Lineitem sku", "Lineitem quantity", "Lineitem name", "Created at"}
SHOPIFY_MAP = (
    "customer=Email,product=Lineitem sku,quantity=Lineitem quantity,occurred_at=Created at,"
    "price=Lineitem price,name=Lineitem name,order=Name"
)


def header_advice(path: Path, header: Sequence[str], required: Sequence[str]) -> str:
    """What to do when required columns are missing: the usual causes have a known fix."""
    columns = set(header)
    if not columns & set(required):
        for sep, name in ((";", "';'"), ("\t", "tabs"), ("|", "'|'")):
            if any(sep in c for c in header):
                return f"looks separated by {name}, not commas: save it as comma-separated CSV (UTF-8)"
    if len(columns & _SHOPIFY_COLUMNS) >= 2:
        return (
            f"this looks like a Shopify order export: import it with "
            f'`recommender import-transactions {path} --map "{SHOPIFY_MAP}"`'
        )
    if len(columns & _ONLINE_RETAIL_COLUMNS) >= 2:
        return f"this looks like a raw order export: import it with `recommender import-transactions {path}`"
    return ""


def _missing_columns_message(path: Path, header: Sequence[str], required: Sequence[str], missing: Sequence[str]) -> str:
    advice = header_advice(path, header, required)
    text = f"missing column(s) {', '.join(missing)}"
    return f"{text}; {advice}" if advice else text


def _read_header(
    path: Path, reader: Any, required: Sequence[str], on_missing: Callable[[Sequence[str], Sequence[str]], str]
) -> tuple[list[str], int]:
    """The header row (after any blank lines), checked: present, one line, named and unique columns."""
    last = 0
    for cells in reader:
        start, last = last + 1, reader.line_num
        if not cells or not any(c.strip() for c in cells):
            continue
        _check_record(path, cells, start, last)
        header = [c.strip() for c in cells]
        first: dict[str, int] = {}
        for number, name in enumerate(header, start=1):
            if not name:
                raise ValidationError(
                    f"{path}:{start}: column {number} of the header has no name (remove the empty column or name it)"
                )
            if name in first:
                raise ValidationError(
                    f"{path}:{start}: duplicate column {show(name)} (columns {first[name]} and {number})"
                )
            first[name] = number
        missing = [c for c in required if c not in first]
        if missing:
            raise ValidationError(f"{path}:{start}: {on_missing(header, missing)}")
        return header, last
    raise ValidationError(f"{path} is empty (want a header row: {', '.join(required)})")


def header_of(path: Path) -> list[str]:
    """The header row of a CSV, checked as :func:`read_rows` checks it (named, unique columns)."""
    with open_text(path) as fh:
        try:
            return _read_header(path, csv.reader(fh, strict=True), (), lambda header, missing: "")[0]
        except UnicodeDecodeError:
            raise _not_utf8(path, 1) from None
        except csv.Error as exc:
            raise ValidationError(f"{path}:1: unreadable CSV header ({exc})") from None


def _check_record(path: Path, cells: Sequence[str], start: int, end: int) -> None:
    """One record on one line, no NUL byte: what a spreadsheet writes."""
    if end > start:
        raise ValidationError(
            f"{path}:{start}: unbalanced quote: a quoted cell opens on line {start} and runs "
            f"on to line {end} (close the quote, or remove line breaks from cells)"
        )
    for number, cell in enumerate(cells, start=1):
        if "\x00" in cell:
            raise ValidationError(f"{path}:{start}: NUL byte in cell {number} (the file is damaged or not a CSV)")


def read_rows(
    path: Path,
    required: Sequence[str],
    progress: bool = False,
    on_missing: Callable[[Sequence[str], Sequence[str]], str] | None = None,
    skip: Container[int] = (),
) -> Iterator[tuple[int, dict[str, str]]]:
    """Yield ``(line_number, row)`` of a CSV with a header, cells trimmed, blank cells as empty strings.

    ``required`` columns must be in the header; ``on_missing(header, missing)``
    may word the message when they are not (the default names the usual causes).
    Records starting on a line in ``skip`` are passed over unread (the tombstone
    door's ``--skip-erased``); every other line keeps its number.
    """

    def explain(header: Sequence[str], missing: Sequence[str]) -> str:
        return _missing_columns_message(path, header, required, missing)

    with open_text(path) as fh:
        reader = csv.reader(fh, strict=True)
        last = 0
        bar = _NoBar()
        try:
            header, last = _read_header(path, reader, required, on_missing or explain)
            width = len(header)
            bar = _progress(progress, path)
            for cells in reader:
                start, last = last + 1, reader.line_num
                bar.update(1)
                if start in skip or not any(c.strip() for c in cells):
                    continue  # a blank line, or a spreadsheet's trailing ",,,,"
                _check_record(path, cells, start, last)
                if len(cells) > width:
                    if any(c.strip() for c in cells[width:]):
                        raise ValidationError(
                            f"{path}:{start}: {len(cells)} cells but the header has {width} "
                            f"columns (an unquoted comma in a cell?)"
                        )
                    cells = cells[:width]
                row = dict(zip(header, (c.strip() for c in cells)))
                if len(cells) < width:
                    row.update((name, "") for name in header[len(cells) :])
                yield start, row
        except UnicodeDecodeError:
            raise _not_utf8(path, last + 1) from None
        except csv.Error as exc:
            line = last + 1
            if "unexpected end of data" in str(exc):
                raise ValidationError(
                    f"{path}:{line}: unbalanced quote: a quoted cell opens on line {line} and is never closed"
                ) from None
            if "expected after" in str(exc) and reader.line_num > line:
                raise ValidationError(
                    f"{path}:{line}: unbalanced quote: a quoted cell opens on line {line} and "
                    f"runs on to line {reader.line_num}"
                ) from None
            if "expected after" in str(exc):
                raise ValidationError(
                    f"{path}:{line}: stray quote after a quoted cell (a quote inside a "
                    f'quoted cell is written twice: "")'
                ) from None
            if "field larger than field limit" in str(exc):
                raise ValidationError(
                    f"{path}:{line}: a cell of more than {csv.field_size_limit():,} characters (an unbalanced quote?)"
                ) from None
            raise ValidationError(f"{path}:{line}: unreadable CSV ({exc})") from None
        except (gzip.BadGzipFile, EOFError, zlib.error) as exc:
            raise ValidationError(f"{path}:{last + 1}: unreadable CSV (damaged compressed data: {exc})") from None
        except OSError as exc:
            raise ValidationError(f"{path}: cannot read ({exc.strerror or exc})") from None
        finally:
            bar.close()


class _NoBar:
    def update(self, n: int) -> None:
        pass

    def close(self) -> None:
        pass


def _progress(enabled: bool, path: Path) -> Any:
    """A tqdm bar on an interactive terminal only; cron logs and --json output stay clean."""
    if not enabled or not sys.stderr.isatty():
        return _NoBar()
    from tqdm import tqdm

    return tqdm(desc=f"reading {path.name}", unit=" rows", unit_scale=True, mininterval=0.5, file=sys.stderr)
