"""The property: whatever the order of imports, events, consent changes, erasures, retrains (one
overlapping an erasure), campaigns and exports, nothing of an erased customer survives anywhere the
engine writes, and no withdrawn customer is in any artifact."""

from __future__ import annotations

import contextlib
import json
import shutil
import tempfile
from pathlib import Path
from unittest import mock

import numpy as np
from hypothesis import HealthCheck, Phase, example, given, settings as hsettings, strategies as st

from recommender import campaigns, privacy, store
from recommender.campaigns import CampaignRequest
from recommender.config import load_settings
from recommender.data import exports
from recommender.errors import NotFoundError, ValidationError
from recommender.ingest import consent, events, imports
from recommender.models import registry
from recommender.models.factor import IDS_FILE
from recommender.training import run as training
from tests.conftest import write_csv

N_CUSTOMERS = 10
FIRST_NAMES = [
    "Aurelio",
    "Brunhild",
    "Cassiopeia",
    "Dagoberto",
    "Eulalie",
    "Fitzgerald",
    "Griselda",
    "Hieronymus",
    "Isolde",
    "Jehoshaphat",
]
CIDS = [f"QZ{i:02d}X" for i in range(N_CUSTOMERS)]


def person(i: int) -> dict[str, str]:
    return {"id": CIDS[i], "email": f"{FIRST_NAMES[i].lower()}.mail@example.org", "name": f"{FIRST_NAMES[i]} Quixley"}


def build_shop(root: Path):
    settings = load_settings(environ={}, overrides={"db": root / "data" / "shop.db", "model_dir": root / "models"})
    settings.als.factors = 4
    settings.als.iterations = 3
    settings.als.refit_iterations = 1
    settings.privacy.decision_log = False
    settings.evaluation.k = 5  # fewer than the 8 products
    db = store.connect(settings.db, create=True)
    write_csv(
        root / "c.csv",
        "id,email,name,birth_date,timezone",
        *(
            f"{p['id']},{p['email']},{p['name']},1990-06-0{1 + i % 7},UTC"
            for i, p in ((i, person(i)) for i in range(N_CUSTOMERS))
        ),
    )
    write_csv(root / "p.csv", "id,name,category,price", *(f"P{j},Item{j},home,{j + 1}" for j in range(8)))
    rng = np.random.default_rng(7)
    lines = [
        f"{CIDS[i]},P{rng.integers(8)},{'purchase' if rng.random() < 0.5 else 'view'},1,"
        f"2025-0{1 + d // 28}-{1 + d % 28:02d}T12:00:00Z"
        for i in range(N_CUSTOMERS)
        for d in sorted(rng.choice(100, 12, replace=False))
    ]
    write_csv(root / "i.csv", "customer_id,product_id,event_type,quantity,occurred_at", *lines)
    write_csv(
        root / "k.csv",
        "customer_id,purpose,granted,updated_at,source",
        *(f"{c},{p},true,2025-01-01T00:00:00Z,signup" for c in CIDS for p in ("personalization", "marketing")),
    )
    for kind, name in (("customers", "c"), ("products", "p"), ("interactions", "i"), ("consents", "k")):
        imports.import_file(db, kind, root / f"{name}.csv", settings)
        (root / f"{name}.csv").unlink()  # the shop's own input files, not something the engine wrote
    return settings, db


OPS = st.one_of(
    st.tuples(st.just("import"), st.integers(0, N_CUSTOMERS - 1)),
    st.tuples(st.just("event"), st.integers(0, N_CUSTOMERS - 1)),
    st.tuples(st.just("consent"), st.integers(0, N_CUSTOMERS - 1), st.booleans()),
    st.tuples(st.just("erase"), st.integers(0, N_CUSTOMERS - 1)),
    st.tuples(st.just("train")),
    st.tuples(st.just("train_overlapping_erasure"), st.integers(0, N_CUSTOMERS - 1)),
    st.tuples(st.just("campaign")),
    st.tuples(st.just("export")),
)


class World:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.settings, self.db = build_shop(root)
        self.erased: set[int] = set()
        self.exports: list[Path] = []
        self.step = 0

    def alive(self, i: int) -> bool:
        return i not in self.erased

    def erase(self, i: int) -> None:
        if self.alive(i):
            privacy.forget(self.db, self.settings, CIDS[i])
            self.erased.add(i)

    def train(self, erase_during: int | None = None) -> None:
        real = training.load_data
        hook = contextlib.nullcontext()
        if erase_during is not None:

            def read_then_erase(db, settings):
                data = real(db, settings)
                self.erase(erase_during)  # committed after the trainer's read, before its save and publish
                return data

            hook = mock.patch.object(training, "load_data", read_then_erase)
        with hook, contextlib.suppress(ValidationError):
            training.train(self.db, self.settings, publish=True, force=True)

    def apply(self, op: tuple) -> None:
        self.step += 1
        kind, *args = op
        if kind == "import" and self.alive(args[0]):
            path = write_csv(
                self.root / f"more-{self.step}.csv",
                "customer_id,product_id,event_type,quantity,occurred_at",
                f"{CIDS[args[0]]},P{self.step % 8},purchase,1,2025-04-0{1 + self.step % 9}T08:00:00Z",
            )
            imports.import_file(self.db, "interactions", path, self.settings)
            path.unlink()
        elif kind == "event" and self.alive(args[0]):
            events.ingest(
                self.db,
                self.settings,
                [{"customer_id": CIDS[args[0]], "product_id": f"P{self.step % 8}", "event_type": "purchase"}],
            )
        elif kind == "consent" and self.alive(args[0]):
            consent.set_consents(self.db, self.settings, CIDS[args[0]], {"personalization": args[1]}, "test")
        elif kind == "erase":
            self.erase(args[0])
        elif kind == "train":
            self.train()
        elif kind == "train_overlapping_erasure":
            self.train(erase_during=args[0])
        elif kind == "campaign":
            out = self.root / "out" / f"offers-{self.step}.{'csv' if self.step % 2 else 'jsonl'}"
            out.parent.mkdir(exist_ok=True)  # the campaign job never creates folders
            campaigns.run(
                self.db, self.settings, CampaignRequest(occasion="birthday", date="2026-06-01", days_ahead=7), out=out
            )
        elif kind == "export":
            out = self.root / "out" / f"parquet-{self.step}"
            exports.export_interactions(self.db, self.settings, out)


def _traces(db, needles: list[str]) -> list[tuple[str, str, str]]:
    found = []
    for table in db.table_names():
        for column in db[table].columns_dict:
            for needle in needles:
                n = db.execute(
                    f'SELECT count(*) FROM "{table}" WHERE instr(CAST("{column}" AS TEXT), ?) > 0', [needle]
                ).fetchone()[0]
                if n:
                    found.append((table, column, needle))
    return found


def check(world: World) -> None:
    db, settings = world.db, world.settings
    needles = [v for i in world.erased for v in person(i).values()]
    assert _traces(db, needles) == []
    for path in world.root.rglob("*"):  # the database and its WAL, artifacts, exports, campaign files
        if path.is_file() and not path.name.endswith(".csv.gz"):
            data = path.read_bytes()
            for needle in needles:
                assert needle.encode() not in data, (path, needle)
    withdrawn = {c for c in CIDS if not store.has_consent(db, c, "personalization")}
    for directory in registry.Registry(settings.model_dir).root.iterdir():
        if directory.is_dir() and not directory.name.startswith("."):
            users = set(json.loads((directory / IDS_FILE).read_text())["users"])
            assert not users & withdrawn, directory.name


# Bounded to about a minute: few examples, no shrinking (a failure prints its operations as they are).
@hsettings(
    max_examples=6,
    deadline=None,
    # The same examples on every run, so a failure reproduces; to search wider by hand, raise
    # max_examples and drop derandomize.
    derandomize=True,
    suppress_health_check=list(HealthCheck),
    phases=[Phase.explicit, Phase.reuse, Phase.generate],
)
@given(ops=st.lists(OPS, min_size=3, max_size=7))
# Found by this test: a filtered Parquet export kept the erased id in its column dictionaries.
@example(
    ops=[
        ("campaign",),
        ("event", 2),
        ("export",),
        ("consent", 9, False),
        ("train_overlapping_erasure", 4),
        ("erase", 0),
        ("import", 2),
    ]
)
# Found by this test: QZ00X withdrew (the newest privacy event) and came back; the last retrain read that
# event's id as its epoch and the erasure during it took the same id back, so the retrain kept QZ00X.
@example(
    ops=[
        ("train_overlapping_erasure", 4),
        ("consent", 5, False),
        ("erase", 2),
        ("consent", 5, False),
        ("consent", 7, False),
        ("export",),
        ("train",),
        ("export",),
        ("consent", 5, False),
        ("event", 3),
        ("train",),
        ("consent", 0, True),
        ("consent", 0, False),
        ("consent", 0, True),
    ]
)
def test_nothing_of_an_erased_or_withdrawn_customer_survives(ops):
    root = Path(tempfile.mkdtemp(prefix="privacy-property-"))
    try:
        world = World(root)
        world.train()
        # Always end with copies written before an erasure that overlaps a retrain.
        for op in [*ops, ("export",), ("campaign",), ("train_overlapping_erasure", None)]:
            if op[0] == "train_overlapping_erasure" and op[1] is None:
                last = next((i for i in range(N_CUSTOMERS) if world.alive(i)), 0)
                op = (op[0], last)
            try:
                world.apply(op)
            except NotFoundError:
                pass
        check(world)
    finally:
        shutil.rmtree(root, ignore_errors=True)
