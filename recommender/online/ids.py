"""List ids: the handle that ties an event back to the list (or offer) it came from.

An id is 128 random bits in lowercase hex, made when the list is served,
because the decision log is written off the request path and its row id does
not exist yet when the response leaves. Random, not sequential: an id says
nothing about who was served or how many lists were served before it.
"""

from __future__ import annotations

import re
import secrets

LIST_ID_RE = re.compile(r"^[0-9a-f]{32}$")
LIST_ID_PATTERN = LIST_ID_RE.pattern
LIST_ID_RULE = "must be 32 lowercase hexadecimal characters"


def new_list_id() -> str:
    """A fresh list id (``secrets``: 128 bits, collisions never happen in practice)."""
    return secrets.token_hex(16)


def is_list_id(value: object) -> bool:
    return isinstance(value, str) and LIST_ID_RE.match(value) is not None
