"""The console's sign-in: an API key typed once, then a signed session cookie; CSRF tokens; roles.

Why a cookie and not the bearer key: a browser cannot attach ``Authorization``
to a plain link or form, and a key kept in a page's script would be readable by
anything on the page. The cookie holds only the key's id and a prefix of its
stored hash, signed with a secret kept in a file beside the key file (never in
the database, so a copied database forges no session). Every request looks the
key up again, so revoking it ends its sessions on the next click, and its role
is read fresh each time. Signing out ends every console session of that key
(see :func:`sign_out`).

The cookie is HttpOnly, SameSite=Lax, limited to ``/console``, and Secure when
the request came over https. Every POST carries the session's CSRF token (a
hidden form field): without one it is refused with 400, with a wrong one 403.
``serve --open`` does not open the console: it still needs a key (the open mode
exists for a storefront demo on one machine, and the console can erase people).
"""

from __future__ import annotations

import datetime as dt
import hmac
import os
import secrets
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from flask import Flask, abort, current_app, g, redirect, request, session, url_for
from flask.sessions import SecureCookieSessionInterface

from recommender import store
from recommender.durable import PRIVATE_SUFFIX, private_folder
from recommender.serving import keys

from ..db import get_db

SESSION_HOURS = 8
SECRET_SUFFIX = ".console-secret"
CONSOLE_ROLE = "marketer"  # admin allows it too (recommender.serving.keys.GRANTS)


def secret_path(key_file: Path) -> Path:
    """Where the session secret lives: beside the privacy key file, outside the database."""
    return Path(str(key_file) + SECRET_SUFFIX)


def load_secret(path: Path) -> bytes:
    """The secret in ``path``, made (32 random bytes, mode 0600) on first use.

    Made under a temporary name and linked into place, so gunicorn workers
    starting together agree on one secret and none reads half a file.
    """
    if path.parent.name.endswith(PRIVATE_SUFFIX):
        private_folder(path.parent)
    for _ in range(50):
        try:
            data = path.read_bytes()
            if len(data) >= 32:
                return data
        except FileNotFoundError:
            pass
        tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.write(fd, secrets.token_hex(32).encode())
            os.fsync(fd)
        finally:
            os.close(fd)
        try:
            os.link(tmp, path)
        except FileExistsError:
            pass  # another worker won; read theirs
        finally:
            tmp.unlink(missing_ok=True)
        time.sleep(0.01)
    raise RuntimeError(f"cannot read the console session secret {path}")


class ConsoleSessionInterface(SecureCookieSessionInterface):
    """Flask's signed cookie, with the secret loaded on first use and Secure following the request's scheme."""

    def get_signing_serializer(self, app: Flask):  # noqa: ANN201 - Flask's signature
        if not app.secret_key:
            app.secret_key = load_secret(secret_path(app.config["SETTINGS"].privacy.key_file))
        return super().get_signing_serializer(app)

    def open_session(self, app: Flask, request):  # noqa: ANN001,ANN201 - Flask's signature
        # The API never reads or writes the console's cookie: skip the signer on every API request.
        if not request.path.startswith("/console"):
            return self.make_null_session(app)
        return super().open_session(app, request)

    def get_cookie_secure(self, app: Flask) -> bool:
        return bool(app.config["SESSION_COOKIE_SECURE"]) or request.is_secure


def configure(app: Flask) -> None:
    """Session settings for the console; the API never reads the cookie (its path is /console)."""
    app.session_interface = ConsoleSessionInterface()
    app.config.update(
        SESSION_COOKIE_NAME="recommender_console",
        SESSION_COOKIE_PATH="/console",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        PERMANENT_SESSION_LIFETIME=dt.timedelta(hours=SESSION_HOURS),
    )


# --- CSRF ---------------------------------------------------------------------------


def csrf_token() -> str:
    """The session's CSRF token, made on first use (templates put it in every form)."""
    token = session.get("csrf")
    if not token:
        token = session["csrf"] = secrets.token_urlsafe(32)
    return token


def check_csrf() -> None:
    """Refuse a POST without the session's token: 400 when missing, 403 when wrong."""
    sent = request.form.get("csrf", "")
    if not sent:
        abort(400, description="the form carries no CSRF token; reload the page and try again")
    expected = session.get("csrf", "")
    if not expected or not hmac.compare_digest(sent.encode(), expected.encode()):
        abort(403, description="the form's CSRF token does not match this session; reload the page and try again")


# --- who is signed in ---------------------------------------------------------------


SIGNED_OUT = "console_signed_out:{}"  # meta key: sessions of this key made before this time (ns) are over


def sign_in(key: dict[str, Any], key_hash: str) -> None:
    """Start a fresh session for this key (a new CSRF token too: nothing carries over)."""
    session.clear()
    session.permanent = True
    session["key_id"] = key["id"]
    session["kh"] = key_hash[:16]
    session["at"] = time.time_ns()
    csrf_token()


def sign_out() -> None:
    """End this key's console sessions everywhere, not only this browser's cookie.

    A signed cookie cannot be taken back, so a copy of it would outlive a
    plain ``session.clear()``; the sign-out time kept in ``meta`` makes every
    cookie of this key issued before it worthless.
    """
    key_id = session.get("key_id")
    if isinstance(key_id, int) and current_key() is not None:
        store.set_meta(get_db(), SIGNED_OUT.format(key_id), str(time.time_ns()))
    session.clear()


def current_key() -> dict[str, Any] | None:
    """The live key behind this session, or None (no session, or the key was revoked or replaced)."""
    key_id = session.get("key_id")
    if not isinstance(key_id, int):
        return None
    db = get_db()
    row = keys.live_by_id(db, key_id)
    if row is None or not hmac.compare_digest(row["key_hash"][:16], str(session.get("kh", ""))):
        return None
    ended = store.meta_value(db, SIGNED_OUT.format(key_id))
    if ended is not None and int(session.get("at", 0)) <= int(ended):
        return None
    return {"id": row["id"], "name": row["name"], "role": row["role"]}


def needs(role: str) -> Callable:
    """Declare the permission a console view needs (default :data:`CONSOLE_ROLE`)."""

    def wrap(view: Callable) -> Callable:
        view.console_role = role  # type: ignore[attr-defined]
        return view

    return wrap


def public(view: Callable) -> Callable:
    """A console view that needs no session (the sign-in page)."""
    view.console_public = True  # type: ignore[attr-defined]
    return view


def guard() -> Any:
    """``before_request`` of the console: CSRF on every POST, then the session and the view's role."""
    if request.method == "POST":
        check_csrf()
    view = current_app.view_functions.get(request.endpoint or "")
    if view is None or getattr(view, "console_public", False):
        return None
    key = current_key()
    if key is None:
        if session.get("key_id") is not None:
            session.clear()
        return redirect(url_for("console.sign_in", next=request.full_path if request.method == "GET" else None))
    g.console_key = key
    needed = getattr(view, "console_role", CONSOLE_ROLE)
    if not keys.allows(key["role"], needed):
        abort(403, description=f"this needs the {needed!r} role; your key {key['name']!r} has {key['role']!r}")
    return None


def may(role: str) -> bool:
    """Whether the signed-in key may do what needs ``role`` (templates grey out what it may not)."""
    key = g.get("console_key")
    return bool(key) and keys.allows(key["role"], role)
