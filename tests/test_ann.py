"""The ANN path of large catalogues: only allowed products, exact fallbacks, recall, refused when corrupt.

Real faiss index built by the publish-time code, saved in a real artifact,
served through the real ranking path over a real SQLite catalogue. Expected
sets and rankings come from the rows and factors with plain numpy here.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

pytest.importorskip("faiss")

from recommender import store
from recommender.config import AnnSettings  # noqa: E402
from recommender.errors import ModelError  # noqa: E402
from recommender.models import registry  # noqa: E402
from recommender.models.base import load_model, sha256  # noqa: E402
from recommender.models.factor import FactorModel  # noqa: E402
from recommender.privacy import DecisionLog  # noqa: E402
from recommender.serving.catalogue import ListFilters  # noqa: E402
from recommender.serving.service import ListOptions, Service  # noqa: E402
from recommender.store.rows import ConsentDecision, CustomerRow, EventRow, ProductRow

RANK = 16
NOW = 1_767_225_600  # 2026-01-01


def clustered(rng: np.random.Generator, items: int, rank: int = RANK, clusters: int = 60) -> np.ndarray:
    """Shop-like factors: products around a few tastes, norms falling off like popularity."""
    centres = rng.standard_normal((clusters, rank))
    own = centres[rng.integers(0, clusters, items)] + 0.5 * rng.standard_normal((items, rank))
    scale = rng.permutation(1.0 / (1.0 + np.arange(items)) ** 0.5)
    return (own * scale[:, None] * 10).astype(np.float32)


def brute(factors: np.ndarray, query: np.ndarray, n: int, allowed: np.ndarray | None = None) -> list[int]:
    scores = factors.astype(np.float64) @ query.astype(np.float64)
    idx = np.arange(len(factors)) if allowed is None else np.asarray(allowed)
    return idx[np.argsort(-scores[idx], kind="stable")][:n].tolist()


def flip_a_byte(target):
    """Corrupt one byte in the middle of a file (returns its path)."""
    raw = bytearray(target.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    target.write_bytes(bytes(raw))
    return target


def small_index_settings(**kw) -> AnnSettings:
    return AnnSettings(**{"min_products": 0, "lists": 40, "target_recall": 0.97, **kw})


@pytest.fixture
def model_with_index():
    rng = np.random.default_rng(5)
    items = clustered(rng, 6000)
    users = (items[rng.integers(0, len(items), (300, 4))].sum(axis=1) / 4).astype(np.float32)
    model = FactorModel(
        users,
        items,
        [f"u{i}" for i in range(300)],
        [f"p{i:05d}" for i in range(6000)],
        1.0,
        manifest={"data": {"reference_time": NOW}},
    )
    assert model.attach_ann(small_index_settings())
    return model, rng


def test_ann_recall_against_exact_top_10(model_with_index):
    model, rng = model_with_index
    items = np.asarray(model.item_factors)
    queries = (items[rng.integers(0, len(items), (100, 3))].sum(axis=1)).astype(np.float32)  # not the calibration set
    hits = 0
    for q in queries:
        ids, scores = model.recommend(q, 10)
        assert model.last_search == "ann"
        np.testing.assert_allclose(scores, items[ids] @ q, rtol=1e-5, atol=1e-5)  # exact scores served
        hits += len(set(ids.tolist()) & set(brute(items, q, 10)))
    assert hits / (10 * len(queries)) >= 0.9
    assert model.ann_params["probes"] < model.ann_params["lists"]  # it did not simply read every list


def test_selective_filter_and_long_exclusions_fall_back_to_exact(model_with_index):
    model, rng = model_with_index
    items = np.asarray(model.item_factors)
    q = items[7] + items[99]
    allow = np.zeros(len(items), dtype=bool)
    allow[rng.choice(len(items), 40, replace=False)] = True  # under 1 %: below min_allowed_share
    allow.flags.writeable = False
    ids, scores = model.recommend(q, 10, allow=allow)
    assert model.last_search == "subset"
    assert ids.tolist() == brute(items, q, 10, np.flatnonzero(allow))
    many = rng.choice(len(items), 3000, replace=False)  # too many to over-fetch around
    ids, _ = model.recommend(q, 10, exclude=many)
    assert model.last_search == "exact"
    assert ids.tolist() == brute(items, q, 10, np.setdiff1d(np.arange(len(items)), many))
    loose = np.ones(len(items), dtype=bool)
    loose[::3] = False  # a loose filter and the same long exclusions: still exact, every rule kept
    loose.flags.writeable = False
    ids, _ = model.recommend(q, 10, exclude=many, allow=loose)
    assert model.last_search == "exact"
    assert ids.tolist() == brute(items, q, 10, np.setdiff1d(np.flatnonzero(loose), many))
    assert model._norm_index is None  # the fallback scans; it builds no sorted copy mid-request
    model.configure_ann(AnnSettings(enabled=False))
    ids, _ = model.recommend(q, 10)
    assert model.last_search == "exact" and ids.tolist() == brute(items, q, 10)


def shop(settings, model: FactorModel) -> dict:
    """A catalogue whose rows say who may be listed; the model published in the registry."""
    db = store.connect(settings.db, create=True)
    rows = []
    for i, pid in enumerate(model.item_ids):
        rows.append(
            ProductRow(
                pid,
                f"Product {i}",
                category=f"cat{i % 5}",
                price=float(i % 100 + 1),
                in_stock=0 if i % 7 == 0 else 5,
                hidden=1 if i % 11 == 0 else 0,
                available_until="2000-01-01" if i % 13 == 0 else None,
            )
        )
    store.upsert_products(db, rows)
    store.upsert_customers(db, [CustomerRow("c1", created_at="2025-01-01T00:00:00Z")])
    store.set_consents(db, [ConsentDecision("c1", "personalization", True, "2025-01-01T00:00:00Z", "test")])
    reg = registry.Registry(settings.model_dir)
    reg.save(model, "v1")
    reg.set_current("v1")
    return {"db": db, "rows": {r.id: r for r in rows}}


def test_ann_path_returns_only_products_that_pass_every_filter(settings, model_with_index):
    model, rng = model_with_index
    built = shop(settings, model)
    db, rows = built["db"], built["rows"]
    items = np.asarray(model.item_factors)
    taste = np.argsort(-np.linalg.norm(items, axis=1))[:40]  # well-known products, so the top of the list is theirs
    viewed = [model.item_ids[i] for i in taste[:8]]
    bought = [model.item_ids[i] for i in taste[8:12]]
    store.upsert_interactions(
        db,
        [EventRow("c1", p, "view", 1.0, NOW - 3600 + k) for k, p in enumerate(viewed)]
        + [EventRow("c1", p, "purchase", 1.0, NOW - 60 + k) for k, p in enumerate(bought)],
    )
    service = Service(settings, decisions=DecisionLog(settings.db, enabled=False))
    filters = ListFilters(categories=("cat0", "cat1", "cat3"), min_price=10.0, max_price=80.0)
    first = service.recommend(db, "c1", ListOptions(n=30, filters=filters))
    exclude = tuple(first.product_ids[:3])  # leave out what would come first
    filters = ListFilters(categories=("cat0", "cat1", "cat3"), min_price=10.0, max_price=80.0, exclude=exclude)
    result = service.recommend(db, "c1", ListOptions(n=30, filters=filters))
    assert result.mode == "personalized"
    assert service.live.model.last_search == "ann"

    def passes(pid: str) -> bool:  # the rules, by hand from the rows
        row = rows[pid]
        cat, price, stock, hidden, until = row.category, row.price, row.in_stock, row.hidden, row.available_until
        return (
            cat in ("cat0", "cat1", "cat3")
            and 10.0 <= price <= 80.0
            and stock > 0
            and not hidden
            and until is None
            and pid not in exclude
            and pid not in bought
        )

    served = result.product_ids
    assert len(served) == 30 and len(set(served)) == 30
    assert all(passes(p) for p in served), [p for p in served if not passes(p)]
    # The filters bite: the unfiltered ranking of the same customer would show products they forbid.
    unfiltered = service.recommend(
        db, "c1", ListOptions(n=30, filters=ListFilters(in_stock_only=False), exclude_purchased=False)
    )
    assert any(not passes(p) for p in unfiltered.product_ids)
    db.conn.close()


def test_an_artifact_whose_index_fails_its_checksum_is_refused(settings, model_with_index):
    model, _ = model_with_index
    reg = registry.Registry(settings.model_dir)
    path = reg.save(model, "v1")
    loaded = load_model(path)
    assert isinstance(loaded.ann_data, np.memmap)  # read in place: workers share the page cache
    assert loaded.recommend(np.asarray(model.item_factors[3]), 5)[0].size == 5 and loaded.last_search == "ann"
    target = flip_a_byte(path / "ann_index.npy")
    with pytest.raises(ModelError, match="checksum mismatch in ann_index.npy"):
        load_model(path)
    # A checksum that matches bytes faiss cannot read is refused too, never served half-read.
    np.save(target, np.arange(64, dtype=np.uint8))
    manifest = json.loads((path / "manifest.json").read_text())
    manifest["checksums"]["ann_index.npy"] = sha256(target)
    (path / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ModelError, match="ANN index"):
        load_model(path)


def test_small_catalogues_get_no_index():
    rng = np.random.default_rng(1)
    model = FactorModel(
        rng.standard_normal((5, 4)).astype(np.float32),
        rng.standard_normal((50, 4)).astype(np.float32),
        [f"u{i}" for i in range(5)],
        [f"p{i}" for i in range(50)],
        1.0,
    )
    assert not model.attach_ann(AnnSettings(min_products=51))
    assert "ann_index" not in model.arrays()
    assert not model.attach_ann(AnnSettings(enabled=False, min_products=0))


def brute_cosine(factors: np.ndarray, item: int, n: int, allowed: np.ndarray | None = None) -> list[int]:
    """The exact neighbours by cosine, in float64, the item itself left out."""
    y = factors.astype(np.float64)
    scores = (y @ y[item]) / (np.linalg.norm(y, axis=1) * np.linalg.norm(y[item]))
    idx = np.arange(len(y)) if allowed is None else np.asarray(allowed)
    idx = idx[idx != item]
    return idx[np.argsort(-scores[idx], kind="stable")][:n].tolist()


def test_similar_products_come_from_the_cosine_index_and_pass_every_filter(settings, model_with_index):
    model, rng = model_with_index
    items = np.asarray(model.item_factors)
    assert model.ann_similar_params["probes"] < model.ann_similar_params["lists"]
    hits = 0
    probes = rng.choice(len(items), 60, replace=False)
    for item in probes:
        ids, scores = model.similar_items(int(item), 10)
        assert model.last_similar == "ann" and int(item) not in ids.tolist()
        y = items.astype(np.float64)
        np.testing.assert_allclose(
            scores,
            (y[ids] @ y[item]) / (np.linalg.norm(y[ids], axis=1) * np.linalg.norm(y[item])),
            rtol=1e-4,
            atol=1e-5,
        )
        hits += len(set(ids.tolist()) & set(brute_cosine(items, int(item), 10)))
    assert hits / (10 * len(probes)) >= 0.9
    # a loose filter: only allowed products, still from the index
    allow = np.ones(len(items), dtype=bool)
    allow[rng.choice(len(items), len(items) // 3, replace=False)] = False
    allow.flags.writeable = False
    for item in probes[:20]:
        ids, _ = model.similar_items(int(item), 10, allow=allow)
        assert model.last_similar == "ann" and len(ids) == 10 and allow[ids].all() and int(item) not in ids.tolist()
    # a selective filter scores just what it lets through, exactly
    few = np.zeros(len(items), dtype=bool)
    few[rng.choice(len(items), 30, replace=False)] = True
    few.flags.writeable = False
    ids, _ = model.similar_items(int(probes[0]), 10, allow=few)
    assert model.last_similar == "subset" and ids.tolist() == brute_cosine(
        items, int(probes[0]), 10, np.flatnonzero(few)
    )
    # switched off, every product is scored: the exact answer
    model.configure_ann(AnnSettings(enabled=False))
    ids, _ = model.similar_items(int(probes[1]), 10)
    assert model.last_similar == "exact" and ids.tolist() == brute_cosine(items, int(probes[1]), 10)
    # saved and loaded, the cosine index is checksummed like the other arrays
    path = registry.Registry(settings.model_dir).save(model, "v1")
    assert (
        load_model(path).similar_items(int(probes[2]), 10)[0].tolist()
        == switched_on(model).similar_items(int(probes[2]), 10)[0].tolist()
    )
    flip_a_byte(path / "ann_similar_index.npy")
    with pytest.raises(ModelError, match="checksum mismatch in ann_similar_index.npy"):
        load_model(path)


def switched_on(model: FactorModel) -> FactorModel:
    model.configure_ann(AnnSettings())
    return model


def test_a_blend_of_a_large_catalogue_searches_its_factor_part_through_the_index(settings, model_with_index):
    from recommender.models.families.blend import Blend

    model, rng = model_with_index
    items = np.asarray(model.item_factors)
    plain = FactorModel(
        np.asarray(model.user_factors),
        items,
        model.user_ids,
        model.item_ids,
        1.0,
        manifest={"data": {"reference_time": NOW}},
    )
    other = FactorModel(np.asarray(model.user_factors), items[:, ::-1].copy(), model.user_ids, model.item_ids, 1.0)
    blend = Blend([plain, other], [0.6, 0.4])
    assert blend.attach_ann(small_index_settings())  # the publish step builds the parts' indexes
    path = registry.Registry(settings.model_dir).save(blend, "v1")
    loaded = load_model(path)
    assert all(part._ann is not None and part._ann_similar is not None for part in loaded.parts)
    q = items[7] + items[99]
    ids, _ = loaded.recommend((q, q[::-1].copy()), 10)
    assert all(part.last_search == "ann" for part in loaded.parts) and len(set(ids.tolist())) == 10
    loaded.configure_ann(AnnSettings(enabled=False))  # the serve-time switch reaches every part
    exact, _ = loaded.recommend((q, q[::-1].copy()), 10)
    assert all(part.last_search == "exact" for part in loaded.parts)
    assert len(set(ids.tolist()) & set(exact.tolist())) >= 8  # the index changes little of the blend's list
