"""Sign-in with an API key (marketer or admin) and sign-out."""

from __future__ import annotations

import hashlib
import re
from urllib.parse import quote

from flask import redirect, request, url_for

from recommender.serving import keys

from ..db import get_db
from . import session as auth
from .base import bp, page

# What may not be in a place to go back to: control characters (CR/LF would split the
# Location header), DEL, C1 controls, the Unicode line separators, and a backslash.
_UNSAFE = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\\]")


def _safe_next(target: str | None) -> str:
    """Only a console path is a place to go back to (never another site); anything doubtful goes to the overview.

    A path with a control character or a backslash is not repaired but replaced by
    the default page, so no header can be split and no browser can read the path as
    another host. Spaces and non-ASCII characters (a customer id in the path) are
    percent-encoded (UTF-8).
    """
    if (
        target
        and (target == "/console" or target.startswith(("/console/", "/console?")))
        and not _UNSAFE.search(target)
    ):
        return "".join(ch if ch.isascii() and ch != " " else quote(ch, safe="") for ch in target.rstrip("?"))
    return url_for("console.overview")


@bp.get("/sign-in")
@auth.public
def sign_in():
    return page("sign_in.html", next=_safe_next(request.args.get("next")), error=None)


@bp.post("/sign-in")
@auth.public
def sign_in_post():
    token = request.form.get("key", "").strip()
    target = _safe_next(request.form.get("next"))
    if not token:
        return page("sign_in.html", 400, next=target, error="Type an API key.")
    key = keys.lookup(get_db(), token)
    if key is None:
        return page("sign_in.html", 401, next=target, error="Unknown or revoked API key.")
    if not keys.allows(key["role"], auth.CONSOLE_ROLE):
        return page(
            "sign_in.html",
            403,
            next=target,
            error=f"A {key['role']!r} key is for a storefront; the console needs a marketer or admin key "
            "(recommender keys create --role marketer).",
        )
    auth.sign_in(key, hashlib.sha256(token.encode()).hexdigest())
    return redirect(target, 303)


@bp.post("/sign-out")
@auth.public
def sign_out():
    auth.sign_out()
    return redirect(url_for("console.sign_in"), 303)
