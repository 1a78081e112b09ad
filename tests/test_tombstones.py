"""Keyed tombstones: nothing in the database reverses them, the key file does, old salted ones survive the move."""

import hashlib
import hmac
import json
import shutil
import stat
import subprocess

import pytest
from conftest import write_csv

from recommender import privacy, store
from recommender.cli import cli
from recommender.config import load_settings
from recommender.errors import ConfigError
from recommender.ingest import imports
from recommender.store import tombstones

CANDIDATES = ["c1", "c2", "c3", "c4", "nobody"] + [f"C{n:04d}" for n in range(1, 200)]


def text_values(db):
    """Every value of every table of the database file, as text (blobs as hex and as text)."""
    values = set()
    for table in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall():
        for row in db.execute(f'SELECT * FROM "{table[0]}"'):
            for value in row:
                if value is None:
                    continue
                if isinstance(value, bytes):
                    values.update({value.hex(), value.decode("latin-1")})
                else:
                    values.add(str(value))
    return values


def guesses(secret: str, candidate: str):
    """Ways an attacker could combine a stored value with a candidate id."""
    raw = secret.encode()
    inner = hashlib.sha256(f"{secret}:{candidate}".encode()).hexdigest()
    yield hashlib.sha256(candidate.encode()).hexdigest()
    yield inner
    yield hashlib.sha256(f"{candidate}:{secret}".encode()).hexdigest()
    yield hashlib.sha256((secret + candidate).encode()).hexdigest()
    for key in {raw, bytes.fromhex(secret) if _is_hex(secret) else raw}:
        yield hmac.new(key, candidate.encode(), hashlib.sha256).hexdigest()
        yield hmac.new(key, inner.encode(), hashlib.sha256).hexdigest()
        yield hmac.new(key, hashlib.sha256(candidate.encode()).hexdigest().encode(), hashlib.sha256).hexdigest()


def _is_hex(text: str) -> bool:
    try:
        bytes.fromhex(text)
    except ValueError:
        return False
    return len(text) % 2 == 0


def test_a_tombstone_cannot_be_matched_from_the_database_only_with_the_key_file(small_shop, settings):
    db = small_shop
    salt_before = store.meta_value(db, "erasure_salt")
    assert salt_before  # a fresh database starts with the v3 salt in meta
    result = privacy.forget(db, settings, "c1")
    tomb = result["tombstone"]
    assert [r[0] for r in db.execute("SELECT subject_hash FROM erasures")] == [tomb]

    stored = text_values(db)
    assert tomb in stored and "c1" not in stored
    assert store.meta_value(db, "erasure_salt") is None  # the salt left the database
    for secret in stored:
        for candidate in CANDIDATES:
            assert tomb not in set(guesses(secret, candidate)), (secret, candidate)

    # With the key file, the documented formula finds exactly the erased id.
    key = json.loads(settings.privacy.key_file.read_text())
    assert key["salt"] == salt_before

    def keyed(cid):
        inner = hashlib.sha256(f"{key['salt']}:{cid}".encode()).hexdigest()
        return hmac.new(bytes.fromhex(key["key"]), inner.encode(), hashlib.sha256).hexdigest()

    assert [c for c in CANDIDATES if keyed(c) == tomb] == ["c1"]
    assert tombstones.erased(db, settings, CANDIDATES) == {"c1"}
    assert tombstones.subject_hash(settings, "c1") == tomb


def test_key_file_is_owner_only_in_the_databases_private_folder_that_git_ignores(small_shop, settings, tmp_path):
    privacy.forget(small_shop, settings, "c2")
    path = settings.privacy.key_file
    assert path == settings.db.with_name("shop.db.private") / "tombstone.key"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    # git itself says the folder's files cannot be added by accident
    if shutil.which("git"):
        subprocess.run(["git", "init", "-q", str(settings.db.parent)], check=True)
        status = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=all"],
            cwd=settings.db.parent,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        assert "private" not in status and "tombstone.key" not in status


def test_a_database_whose_key_sits_beside_it_keeps_that_key(tmp_path):
    db = tmp_path / "old.db"
    beside = tmp_path / "old.db.key"
    beside.write_text("{}", encoding="utf-8")
    assert load_settings(None, overrides={"db": db}, environ={}).privacy.key_file == beside
    beside.unlink()
    assert (
        load_settings(None, overrides={"db": db}, environ={}).privacy.key_file
        == tmp_path / "old.db.private" / "tombstone.key"
    )


def test_salted_tombstones_of_an_older_database_are_migrated_not_lost(small_shop, settings):
    db = small_shop
    salt = store.meta_value(db, "erasure_salt")
    # What the previous version stored for an erasure of "old1": sha256 of salt and id.
    legacy = hashlib.sha256(f"{salt}:old1".encode()).hexdigest()
    db.execute("INSERT INTO erasures (subject_hash, erased_at) VALUES (?, '2025-05-05')", [legacy])
    db.execute(
        "INSERT INTO privacy_events (kind, subject_hash, recorded_at) VALUES ('erasure', ?, '2025-05-05T00:00:00Z')",
        [legacy],
    )
    assert not settings.privacy.key_file.exists()

    assert tombstones.erased_on(db, settings, ["old1", "c1", "new"]) == {"old1": "2025-05-05"}
    key = json.loads(settings.privacy.key_file.read_text())
    expected = hmac.new(bytes.fromhex(key["key"]), legacy.encode(), hashlib.sha256).hexdigest()
    assert [r[0] for r in db.execute("SELECT subject_hash FROM erasures")] == [expected]
    assert [r[0] for r in db.execute("SELECT subject_hash FROM privacy_events")] == [expected]
    assert key["salt"] == salt and store.meta_value(db, "erasure_salt") is None

    # An erasure after the move uses the same formula, and a second use does not re-key anything.
    privacy.forget(db, settings, "c3")
    assert tombstones.erased(db, settings, ["old1", "c3", "c2"]) == {"old1", "c3"}
    assert store.erasure_count(db) == 2


def test_a_missing_or_foreign_key_file_is_a_clear_error(small_shop, settings, tmp_path, runner):
    db = small_shop
    privacy.forget(db, settings, "c1")
    good = settings.privacy.key_file.read_text()
    settings.privacy.key_file.unlink()
    with pytest.raises(
        ConfigError, match=r"shop\.db\.private/tombstone\.key is missing, but this database holds [1-9]\d* tombstone"
    ):
        tombstones.erased(db, settings, ["c1"])
    # The doors refuse to guess: an import naming an unknown id cannot be checked.
    path = write_csv(tmp_path / "again.csv", "id,email", "c1,a@example.com")
    out = runner.invoke(cli, ["import", "customers", str(path)])
    assert out.exit_code == 1 and "Error: privacy key file" in out.output and "Traceback" not in out.output

    other = tmp_path / "other.key"
    settings.privacy.key_file = other
    other.write_text(json.dumps({"format": tombstones.KEY_FORMAT, "key": "ab" * 32, "salt": "x"}))
    with pytest.raises(ConfigError, match="belongs to another database"):
        tombstones.erased(db, settings, ["c1"])
    other.write_text("not json")
    with pytest.raises(ConfigError, match="not a valid key file"):
        tombstones.erased(db, settings, ["c1"])
    settings.privacy.key_file.write_text(good)
    assert tombstones.erased(db, settings, ["c1"]) == {"c1"}


def test_no_key_file_is_read_or_made_while_nothing_was_erased(small_shop, settings):
    assert tombstones.erased(small_shop, settings, ["c1", "ghost"]) == set()
    imports.import_file(small_shop, "customers", settings.db.parent / "customers.csv", settings)
    assert not settings.privacy.key_file.exists()
