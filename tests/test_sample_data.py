import hashlib
import importlib.util
import json

from conftest import ROOT, SAMPLE_DIR

from recommender import store
from recommender.cli import cli
from recommender.ingest import imports


def load_generator():
    spec = importlib.util.spec_from_file_location("make_sample_data", ROOT / "scripts" / "make_sample_data.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def digest(folder):
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


def test_generator_is_deterministic(tmp_path):
    generator = load_generator()
    counts = generator.generate(tmp_path / "a", seed=3)
    generator.generate(tmp_path / "b", seed=3)
    assert digest(tmp_path / "a") == digest(tmp_path / "b")
    generator.generate(tmp_path / "c", seed=4)
    assert digest(tmp_path / "a") != digest(tmp_path / "c")
    assert counts["customers.csv"] == 2000 and counts["products.csv"] == 400
    assert 50_000 <= counts["interactions.csv.gz"] <= 70_000


def test_committed_sample_is_small():
    total = sum(p.stat().st_size for p in SAMPLE_DIR.iterdir())
    assert total < 2 * 1024 * 1024


def test_load_sample_through_cli_and_again_is_idempotent(runner):
    first = runner.invoke(cli, ["load-sample", "--json"])
    assert first.exit_code == 0, first.output
    counts = json.loads(first.output)["counts"]
    assert counts["customers"] == 2000 and counts["products"] == 400
    assert counts["interactions"] > 50_000 and counts["consents"] > 3000
    again = json.loads(runner.invoke(cli, ["load-sample", "--json"]).output)
    assert again["counts"] == counts
    assert all(r["new"] == 0 and r["changed"] == 0 for r in again["imports"])


def test_sample_has_the_cases_later_features_need(db, settings):
    imports.load_sample(db, settings)
    feb29 = db.execute("SELECT count(*) FROM customers WHERE substr(birth_date, 6) = '02-29'").fetchone()[0]
    assert feb29 >= 5
    assert db.execute("SELECT count(*) FROM customers WHERE birth_date IS NULL").fetchone()[0] > 0
    zones = {r[0] for r in db.execute("SELECT DISTINCT timezone FROM customers")}
    assert {"Pacific/Auckland", "Pacific/Honolulu"} <= zones
    granted = len(store.consenting_customers(db, "personalization"))
    withdrawn = db.execute("SELECT count(*) FROM consents WHERE purpose='personalization' AND granted=0").fetchone()[0]
    assert 0.75 * 2000 < granted < 0.95 * 2000 and withdrawn > 0
    assert db.execute("SELECT count(*) FROM products WHERE hidden = 1").fetchone()[0] > 0
    types = {r[0] for r in db.execute("SELECT DISTINCT event_type FROM interactions")}
    assert types == {"view", "add_to_cart", "purchase"}
