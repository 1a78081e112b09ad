"""What a shop reads in its first week: ``stats`` in two aligned blocks, report times as dates."""

from __future__ import annotations

from click.testing import CliRunner

from recommender.cli import cli
from recommender.training import report


def test_stats_shows_the_shops_data_first_in_a_stable_layout(tmp_path):
    runner = CliRunner()
    db = tmp_path / "shop.db"
    assert runner.invoke(cli, ["init", "--db", str(db)]).exit_code == 0
    result = runner.invoke(cli, ["stats", "--db", str(db)])
    assert result.exit_code == 0, result.output
    lines = result.output.rstrip("\n").splitlines()
    assert lines[0] == "shop data"
    shop = lines[1 : lines.index("engine bookkeeping")]
    assert [line.split("  ")[1].strip() for line in shop][:3] == ["customers", "products", "events"]
    # every count ends in the same column, in both blocks
    counted = [line for line in lines if line.startswith("  ")]
    assert len({len(line) for line in counted}) == 1
    assert len(counted) == len(lines) - 2


def _payload(cut: int) -> dict:
    scores = {"precision": 0.1, "recall": 0.2, "ndcg": 0.3, "map": 0.05, "coverage": 0.4}
    als = {
        "factors": 8,
        "regularization": 0.1,
        "alpha": 1.0,
        "iterations": 3,
        "log_scaling": True,
        "half_life_days": 7.0,
    }
    return {
        "k": 10,
        "users": 3,
        "eligible_users": 4,
        "cut_time": cut,
        "model": scores,
        "popularity": scores,
        "params": {"engine": "implicit", "als": als, "event_weights": {"purchase": 1.0}},
    }


def test_the_report_writes_the_cut_as_a_date_never_as_unix_seconds(tmp_path):
    # 1320155040 s = 15,279 days (2011-11-01) + 49,440 s (13:44:00), counted by hand
    text = report.write(tmp_path, _payload(1320155040), {}).read_text(encoding="utf-8")
    assert "2011-11-01 13:44 UTC" in text
    assert "1320155040" not in text and "Unix" not in text
