"""The behaviour every model family owes the server, the campaigns and the evaluation (one suite for all).

Like ``implicit``'s ``RecommenderBaseTestMixin``: a subclass provides
``make_model(matrix, user_ids, item_ids)`` and the same tests run on a tiny
known matrix. The matrix has two clusters of customers and products (A: products
0-3, B: products 4-7) joined by two bridging customers, and confidences drawn
from a seeded generator so that no two scores tie by accident.
"""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from recommender.errors import ModelError
from recommender.models.base import Recommender, load_model

N_USERS, N_ITEMS = 12, 8
CLUSTER_A, CLUSTER_B = (0, 1, 2, 3), (4, 5, 6, 7)


def contract_matrix() -> sp.csr_matrix:
    rng = np.random.default_rng(3)
    dense = np.zeros((N_USERS, N_ITEMS), dtype=np.float32)
    for u in range(N_USERS):
        cluster = CLUSTER_A if u < 6 else CLUSTER_B
        for i in rng.choice(cluster, size=3, replace=False):
            dense[u, i] = 1.0 + 4.0 * rng.random()
    dense[5, 4] = 1.5  # bridges between the clusters
    dense[11, 3] = 1.25
    return sp.csr_matrix(dense)


def row(matrix: sp.csr_matrix, u: int) -> tuple[np.ndarray, np.ndarray]:
    lo, hi = matrix.indptr[u], matrix.indptr[u + 1]
    return matrix.indices[lo:hi].astype(np.int64), matrix.data[lo:hi].astype(np.float32)


class RecommenderContract:
    """Mix into a test class; implement :meth:`make_model`."""

    def make_model(self, matrix: sp.csr_matrix, user_ids: list[str], item_ids: list[str]) -> Recommender:
        raise NotImplementedError

    def training_state(self, model: Recommender, u: int, items: np.ndarray, conf: np.ndarray):
        """The state the model itself uses for training row ``u`` in :meth:`batch_recommend`."""
        return model.fold_in(items, conf)

    @pytest.fixture
    def matrix(self) -> sp.csr_matrix:
        return contract_matrix()

    @pytest.fixture
    def model(self, matrix) -> Recommender:
        return self.make_model(matrix, [f"u{u}" for u in range(N_USERS)], [f"p{i}" for i in range(N_ITEMS)])

    # --- recommend ----------------------------------------------------------------------

    def test_recommend_returns_n_items_never_excluded_ones(self, model, matrix):
        for u in range(N_USERS):
            items, conf = row(matrix, u)
            state = model.fold_in(items, conf)
            assert state is not None
            banned = np.concatenate([items, [(u + 1) % N_ITEMS]])
            top, scores = model.recommend(state, 3, exclude=banned)
            assert len(top) == 3 and len(set(top.tolist())) == 3
            assert not set(top.tolist()) & set(banned.tolist())
            assert list(scores) == sorted(scores, reverse=True)

    def test_recommend_respects_allow(self, model, matrix):
        allow = np.zeros(N_ITEMS, dtype=bool)
        allow[[1, 5, 6]] = True
        for u in range(N_USERS):
            items, conf = row(matrix, u)
            top, _ = model.recommend(model.fold_in(items, conf), 3, allow=allow)
            assert set(top.tolist()) == {1, 5, 6}  # exactly the allowed ones: fewer than n only when fewer allowed
            two, _ = model.recommend(model.fold_in(items, conf), 5, exclude=[5], allow=allow)
            assert set(two.tolist()) == {1, 6}

    # --- similar and explain ------------------------------------------------------------------

    def test_similar_never_returns_the_item_and_respects_allow(self, model):
        allow = np.ones(N_ITEMS, dtype=bool)
        allow[[2, 6]] = False
        for i in range(N_ITEMS):
            top, scores = model.similar_items(i, 3)
            assert 0 < len(top) <= 3 and i not in top.tolist()
            assert list(scores) == sorted(scores, reverse=True)
            allowed, _ = model.similar_items(i, 3, allow=allow)
            assert i not in allowed.tolist() and not {2, 6} & set(allowed.tolist())

    def test_similar_items_stay_in_their_cluster(self, model):
        # Cluster A's products are bought together, never with B's (but through one bridge).
        top, _ = model.similar_items(0, 1)
        assert top[0] in CLUSTER_A
        top, _ = model.similar_items(7, 1)
        assert top[0] in CLUSTER_B

    def test_explain_names_only_the_customers_own_items(self, model, matrix):
        explained = 0
        for u in range(N_USERS):
            items, conf = row(matrix, u)
            top, _ = model.recommend(model.fold_in(items, conf), 3, exclude=items)
            for i in top:
                reasons = model.explain(items, conf, int(i), n=2)
                assert len(reasons) <= 2
                assert {j for j, _ in reasons} <= set(items.tolist())
                weights = [w for _, w in reasons]
                assert all(w > 0 for w in weights) and weights == sorted(weights, reverse=True)
                explained += bool(reasons)
        assert explained >= N_USERS  # most recommendations have a reason

    # --- fold-in ---------------------------------------------------------------------------------

    def test_a_new_event_changes_the_next_list(self, model, matrix):
        items, conf = row(matrix, 0)  # a cluster-A customer
        assert set(items.tolist()) <= set(CLUSTER_A)
        exclude = np.concatenate([items, [4, 5]])
        before, before_scores = model.recommend(model.fold_in(items, conf), 3, exclude=exclude)
        more_items = np.concatenate([items, [4, 5]])
        more_conf = np.concatenate([conf, [20.0, 20.0]]).astype(np.float32)
        after, after_scores = model.recommend(model.fold_in(more_items, more_conf), 3, exclude=exclude)
        assert (before.tolist(), before_scores.tolist()) != (after.tolist(), after_scores.tolist())
        # Left to choose from: product 2 (its own cluster) and 6, 7; heavy buying in B puts B first.
        assert before[0] in CLUSTER_A and after[0] in CLUSTER_B

    # --- evaluation --------------------------------------------------------------------------------

    def test_batch_recommend_equals_recommend_on_training_rows(self, model, matrix):
        users = np.arange(N_USERS)
        batch = model.batch_recommend(users, matrix, 4)
        for u in users:
            items, conf = row(matrix, u)
            top, _ = model.recommend(self.training_state(model, u, items, conf), 4, exclude=items)
            assert batch[u][batch[u] >= 0].tolist() == top.tolist(), u

    # --- persistence ---------------------------------------------------------------------------------

    def test_save_load_gives_identical_lists_and_scores(self, model, matrix, tmp_path):
        model.save(tmp_path / "m")
        loaded = load_model(tmp_path / "m")
        assert type(loaded) is type(model) and loaded.family == model.family
        assert loaded.item_ids == model.item_ids and loaded.user_ids == model.user_ids
        for u in range(N_USERS):
            items, conf = row(matrix, u)
            a = model.recommend(model.fold_in(items, conf), 5, exclude=items)
            b = loaded.recommend(loaded.fold_in(items, conf), 5, exclude=items)
            assert a[0].tolist() == b[0].tolist()
            np.testing.assert_allclose(a[1], b[1], rtol=1e-6)
            np.testing.assert_allclose(
                model.score(model.fold_in(items, conf)), loaded.score(loaded.fold_in(items, conf)), rtol=1e-6, atol=1e-7
            )
        for i in range(N_ITEMS):
            assert model.similar_items(i, 3)[0].tolist() == loaded.similar_items(i, 3)[0].tolist()
        users = np.arange(N_USERS)
        assert np.array_equal(model.batch_recommend(users, matrix, 3), loaded.batch_recommend(users, matrix, 3))

    def test_a_corrupted_array_file_is_refused_on_load(self, model, tmp_path):
        model.save(tmp_path / "m")
        name = sorted(model.arrays())[0]
        path = tmp_path / "m" / f"{name}.npy"
        data = bytearray(path.read_bytes())
        data[-1] ^= 0xFF
        path.write_bytes(bytes(data))
        with pytest.raises(ModelError, match="checksum"):
            load_model(tmp_path / "m")

    def test_erased_customers_leave_the_artifact(self, model, matrix, tmp_path):
        keep = np.ones(N_USERS, dtype=bool)
        keep[[2, 9]] = False
        model.drop_users(keep)
        model.save(tmp_path / "m")
        loaded = load_model(tmp_path / "m")
        assert loaded.user_ids == [f"u{u}" for u in range(N_USERS) if u not in (2, 9)]
        items, conf = row(matrix, 0)
        top, _ = loaded.recommend(loaded.fold_in(items, conf), 3, exclude=items)
        assert len(top) == 3
