"""Irreversible commands ask on a terminal and need --yes anywhere else (a pipe is not a person)."""

import json

from recommender import store
from recommender.cli import cli
from recommender.serving import keys


def one_error_line(result):
    lines = [line for line in result.output.splitlines() if line.strip()]
    return len(lines) == 1 and lines[0].startswith("Error:") and "--yes" in lines[0]


def test_forget_from_a_pipe_needs_yes(runner, small_shop, settings):
    refused = runner.invoke(cli, ["forget", "c1"], input="n\n")
    assert refused.exit_code != 0 and one_error_line(refused), refused.output
    also_json = runner.invoke(cli, ["forget", "c1", "--json"], input="y\n")  # even "y" from a pipe
    assert also_json.exit_code != 0 and one_error_line(also_json), also_json.output
    db = store.connect(settings.db)
    assert db.execute("SELECT count(*) FROM customers WHERE id = 'c1'").fetchone()[0] == 1
    assert db.execute("SELECT count(*) FROM interactions WHERE customer_id = 'c1'").fetchone()[0] == 2
    done = runner.invoke(cli, ["forget", "c1", "--yes", "--json"])
    assert done.exit_code == 0, done.output
    assert json.loads(done.output)["erased"] is True
    assert db.execute("SELECT count(*) FROM customers WHERE id = 'c1'").fetchone()[0] == 0


def test_keys_revoke_from_a_pipe_needs_yes(runner, settings):
    db = store.connect(settings.db)
    key_id, _ = keys.create(db, "admin", "ops")
    refused = runner.invoke(cli, ["keys", "revoke", str(key_id)], input="y\n")
    assert refused.exit_code != 0 and one_error_line(refused), refused.output
    assert store.live_api_keys(db) == 1
    done = runner.invoke(cli, ["keys", "revoke", str(key_id), "--yes"])
    assert done.exit_code == 0 and f"key {key_id} revoked" in done.output
    assert store.live_api_keys(db) == 0
    listed = runner.invoke(cli, ["keys", "list"])
    assert "revoked" in listed.output
