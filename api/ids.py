"""Customer and product ids in URL paths: any id the importer accepts, in its one normal form.

Every path that names a customer or a product declares it ``<id:...>``. The
converter matches any text, ``/`` included (an id may hold ``/``, ``%``, ``?``,
``#``, spaces or any Unicode: a client percent-encodes them, the server decodes
them before routing), and hands the view the id as
:func:`recommender.values.normalise_id` writes it, the same rule as imports,
events and tombstones, so ``/v1/customers/17850.0/...`` is customer ``17850``.
URLs the app builds (``url_for``) percent-encode every character that is not
unreserved, ``/`` included.

Slashes are not merged (``A//B`` is an id, not ``A/B``).
"""

from __future__ import annotations

from urllib.parse import quote

from flask import Flask
from werkzeug.routing import BaseConverter

from recommender.values import normalise_id


class IdConverter(BaseConverter):
    """``<id:name>``: one customer or product id, which may contain ``/``."""

    regex = ".+?"
    part_isolating = False
    weight = 200  # less specific than a fixed segment or a plain ``<name>``

    def to_python(self, value: str) -> str:
        return normalise_id(value)

    def to_url(self, value: object) -> str:
        return quote(str(value), safe="")


def register(app: Flask) -> None:
    """Add the ``id`` converter; call before any blueprint is registered."""
    app.url_map.converters["id"] = IdConverter
    app.url_map.merge_slashes = False
