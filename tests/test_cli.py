import json

import pytest
from conftest import write_csv

from recommender.cli import cli


def all_commands(group, prefix=()):
    for name, command in group.commands.items():
        path = (*prefix, name)
        yield path
        if hasattr(command, "commands"):
            yield from all_commands(command, path)


def test_help_lists_subcommands_and_each_has_help(runner):
    result = runner.invoke(cli, ["--help"])
    assert result.exit_code == 0
    for name in ("init", "load-sample", "import", "import-transactions", "stats"):
        assert name in result.output
    for path in all_commands(cli):
        sub = runner.invoke(cli, [*path, "--help"])
        assert sub.exit_code == 0, path
        assert "Usage:" in sub.output


def test_init_creates_database_at_db_option(runner, tmp_path):
    target = tmp_path / "elsewhere" / "x.db"
    result = runner.invoke(cli, ["init", "--db", str(target), "--json"])
    assert result.exit_code == 0, result.output
    payload = json.loads(result.output)
    assert payload["schema_version"] >= 1 and target.exists()


def test_db_defaults_to_environment(runner, settings):
    assert runner.invoke(cli, ["init"]).exit_code == 0
    assert settings.db.exists()


def test_import_error_is_one_line_and_non_zero(runner, tmp_path):
    path = write_csv(tmp_path / "p.csv", "id,name,price", "p1,Mug,-2")
    result = runner.invoke(cli, ["import", "products", str(path)])
    assert result.exit_code == 1
    assert result.output.strip() == f"Error: {path}:2: price must be >= 0, got '-2' (nothing was imported)"
    stats = json.loads(runner.invoke(cli, ["stats", "--json"]).output)
    assert stats["products"] == 0


def test_import_json_reports_counts(runner, tmp_path):
    path = write_csv(tmp_path / "p.csv", "id,name,price", "p1,Mug,2", "p2,Pan,3")
    result = runner.invoke(cli, ["import", "products", str(path), "--json"])
    assert result.exit_code == 0
    payload = json.loads(result.output)
    assert payload["rows"] == 2 and payload["new"] == 2 and payload["kind"] == "products"


def test_import_transactions_options(runner, tmp_path):
    path = write_csv(
        tmp_path / "o.csv",
        "inv,sku,cust,ts,n",
        "1,A,u1,2024-01-01 10:00,2",
        "C2,A,u1,2024-01-02 10:00,-2",
        "3,B,,2024-01-03 10:00,1",
    )
    args = [
        "import-transactions",
        str(path),
        "--map",
        "order=inv,product=sku,customer=cust,occurred_at=ts,quantity=n,price=,name=",
        "--grant",
        "personalization",
        "--grant",
        "marketing",
        "--json",
    ]
    result = runner.invoke(cli, args)
    assert result.exit_code == 0, result.output
    payload = json.loads(result.output)
    assert payload["skipped"]["cancelled"] == 1 and payload["skipped"]["no_customer"] == 1
    assert payload["created"] == {"customers": 1, "products": 1}
    stats = json.loads(runner.invoke(cli, ["stats", "--json"]).output)
    assert stats["consents"] == 2


@pytest.mark.parametrize(
    "args, message",
    [
        (["import-transactions", "x.csv", "--map", "oops"], "bad --map item"),
        (["import-transactions", "x.csv", "--grant", "spying"], "unknown purpose"),
        (["import", "customers", "absent.csv"], "no such file"),
    ],
)
def test_bad_options_exit_non_zero_with_one_line(runner, args, message):
    result = runner.invoke(cli, args)
    assert result.exit_code != 0
    assert message in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_bad_config_file_is_reported(runner, tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("[als]\nfactors = 'x'\n")
    result = runner.invoke(cli, ["stats", "--config", str(bad)])
    assert result.exit_code == 1 and "als.factors" in result.output
