"""``--db`` and ``--config`` mean the same before or after a subcommand (the nearer one wins)."""

from __future__ import annotations

from click.testing import CliRunner

from recommender.cli import cli


def _customers(path):
    path.write_text("id,email\nC1,c1@example.org\nC2,c2@example.org\n", encoding="utf-8")
    return path


def _count(runner, db) -> str:
    result = runner.invoke(cli, ["stats", "--db", str(db), "--json"])
    assert result.exit_code == 0, result.output
    return result.output


def test_db_is_accepted_before_the_command_before_the_subcommand_and_after_it(tmp_path):
    runner = CliRunner()
    db = tmp_path / "shop.db"
    assert runner.invoke(cli, ["--db", str(db), "init"]).exit_code == 0
    assert db.exists()
    csv = _customers(tmp_path / "customers.csv")
    result = runner.invoke(cli, ["import", "--db", str(db), "customers", str(csv)])
    assert result.exit_code == 0, result.output
    assert '"customers": 2' in _count(runner, db)
    result = runner.invoke(cli, ["--db", str(db), "stats", "--json"])
    assert result.exit_code == 0 and '"customers": 2' in result.output


def test_the_nearer_db_wins_and_an_unknown_one_is_a_one_line_error(tmp_path):
    runner = CliRunner()
    db = tmp_path / "shop.db"
    assert runner.invoke(cli, ["init", "--db", str(db)]).exit_code == 0
    missing = tmp_path / "missing.db"
    result = runner.invoke(cli, ["--db", str(missing), "stats", "--db", str(db), "--json"])
    assert result.exit_code == 0, result.output
    result = runner.invoke(cli, ["--db", str(db), "stats", "--db", str(missing)])
    assert result.exit_code == 1
    assert result.output.strip().splitlines() == [
        f"Error: database {missing} does not exist (run `recommender init` to create one)"
    ]
    assert not missing.exists()
