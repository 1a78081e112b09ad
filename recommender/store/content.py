"""The reads behind content features of products (docs/new-products.md): texts, categories, prices, arrivals."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlite_utils

CONTENT_COLUMNS = "id, name, description, category, price"


def _in_chunks(db: sqlite_utils.Database, sql: str, ids: Sequence[str]) -> list[tuple[Any, ...]]:
    rows: list[tuple[Any, ...]] = []
    for i in range(0, len(ids), 500):
        part = list(ids[i : i + 500])
        rows.extend(db.execute(sql.format(marks=",".join("?" * len(part))), part).fetchall())
    return rows


def product_texts(db: sqlite_utils.Database, ids: Sequence[str] | None = None) -> list[tuple[Any, ...]]:
    """``(id, name, description, category, price)`` of every product, or of those among ``ids`` that exist."""
    if ids is None:
        return db.execute(f"SELECT {CONTENT_COLUMNS} FROM products ORDER BY id").fetchall()
    return _in_chunks(db, f"SELECT {CONTENT_COLUMNS} FROM products WHERE id IN ({{marks}})", ids)


def product_arrivals_of(db: sqlite_utils.Database, ids: Sequence[str]) -> dict[str, str]:
    """When the engine first saw each of ``ids`` (ISO UTC); products stored before arrivals were kept have none."""
    return dict(
        _in_chunks(db, "SELECT product_id, first_seen FROM product_arrivals WHERE product_id IN ({marks})", ids)
    )
