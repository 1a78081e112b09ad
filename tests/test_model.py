import json

import numpy as np
import pytest
from implicit.cpu.als import AlternatingLeastSquares
from threadpoolctl import threadpool_limits

from recommender.data import interactions
from recommender.errors import ConfigError, ModelError
from recommender.models.engines import get_engine
from recommender.models.factor import FactorModel, batch_top_k


@pytest.fixture
def fitted(sample_db, fast_settings):
    data = interactions.load(sample_db, fast_settings)
    matrix = data.matrix(fast_settings.als)
    model = get_engine("implicit").fit(matrix, data.user_ids, data.item_ids, fast_settings.als)
    return model, matrix, data


def test_save_then_load_gives_identical_recommendations(fitted, tmp_path):
    model, matrix, _ = fitted
    model.save(tmp_path / "m")
    loaded = FactorModel.load(tmp_path / "m")
    assert loaded.user_ids == model.user_ids and loaded.item_ids == model.item_ids
    for u in range(0, len(model.user_ids), 97):
        seen = matrix[u].indices
        a = model.recommend(model.user_factors[u], 10, exclude=seen)
        b = loaded.recommend(loaded.user_factors[u], 10, exclude=seen)
        assert list(a[0]) == list(b[0]) and np.allclose(a[1], b[1])
        assert not set(a[0]) & set(seen)
    assert list(model.similar_items(3, 5)[0]) == list(loaded.similar_items(3, 5)[0])


def test_recommend_honours_exclude_and_allow(fitted):
    model, _, _ = fitted
    vec = model.user_factors[0]
    allow = np.zeros(len(model.item_ids), dtype=bool)
    allow[[4, 8, 15, 16]] = True
    items, scores = model.recommend(vec, 10, exclude=[8], allow=allow)
    assert set(items) == {4, 15, 16}
    assert list(scores) == sorted(scores, reverse=True)


def test_batch_top_k_agrees_with_single_recommendations(fitted):
    model, matrix, _ = fitted
    users = np.arange(0, 40)
    top = batch_top_k(model.user_factors[users], model.item_factors, matrix[users], 10)
    for row, u in enumerate(users):
        single, _ = model.recommend(model.user_factors[u], 10, exclude=matrix[u].indices)
        assert list(top[row][: len(single)]) == list(single)


def test_fold_in_matches_implicit_recalculate_user(fitted):
    model, matrix, _ = fitted
    reference = AlternatingLeastSquares(factors=model.factors, regularization=model.regularization, alpha=1.0)
    reference.user_factors = np.array(model.user_factors)
    reference.item_factors = np.array(model.item_factors)
    for u in (1, 10, 100):
        row = matrix[u]
        ours = model.recalculate_user(row.indices, row.data)
        with threadpool_limits(1, "blas"):
            theirs = reference.recalculate_user(0, row)
        assert np.allclose(ours, np.ravel(theirs), atol=1e-4)


def test_explain_contributions_add_up_to_the_score(fitted):
    model, matrix, _ = fitted
    row = matrix[7]
    vec = model.recalculate_user(row.indices, row.data)
    target = int(model.recommend(vec, 1, exclude=row.indices)[0][0])
    parts = model.explain(row.indices, row.data, target, n=len(row.indices))
    a, _ = model._system(row.indices, row.data)
    all_parts = row.data * (
        model.item_factors[row.indices] @ np.linalg.solve(a, model.item_factors[target].astype(np.float64))
    )
    assert np.isclose(all_parts.sum(), float(model.item_factors[target] @ vec), rtol=1e-3)
    assert [i for i, _ in parts] == [int(row.indices[j]) for j in np.argsort(-all_parts) if all_parts[j] > 0]


def test_corrupt_or_incomplete_artifacts_are_refused(fitted, tmp_path):
    model, _, _ = fitted
    model.save(tmp_path / "m")
    data = (tmp_path / "m" / "item_factors.npy").read_bytes()
    (tmp_path / "m" / "item_factors.npy").write_bytes(data[:-8] + b"\0" * 8)
    with pytest.raises(ModelError, match="checksum mismatch"):
        FactorModel.load(tmp_path / "m")
    model.save(tmp_path / "n")
    (tmp_path / "n" / "ids.json").unlink()
    with pytest.raises(ModelError, match="cannot load"):
        FactorModel.load(tmp_path / "n")
    with pytest.raises(ModelError):
        FactorModel.load(tmp_path / "absent")
    model.save(tmp_path / "o")
    manifest = json.loads((tmp_path / "o" / "manifest.json").read_text())
    manifest["format"] = 99
    (tmp_path / "o" / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ModelError, match="unknown artifact format"):
        FactorModel.load(tmp_path / "o")


def test_warm_start_continues_from_given_factors(fitted, fast_settings):
    model, matrix, data = fitted
    zero = get_engine("implicit").fit(
        matrix, data.user_ids, data.item_ids, fast_settings.als, warm_start=model, iterations=0
    )
    assert np.array_equal(zero.item_factors, model.item_factors)


def test_unknown_engine_is_a_config_error():
    with pytest.raises(ConfigError, match="unknown engine"):
        get_engine("tensorflow")
