"""Shared fixtures: real SQLite files in tmp_path, the real CLI through CliRunner."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from click.testing import CliRunner

from recommender import store
from recommender.config import load_settings

ROOT = Path(__file__).resolve().parent.parent
SAMPLE_DIR = ROOT / "sample_data"
ONLINE_RETAIL = ROOT.parent / "shared" / "datasets" / "online-retail" / "online_retail.csv.gz"


# Selection (on by default for shops) fits a dozen candidates per retrain; the tests of everything
# else retrain with the configured ALS settings (`--no-select`), tests/test_selection.py turns it on.
NO_SELECT = {"selection": {"enabled": False}}
# Child processes (cron script, servers, CLI runs) inherit it; a test that wants selection sets it to 1.
os.environ["RECOMMENDER_SELECTION_ENABLED"] = "0"


@pytest.fixture
def settings(tmp_path):
    return load_settings(
        environ={}, overrides={"db": tmp_path / "shop.db", "model_dir": tmp_path / "models", **NO_SELECT}
    )


@pytest.fixture
def db(settings):
    database = store.connect(settings.db, create=True)
    yield database
    database.conn.close()


@pytest.fixture
def runner(settings, monkeypatch):
    """A CliRunner whose commands use this test's database (initialised, as after `recommender init`)."""
    store.connect(settings.db, create=True).conn.close()
    monkeypatch.setenv("RECOMMENDER_DB", str(settings.db))
    monkeypatch.setenv("RECOMMENDER_MODEL_DIR", str(settings.model_dir))
    monkeypatch.delenv("RECOMMENDER_CONFIG", raising=False)
    monkeypatch.setenv("RECOMMENDER_SELECTION_ENABLED", "0")
    return CliRunner()


def write_csv(path: Path, header: str, *lines: str) -> Path:
    path.write_text("\n".join([header, *lines]) + "\n", encoding="utf-8")
    return path


@pytest.fixture
def small_shop(db, settings, tmp_path):
    """Three customers, four products, a few events and consents, imported through the real importers."""
    from recommender.ingest import imports

    write_csv(
        tmp_path / "customers.csv",
        "id,email,name,birth_date,anniversary_date,timezone,created_at",
        "c1,a@example.com,Ann,1990-02-28,,Europe/London,2025-01-01T00:00:00Z",
        "c2,b@example.com,Bob,1992-02-29,2015-06-01,Pacific/Auckland,2025-01-02T00:00:00Z",
        "c3,,Cy,,,,",
    )
    write_csv(
        tmp_path / "products.csv",
        "id,name,category,price,in_stock,hidden,available_until",
        "p1,Mug,kitchen,9.5,10,0,",
        "p2,Pan,kitchen,25,0,0,",
        "p3,Rose,garden,4,3,1,",
        "p4,Spade,garden,19.99,,0,2025-12-31",
    )
    write_csv(
        tmp_path / "interactions.csv",
        "customer_id,product_id,event_type,quantity,occurred_at",
        "c1,p1,view,1,2025-03-01T10:00:00Z",
        "c1,p1,purchase,2,2025-03-01T10:05:00Z",
        "c2,p2,view,,2025-03-02T10:00:00+02:00",
        "c3,p4,add_to_cart,1,2025-03-03 12:00:00",
    )
    write_csv(
        tmp_path / "consents.csv",
        "customer_id,purpose,granted,updated_at,source",
        "c1,personalization,true,2025-01-01T00:00:00Z,signup",
        "c1,marketing,false,2025-01-01T00:00:00Z,signup",
        "c2,personalization,1,,checkout",
    )
    for kind in ("customers", "products", "interactions", "consents"):
        imports.import_file(db, kind, tmp_path / f"{kind}.csv", settings)
    return db


@pytest.fixture
def sample_db(db, settings):
    """The bundled demo shop, loaded through the real importer."""
    from recommender.ingest import imports

    imports.load_sample(db, settings)
    return db


@pytest.fixture
def fast_settings(settings):
    """Small, quick ALS settings for tests that train repeatedly."""
    settings.als.factors = 16
    settings.als.iterations = 8
    return settings


@pytest.fixture(scope="session")
def trained_template(tmp_path_factory):
    """The demo shop with a published model, built once; tests get their own copy."""
    from recommender.ingest import imports
    from recommender.training import run as training

    root = tmp_path_factory.mktemp("template")
    settings = load_settings(environ={}, overrides={"db": root / "shop.db", "model_dir": root / "models", **NO_SELECT})
    settings.als.factors = 16
    db = store.connect(settings.db, create=True)
    imports.load_sample(db, settings)
    training.train(db, settings, publish=True)
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.conn.close()
    return root


@pytest.fixture
def served(trained_template, tmp_path):
    """Settings pointing at a private copy of the trained demo shop."""
    import shutil

    shutil.copy(trained_template / "shop.db", tmp_path / "shop.db")
    shutil.copytree(trained_template / "models", tmp_path / "models")
    settings = load_settings(
        environ={}, overrides={"db": tmp_path / "shop.db", "model_dir": tmp_path / "models", **NO_SELECT}
    )
    settings.als.factors = 16
    settings.serve.model_check_seconds = 0.0
    settings.serve.catalogue_ttl_seconds = 0.0
    # lists compared with the model's own ranking: no random exploration slots (tests/test_new_products.py has them)
    settings.serve.new_product_share = 0.0
    return settings


@pytest.fixture
def app(served):
    """The app on the demo shop, open (as `recommender serve --open`): tests of keys close it or use `closed_app`."""
    from api import create_app

    served.serve.open = True
    application = create_app(served)
    application.config["TESTING"] = True
    return application


@pytest.fixture
def client(app):
    return app.test_client()
