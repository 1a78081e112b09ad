"""Erasure tombstones: proof that a customer was erased, which nobody holding only the database can reverse.

A tombstone is ``HMAC-SHA256(key, sha256(f"{salt}:{id}"))``. The key and the
salt live in the key file (``privacy.key_file``, by default ``<db>.key``,
owner-only), never in the database: anyone with a copy of the database alone
cannot test candidate ids against the tombstones, which a plain salted hash
with the salt in ``meta`` allowed (hashing C0001..C99999 took half a second).

The inner ``sha256(f"{salt}:{id}")`` is the tombstone databases made before
the key file existed: on first use such a database is migrated in one
transaction, its salt moving from ``meta`` into the new key file and every
stored tombstone ``h`` becoming ``HMAC(key, h)``, so old and new erasures share
one formula and none is lost. ``meta.tombstone_key_id`` (an HMAC of a constant,
which reveals nothing about the key) records that the migration happened and
which key file belongs to this database.

Doors only need tombstones for ids that are not customers (an erased id is
never in ``customers``; :func:`lift` and erasure keep that true), so the
common path of a request or an import never reads the key file.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import sqlite_utils

from recommender import store
from recommender.config import Settings
from recommender.durable import PRIVATE_SUFFIX, private_folder
from recommender.errors import ConfigError
from recommender.values import normalise_id

KEY_FORMAT = "recommender-tombstone-key/1"
KEY_ID = "tombstone_key_id"
LEGACY_SALT = "erasure_salt"


@dataclass(frozen=True)
class TombstoneKey:
    """The secret of one database's tombstones, as read from its key file."""

    secret: bytes
    salt: str
    path: Path

    @property
    def key_id(self) -> str:
        """A fingerprint of the key, safe to store beside the tombstones."""
        return hmac.new(self.secret, b"recommender tombstone key id", hashlib.sha256).hexdigest()[:32]


KeySource = Settings | TombstoneKey | str | Path


def key_path(source: KeySource) -> Path:
    """Where the key file of ``source`` (settings, a key, or a path) lives."""
    if isinstance(source, TombstoneKey):
        return source.path
    if isinstance(source, Settings):
        return Path(source.privacy.key_file)
    return Path(source)


def read_key(path: str | Path) -> TombstoneKey:
    """Load a key file; :class:`ConfigError` with one line that says what is wrong."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        if data.get("format") != KEY_FORMAT:
            raise ValueError(f"not a {KEY_FORMAT} file")
        secret = bytes.fromhex(data["key"])
        salt = str(data["salt"])
        if len(secret) < 16:
            raise ValueError("key shorter than 16 bytes")
    except FileNotFoundError:
        raise ConfigError(f"privacy key file {path} does not exist") from None
    except OSError as exc:
        raise ConfigError(f"privacy key file {path} cannot be read ({exc.strerror or exc})") from None
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise ConfigError(f"privacy key file {path} is not a valid key file ({exc})") from None
    return TombstoneKey(secret, salt, path)


def _create_key(path: Path, salt: str) -> TombstoneKey:
    """Write a new random key file, owner-only; an existing file is never overwritten.

    The key is written to a private temporary file and hard-linked into place,
    so two processes racing to create it end up sharing the one that won.
    """
    text = json.dumps({"format": KEY_FORMAT, "key": secrets.token_hex(32), "salt": salt}) + "\n"
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    try:
        if path.parent.name.endswith(PRIVATE_SUFFIX):
            private_folder(path.parent)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(tmp, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        try:
            os.link(tmp, path)
        except FileExistsError:
            pass
    except OSError as exc:
        raise ConfigError(f"cannot create privacy key file {path} ({exc.strerror or exc})") from None
    finally:
        try:
            os.unlink(tmp)
        except OSError:
            pass
    return read_key(path)


def _tombstone(key: TombstoneKey, inner: str) -> str:
    return hmac.new(key.secret, inner.encode(), hashlib.sha256).hexdigest()


def subject_hash(settings_or_key: KeySource, customer_id: str) -> str:
    """The tombstone of ``customer_id``: ``HMAC(key, sha256(f"{salt}:{id}"))`` with the key file's secret.

    Given settings or a path, the key file is read as it is; engine code that
    may be the first to need the key calls :func:`ensure_key` instead, which
    also creates or migrates it.
    """
    key = settings_or_key if isinstance(settings_or_key, TombstoneKey) else read_key(key_path(settings_or_key))
    return _tombstone(key, hashlib.sha256(f"{key.salt}:{customer_id}".encode()).hexdigest())


def ensure_key(db: sqlite_utils.Database, source: KeySource) -> TombstoneKey:
    """The database's tombstone key: checked against the database, created or migrated on first use.

    A key file that belongs to another database, or a missing key file while
    tombstones made with it exist, is a :class:`ConfigError`: guessing would
    let erased customers back in through every door.
    """
    if isinstance(source, TombstoneKey):
        return source
    path = key_path(source)
    recorded = store.meta_value(db, KEY_ID)
    if recorded is None:
        with store.transaction(db):
            if store.meta_value(db, KEY_ID) is None:
                return _migrate(db, path)
        recorded = store.meta_value(db, KEY_ID)
    if not path.exists():
        if store.keyed_hashes(db) == 0:
            # Nothing was keyed with the lost key: a new one loses nothing.
            with store.transaction(db):
                key = _create_key(path, secrets.token_hex(16))
                store.set_meta(db, KEY_ID, key.key_id)
            return key
        raise ConfigError(
            f"privacy key file {path} is missing, but this database holds {store.keyed_hashes(db)} "
            "tombstone(s) made with it; restore it from the backup of the database (without it erased "
            "customers cannot be recognised and refused)"
        )
    key = read_key(path)
    if key.key_id != recorded:
        raise ConfigError(
            f"privacy key file {path} belongs to another database (its key id differs from this "
            "database's); point privacy.key_file at this database's key"
        )
    return key


def _migrate(db: sqlite_utils.Database, path: Path) -> TombstoneKey:
    """First use: move the salt from ``meta`` into the key file and re-key every stored tombstone (in a transaction)."""
    salt = store.meta_value(db, LEGACY_SALT)
    if salt is None:
        # Tombstones from before the salt existed were hashed with an empty one.
        salt = "" if store.erasure_count(db) else secrets.token_hex(16)
    if path.exists():
        key = read_key(path)  # left by a migration that did not commit
        if key.salt != salt:
            raise ConfigError(f"privacy key file {path} belongs to another database (its salt differs)")
    else:
        key = _create_key(path, salt)
    store.rekey_tombstones(db, lambda old: _tombstone(key, old))
    store.set_meta(db, KEY_ID, key.key_id)
    store.delete_meta(db, LEGACY_SALT)
    return key


def erased_on(db: sqlite_utils.Database, settings: KeySource, ids: Iterable[str]) -> dict[str, str]:
    """``{id: erased_at}`` for those of ``ids`` that were erased; no key file is read when nothing was.

    Each id is looked up in its normal form (:func:`recommender.values.normalise_id`), so
    ``1.785E+4`` finds the tombstone of ``17850``; the answer is keyed by the ids as given.
    """
    unique = [i for i in dict.fromkeys(ids) if i]
    if not unique or store.erasure_count(db) == 0:
        return {}
    key = ensure_key(db, settings)
    by_hash: dict[str, list[str]] = {}
    for i in unique:
        by_hash.setdefault(subject_hash(key, normalise_id(i)), []).append(i)
    return {i: when for h, when in store.erasure_dates(db, list(by_hash)).items() for i in by_hash[h]}


def erased(db: sqlite_utils.Database, settings: KeySource, ids: Iterable[str]) -> set[str]:
    """Which of ``ids`` were erased."""
    return set(erased_on(db, settings, ids))


def normalise_email(email: str) -> str:
    """The form an e-mail address is tombstoned in: trimmed, NFC, lower case."""
    return unicodedata.normalize("NFC", email.strip()).lower()


def email_hash(key: TombstoneKey, email: str) -> str:
    """The tombstone of an e-mail address: the id formula over a text no id can be (ids hold no control character)."""
    return subject_hash(key, f"\x00email:{normalise_email(email)}")


def email_subject(db: sqlite_utils.Database, settings: KeySource, email: str | None) -> str | None:
    """The tombstone of ``email`` (None without one), stored at erasure beside the id's."""
    if not email or not normalise_email(email):
        return None
    return email_hash(ensure_key(db, settings), email)


def erased_emails(db: sqlite_utils.Database, settings: KeySource, emails: Iterable[str | None]) -> dict[str, str]:
    """``{email: erased_at}`` for those of ``emails`` that belonged to an erased customer.

    No key file is read when no e-mail was ever tombstoned.
    """
    unique = [e for e in dict.fromkeys(emails) if e and normalise_email(e)]
    if not unique or store.erased_email_count(db) == 0:
        return {}
    key = ensure_key(db, settings)
    by_hash: dict[str, list[str]] = {}
    for e in unique:
        by_hash.setdefault(email_hash(key, e), []).append(e)
    return {e: when for h, when in store.erased_email_dates(db, list(by_hash)).items() for e in by_hash[h]}


def lift_email(db: sqlite_utils.Database, settings: KeySource, email: str | None) -> bool:
    """Remove the tombstone of ``email`` (its owner signed up again with it); True if there was one."""
    if not email or store.erased_email_count(db) == 0:
        return False
    return store.delete_email_tombstone(db, email_hash(ensure_key(db, settings), email))


def lift(db: sqlite_utils.Database, settings: KeySource, customer_id: str) -> bool:
    """Remove the tombstone of ``customer_id`` (a real new sign-up, see :func:`privacy.resignup`); True if there was one.

    The erasure's entry in ``privacy_events`` stays: long jobs that read data
    from before the erasure must still leave this person out.
    """
    if store.erasure_count(db) == 0:
        return False
    return store.delete_tombstone(db, subject_hash(ensure_key(db, settings), customer_id))


def subject_of(db: sqlite_utils.Database, settings: Settings, customer_id: str) -> str:
    """The tombstone of one customer (the one place an id is hashed for privacy)."""
    return subjects_of(db, settings, [customer_id])[customer_id]


def subjects_of(db: sqlite_utils.Database, settings: Settings, customer_ids: Iterable[str]) -> dict[str, str]:
    """Tombstones of many customers at once (the key is read once)."""
    key = ensure_key(db, settings)
    return {c: subject_hash(key, c) for c in dict.fromkeys(customer_ids)}
