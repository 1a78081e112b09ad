"""Every model family passes the one behavioural suite; EASE^R and the item graphs equal hand-computed cases."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from model_contract import RecommenderContract

from recommender.config import ALSSettings, EASESettings, ItemGraphSettings, load_settings
from recommender.errors import ConfigError, ModelError
from recommender.models import families
from recommender.models.base import FAMILIES, load_model
from recommender.models.engines import get_engine
from recommender.models.factor import FactorModel
from recommender.models.families.blend import Blend
from recommender.models.families.ease import EASE, EASETooLarge
from recommender.models.families.itemgraph import ItemGraph


def fit_als(matrix, user_ids, item_ids):
    als = ALSSettings(factors=4, regularization=0.05, iterations=20, random_state=1)
    return get_engine("implicit").fit(matrix, user_ids, item_ids, als)


def factor_state(model, u, items, conf):
    """Evaluation scores training rows with their trained factors, serving with fold-in."""
    if isinstance(model, FactorModel):
        return np.asarray(model.user_factors[u])
    if isinstance(model, Blend):
        return tuple(factor_state(p, u, items, conf) for p in model.parts)
    return model.fold_in(items, conf)


class TestFactorModelContract(RecommenderContract):
    def make_model(self, matrix, user_ids, item_ids):
        return fit_als(matrix, user_ids, item_ids)

    training_state = staticmethod(factor_state)


class TestEASEContract(RecommenderContract):
    def make_model(self, matrix, user_ids, item_ids):
        return EASE.fit(matrix, user_ids, item_ids, EASESettings(regularization=2.0))


class TestRP3betaContract(RecommenderContract):
    def make_model(self, matrix, user_ids, item_ids):
        # Three neighbours of eight: short candidate lists, so the fill rule is exercised too.
        return ItemGraph.fit(matrix, user_ids, item_ids, ItemGraphSettings(neighbours=3), method="rp3beta")


class TestItemKNNContract(RecommenderContract):
    def make_model(self, matrix, user_ids, item_ids):
        return ItemGraph.fit(matrix, user_ids, item_ids, ItemGraphSettings(neighbours=3, shrink=1.0), method="itemknn")


class TestBlendContract(RecommenderContract):
    def make_model(self, matrix, user_ids, item_ids):
        parts = [
            fit_als(matrix, user_ids, item_ids),
            EASE.fit(matrix, user_ids, item_ids, EASESettings(regularization=2.0)),
            ItemGraph.fit(matrix, user_ids, item_ids, ItemGraphSettings(neighbours=3), method="rp3beta"),
        ]
        return Blend(parts, [0.5, 0.3, 0.2], depth=1)

    training_state = staticmethod(factor_state)


# --- EASE^R against the closed form, by hand ------------------------------------------------------


def test_ease_two_items_equals_the_closed_form():
    # X = [[1,1],[2,0],[0,3]]: XᵀX = [[a, c], [c, b]] = [[5, 1], [1, 10]].  With λ = 2,
    # P = (XᵀX + λI)⁻¹ = [[b+λ, −c], [−c, a+λ]] / det, so B₁₂ = −P₁₂/P₂₂ = c/(a+λ) = 1/7
    # and B₂₁ = c/(b+λ) = 1/12; the diagonal is 0.
    x = sp.csr_matrix(np.array([[1, 1], [2, 0], [0, 3]], dtype=np.float32))
    model = EASE.fit(x, ["u1", "u2", "u3"], ["i1", "i2"], EASESettings(regularization=2.0))
    np.testing.assert_allclose(model.weights, [[0.0, 1 / 7], [1 / 12, 0.0]], rtol=1e-6)
    # A customer with item 1 at confidence 2: score(i2) = 2 · 1/7, score(i1) = 0.
    np.testing.assert_allclose(model.score(model.fold_in(np.array([0]), np.array([2.0]))), [0.0, 2 / 7], rtol=1e-6)
    assert model.explain(np.array([0]), np.array([2.0]), 1) == [(0, pytest.approx(2 / 7, rel=1e-6))]


def test_ease_three_items_equals_the_closed_form():
    # X = [[1,1,0],[0,1,1],[1,0,0]] → XᵀX = [[2,1,0],[1,2,1],[0,1,1]]; λ = 1 → G = [[3,1,0],[1,3,1],[0,1,2]].
    # det G = 3·(3·2−1·1) − 1·(1·2−1·0) = 13; adjugate gives
    # P = G⁻¹ = [[5,−2,1],[−2,6,−3],[1,−3,8]] / 13.  B[j,i] = −P[j,i]/P[i,i]:
    # B = [[0, 2/6, −1/8], [2/5, 0, 3/8], [−1/5, 3/6, 0]].
    x = sp.csr_matrix(np.array([[1, 1, 0], [0, 1, 1], [1, 0, 0]], dtype=np.float32))
    model = EASE.fit(x, ["a", "b", "c"], ["p", "q", "r"], EASESettings(regularization=1.0))
    expected = np.array([[0, 1 / 3, -1 / 8], [2 / 5, 0, 3 / 8], [-1 / 5, 1 / 2, 0]])
    np.testing.assert_allclose(model.weights, expected, rtol=1e-6, atol=1e-7)
    # History p (confidence 1) and r (confidence 2): scores = 1·B[p,:] + 2·B[r,:] = [−0.4, 4/3, −0.125].
    state = model.fold_in(np.array([0, 2]), np.array([1.0, 2.0]))
    np.testing.assert_allclose(model.score(state), [-0.4, 4 / 3, -0.125], rtol=1e-6)
    # q's score is 1/3 from p and 2·1/2 = 1 from r: r explains it first.
    reasons = model.explain(np.array([0, 2]), np.array([1.0, 2.0]), 1)
    assert [j for j, _ in reasons] == [2, 0] and reasons[0][1] == pytest.approx(1.0, rel=1e-6)
    top, _ = model.recommend(state, 1, exclude=[0, 2])
    assert top.tolist() == [1]
    # Most similar to q: B[q,:] = [2/5, 0, 3/8] → p, then r.
    assert model.similar_items(1, 2)[0].tolist() == [0, 2]


def test_ease_ignores_products_nobody_touched():
    # A product without interactions has a zero row and column in B: leaving it out changes nothing.
    x = sp.csr_matrix(np.array([[1, 1, 0, 0], [0, 1, 0, 1], [1, 0, 0, 0]], dtype=np.float32))
    model = EASE.fit(x, ["a", "b", "c"], ["p", "q", "unsold", "r"], EASESettings(regularization=1.0))
    assert model.active.tolist() == [0, 1, 3]
    state = model.fold_in(np.array([0, 3]), np.array([1.0, 2.0]))
    np.testing.assert_allclose(model.score(state), [-0.4, 4 / 3, 0.0, -0.125], rtol=1e-6)
    assert model.similar_items(2, 3)[0].tolist() == []
    assert model.health(np.arange(3), np.array([0, 1, 3]))["items"] == 1.0


def test_ease_states_its_memory_and_refuses_before_allocating():
    # 200,000 active products: 12·m² + 3·8·m·1024 = 4.8e11 + 4.9152e9 = 484,915,200,000 bytes = 451.61 GiB,
    # refused at once (allocating it would fail on this machine).
    m = 200_000
    x = sp.identity(m, dtype=np.float32, format="csr")
    with pytest.raises(EASETooLarge) as info:
        EASE.fit(x, [str(i) for i in range(m)], [str(i) for i in range(m)], EASESettings(max_items=20_000))
    message = str(info.value)
    assert "\n" not in message and isinstance(info.value, ConfigError)
    assert "200,000 active products" in message and "451.61 GiB" in message
    assert "ease.max_items=20,000" in message and "itemgraph" in message
    # 3,000 products: 108,000,000 + 73,728,000 = 181,728,000 bytes = 0.17 GiB, logged before the fit.
    heard = []
    x = sp.identity(3000, dtype=np.float32, format="csr")
    with pytest.raises(EASETooLarge, match="0.17 GiB"):
        EASE.fit(x, [str(i) for i in range(3000)], [str(i) for i in range(3000)], EASESettings(max_items=2999))
    small = sp.csr_matrix(np.eye(3, dtype=np.float32))
    EASE.fit(small, list("abc"), list("xyz"), EASESettings(), log=heard.append)
    assert heard and "3 active products" in heard[0] and "GiB" in heard[0]


# --- item graphs, by hand ---------------------------------------------------------------------------------


def test_rp3beta_weights_equal_the_random_walk():
    # X = [[1,1,0],[0,1,1]]. P_ui: u1 → [½,½,0], u2 → [0,½,½]; P_iu: p → [1,0], q → [½,½], r → [0,1].
    # With α = 2 every step is squared: W = P_iu²·P_ui²: W[p] = [¼,¼,0], W[q] = ¼·[¼,¼,0] + ¼·[0,¼,¼]
    # = [1/16, 1/8, 1/16]; popularity = [1,2,1], so with β = ½ column q is divided by √2.
    x = sp.csr_matrix(np.array([[1, 1, 0], [0, 1, 1]], dtype=np.float32))
    model = ItemGraph.fit(x, ["u1", "u2"], ["p", "q", "r"], ItemGraphSettings(alpha=2.0, beta=0.5), method="rp3beta")
    w = sp.csr_matrix((model.data, model.indices, model.indptr), shape=(3, 3)).toarray()
    np.testing.assert_allclose(
        w, [[0, 0.25 / np.sqrt(2), 0], [1 / 16, 0, 1 / 16], [0, 0.25 / np.sqrt(2), 0]], rtol=1e-6
    )
    # u1 walks with weight (½)² = ¼ from p and from q: score(r) = ¼·W[p,r] + ¼·W[q,r] = ¼·1/16.
    state = model.fold_in(np.array([0, 1]), np.array([1.0, 1.0]))
    assert model.score(state)[2] == pytest.approx(1 / 64, rel=1e-6)
    assert model.score(state, np.array([2, 0])).tolist() == pytest.approx([1 / 64, 1 / 64], rel=1e-6)


def test_itemknn_is_the_shrunk_cosine():
    # Columns p = [1, 3], q = [2, 0]: p·q = 2, ‖p‖ = √10, ‖q‖ = 2; shrink 1 → 2 / (2√10 + 1) = 0.2730541.
    x = sp.csr_matrix(np.array([[1, 2], [3, 0]], dtype=np.float32))
    model = ItemGraph.fit(x, ["u1", "u2"], ["p", "q"], ItemGraphSettings(shrink=1.0), method="itemknn")
    assert model.similar_items(0, 1)[1][0] == pytest.approx(0.2730541, rel=1e-6)
    # A customer with p at confidence 3 scores q at 3 · 0.2730541 = 0.8191624.
    assert model.score(model.fold_in(np.array([0]), np.array([3.0])))[1] == pytest.approx(0.8191624, rel=1e-6)


def test_item_graph_keeps_k_neighbours_and_fills_from_popularity():
    x = sp.csr_matrix(np.array([[1, 1, 0, 0, 0], [1, 0, 1, 0, 0], [0, 0, 0, 1, 1], [0, 0, 0, 1, 0]], dtype=np.float32))
    model = ItemGraph.fit(x, list("abcd"), list("pqrst"), ItemGraphSettings(neighbours=1), method="itemknn")
    assert np.diff(model.indptr).max() == 1
    # p's one neighbour: q and r tie (cosine 1/(√2 + 10)), the lower index wins. The rest of the list is
    # popularity order, p excluded: s (2 customers), then r and t (1 each, by index).
    top, scores = model.recommend(model.fold_in(np.array([0]), np.array([1.0])), 4, exclude=[0])
    assert top.tolist() == [1, 3, 2, 4]
    assert scores[0] == pytest.approx(1 / (np.sqrt(2) + 10), rel=1e-6) and scores[1:].tolist() == [0.0, 0.0, 0.0]


def test_item_graph_fit_is_blockwise_on_a_wide_catalogue():
    # 50,000 products, one customer per pair: W is never dense (50,000² floats would be 10 GB).
    n = 50_000
    rows = np.repeat(np.arange(n // 2), 2)
    x = sp.csr_matrix((np.ones(n, np.float32), (rows, np.arange(n))), shape=(n // 2, n))
    model = ItemGraph.fit(
        x,
        [str(u) for u in range(n // 2)],
        [str(i) for i in range(n)],
        ItemGraphSettings(neighbours=10),
        method="rp3beta",
    )
    assert len(model.data) == n  # each product's one partner
    assert model.similar_items(10, 5)[0].tolist() == [11]


# --- the family registry and settings ------------------------------------------------------------------


def test_families_fit_by_name(tmp_path):
    settings = load_settings(
        environ={}, overrides={"db": tmp_path / "x.db", "ease": {"regularization": 2.0}, "itemgraph": {"neighbours": 3}}
    )
    from model_contract import contract_matrix

    matrix = contract_matrix()
    users, items = [f"u{i}" for i in range(12)], [f"p{i}" for i in range(8)]
    for name, cls, family in (
        ("ease", EASE, "ease"),
        ("rp3beta", ItemGraph, "itemgraph"),
        ("itemknn", ItemGraph, "itemgraph"),
    ):
        model = families.fit(name, matrix, users, items, settings)
        assert isinstance(model, cls) and model.family == family and family in FAMILIES
        model.save(tmp_path / name)
        assert isinstance(load_model(tmp_path / name), cls)
    assert load_model(tmp_path / "itemknn").method == "itemknn"
    assert set(families.FAMILY_NAMES) >= {"als", "ease", "rp3beta", "itemknn"}
    with pytest.raises(ConfigError, match="unknown model family"):
        families.fit("svd", matrix, users, items, settings)


@pytest.mark.parametrize(
    "overrides, fragment",
    [
        ({"ease": {"regularization": 0}}, "ease.regularization"),
        ({"ease": {"max_items": 0}}, "ease.max_items"),
        ({"itemgraph": {"method": "pagerank"}}, "itemgraph.method"),
        ({"itemgraph": {"neighbours": 0}}, "itemgraph.neighbours"),
        ({"itemgraph": {"beta": -1}}, "itemgraph.beta"),
    ],
)
def test_bad_family_settings_are_refused(tmp_path, overrides, fragment):
    with pytest.raises(ConfigError, match=fragment):
        load_settings(environ={}, overrides={"db": tmp_path / "x.db", **overrides})


def test_family_settings_from_the_environment(tmp_path):
    s = load_settings(
        environ={"RECOMMENDER_EASE_REGULARIZATION": "250", "RECOMMENDER_ITEMGRAPH_METHOD": "itemknn"},
        overrides={"db": tmp_path / "x.db"},
    )
    assert s.ease.regularization == 250.0 and s.itemgraph.method == "itemknn"


def test_a_blend_refuses_parts_of_different_shops():
    from model_contract import contract_matrix

    m = contract_matrix()
    a = EASE.fit(m, [f"u{i}" for i in range(12)], [f"p{i}" for i in range(8)], EASESettings())
    b = EASE.fit(m, [f"u{i}" for i in range(12)], [f"x{i}" for i in range(8)], EASESettings())
    with pytest.raises(ModelError, match="share"):
        Blend([a, b], [0.5, 0.5])
    with pytest.raises(ModelError, match="one weight per part"):
        Blend([a], [0.5, 0.5])


def test_a_blend_of_one_part_ranks_like_the_part(tmp_path):
    from model_contract import contract_matrix, row

    m = contract_matrix()
    part = EASE.fit(m, [f"u{i}" for i in range(12)], [f"p{i}" for i in range(8)], EASESettings(regularization=2.0))
    blend = Blend([part], [1.0])
    for u in range(12):
        items, conf = row(m, u)
        assert (
            blend.recommend(blend.fold_in(items, conf), 4, exclude=items)[0].tolist()
            == part.recommend(part.fold_in(items, conf), 4, exclude=items)[0].tolist()
        )
    blend.save(tmp_path / "b")
    manifest = load_model(tmp_path / "b").manifest
    assert manifest["family"] == "blend" and manifest["parts"][0]["family"] == "ease"
    assert set(manifest["checksums"]) >= {"part0__ease_weights.npy", "part0__ease_active.npy", "ids.json"}
