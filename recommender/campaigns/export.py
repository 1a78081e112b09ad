"""Export files for the email tool: CSV (safe to open in a spreadsheet) or JSON lines.

A file is written beside its destination and renamed into place, so a reader
never sees half of one. ``--out`` never overwrites an existing file unless
``force`` says so (a rerun once replaced a 30-row export with an empty one),
never creates a missing folder (a typo should not scatter folders), and a
dry run's file says it is a preview in every row (``preview`` true, codes
``PREVIEW-...`` that the ledger never holds), so it cannot be mailed by mistake.
"""

from __future__ import annotations

import json
from pathlib import Path

from recommender import csvsafe
from recommender.campaigns.results import EXPORT_COLUMNS, EXPORT_FORMATS, Offer
from recommender.durable import new_private_file
from recommender.errors import ValidationError


def check_out(out: str | Path | None, force: bool = False) -> Path | None:
    """The export path if it may be written: a known suffix, an existing folder, no file there unless ``force``."""
    if out is None:
        return None
    path = Path(out)
    if path.suffix.lower() not in EXPORT_FORMATS:
        raise ValidationError(f"export file must end in {' or '.join(EXPORT_FORMATS)}, got {path.name!r}")
    if path.is_dir():
        raise ValidationError(f"export {path} is a folder; give a file name")
    if path.exists() and not force:
        raise ValidationError(f"export {path} already exists; choose a new name or pass --force to replace it")
    parent = path.parent
    if parent.exists() and not parent.is_dir():
        raise ValidationError(f"cannot write {path}: {parent} is not a folder")
    if not parent.exists():
        raise ValidationError(f"cannot write {path}: folder {parent} does not exist (create it first)")
    return path


def write(path: Path, offers: list[Offer], *, force: bool = False) -> None:
    """One row per offer, via a temporary file; without ``force`` an existing file is never replaced."""
    with new_private_file(path, force=force) as fh:  # names and e-mails: owner-only, like the database
        if path.suffix.lower() == ".csv":
            writer = csvsafe.writer(fh, EXPORT_COLUMNS)
            writer.writeheader()
            for o in offers:
                row = o.export_row()
                row["product_ids"] = "|".join(o.product_ids)
                row["product_names"] = "|".join(n or "" for n in o.product_names)
                row["preview"] = "true" if o.preview else "false"
                writer.writerow(row)
        else:
            for o in offers:
                fh.write(json.dumps(o.export_row(), ensure_ascii=False) + "\n")
