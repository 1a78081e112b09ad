"""New products: the content mapping at retrain, and the cold-start evaluation (docs/new-products.md).

:func:`attach_mapping` learns the mapping from content to the model's item representation on the
data the model was fitted on (the products with interactions) and makes it part of the artifact.

:func:`evaluate` is ``recommender coldstart evaluate``: the protocol of ``recommender evaluate``
(the same temporal split, the same recipe, the same test customers) plus the products **first sold
in the test period** (no interaction before the cut), which the model never saw:

- *new products, for their buyers*: the customers with history before the cut who bought at least
  one of them after it; each method ranks the new products (the pool a shop's "new arrivals" shelf
  draws from) and is scored on the new products the customer bought (recall, NDCG at k):
  the **content mapping** (the model's score of each new product through its content
  representation), **newest in the category** (the customer's categories by how many of their
  products fell in them, newest first within them, by first sale) and **random in the category**
  (the same categories, random order within them, seeded);
- *overall*: NDCG@k of the personal lists of ``recommender evaluate``'s test customers, the model
  alone (new products cannot appear), with the content mapping (new products compete on their
  score) and with the mapping plus the exploration share (``serve.new_product_share``), each with
  its standard error.

A product's category is its ``category``; without one (an order export has none), the last word of
its name ("... T-LIGHT HOLDER" → ``holder``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import scipy.sparse as sp
import sqlite_utils

from recommender.config import Settings
from recommender.errors import ValidationError
from recommender.models import content
from recommender.models.base import Recommender, top_k
from recommender.training import evaluation

Log = Callable[[str], None]


def _quiet(_: str) -> None:
    pass


product_texts = content.database_texts
trained_items = content.trained_items
attach_mapping = content.attach_mapping


def _top_in_pool(scores: np.ndarray, pool: np.ndarray, k: int) -> np.ndarray:
    out = np.full((scores.shape[0], k), -1, dtype=np.int64)
    for r in range(scores.shape[0]):
        best = top_k(np.asarray(scores[r], dtype=np.float64), k)
        out[r, : len(best)] = pool[best]
    return out


def _scores(model: Recommender, users: np.ndarray, history: sp.csr_matrix, block: int = 512) -> np.ndarray:
    return (
        np.vstack(
            [
                np.asarray(model.batch_scores(users[s : s + block], history[s : s + block]), dtype=np.float32)
                for s in range(0, len(users), block)
            ]
        )
        if len(users)
        else np.zeros((0, model.n_items))
    )


def _explore(
    top: np.ndarray,
    scores: np.ndarray,
    eligible: np.ndarray,
    seen: sp.csr_matrix,
    share: float,
    rng: np.random.Generator,
) -> np.ndarray:
    """The served rule of :class:`recommender.serving.newproducts.Exploration` on batch lists (last slots)."""
    k = top.shape[1]
    out = top.copy()
    expected = share * k
    whole = int(np.floor(expected))
    for r in range(top.shape[0]):
        slots = whole + int(rng.random() < expected - whole)
        slots -= int(np.isin(top[r], eligible).sum())
        if slots <= 0:
            continue
        own = seen.indices[seen.indptr[r] : seen.indptr[r + 1]]
        cand = eligible[~np.isin(eligible, np.concatenate([own, top[r]]))]
        if not len(cand):
            continue
        picks = cand[np.lexsort((cand, -scores[r, cand]))[:slots]]
        for j, pick in enumerate(picks):
            out[r, k - 1 - j] = pick
    return out


def evaluate(db: sqlite_utils.Database, settings: Settings, *, log: Log = _quiet, seed: int = 7) -> dict[str, Any]:
    """The cold-start table: new products for their buyers, and the overall NDCG of personal lists."""
    from recommender.training import run

    data = run.load_data(db, settings)
    result = run.evaluate_selected(db, settings, data=data, log=log, select=False)
    fitted, split = result.model, result.split
    k = settings.evaluation.k
    texts = product_texts(db)
    trained = trained_items(split.train)
    mapping = content.ContentMapping.fit(fitted, texts, trained)
    mapping.attach(fitted)
    fitted._content_mapping = mapping  # type: ignore[attr-defined]
    extended = content.extend(fitted, (), base_products=texts)
    n_items = fitted.n_items
    first = np.full(n_items, np.iinfo(np.int64).max, dtype=np.int64)
    np.minimum.at(first, data.item, data.time)
    new = np.flatnonzero(~trained & (first >= split.cut_time) & (first < np.iinfo(np.int64).max))
    if not len(new):
        raise ValidationError("no product was first sold in the test period: nothing to evaluate for new products")
    log(
        f"{len(new):,} products first sold in the test period; content mapping: "
        f"{', '.join(mapping.kinds)} over {mapping.featuriser.width:,} content features"
    )

    # --- new products, for their buyers -----------------------------------------------------
    is_new = np.zeros(n_items, dtype=bool)
    is_new[new] = True
    rel = split.relevant.tocoo()
    keep = is_new[rel.col]
    relevant_new = sp.csr_matrix((rel.data[keep], (rel.row[keep], rel.col[keep])), shape=split.relevant.shape)
    has_history = np.diff(split.train.indptr) > 0
    buyers = np.flatnonzero(has_history & (np.diff(relevant_new.indptr) > 0))
    history = split.train[buyers]
    scores = _scores(extended, buyers, history)
    content_top = _top_in_pool(scores[:, new], new, k)
    item_ids = fitted.item_ids
    cats = [content.category_of(texts.get(p) or content.ProductText(p)) for p in item_ids]
    codes: dict[str | None, int] = {}
    cat = np.array([codes.setdefault(c, len(codes)) for c in cats], dtype=np.int64)
    newest_rank = np.argsort(np.argsort(first[new], kind="stable"), kind="stable").astype(np.float64)
    newest_rank /= max(len(new), 1)  # 0 = the oldest new product, ~1 = the newest
    rng = np.random.default_rng(seed)
    newest_top = np.full((len(buyers), k), -1, dtype=np.int64)
    random_top = np.full((len(buyers), k), -1, dtype=np.int64)
    for r in range(len(buyers)):
        own = history.indices[history.indptr[r] : history.indptr[r + 1]]
        weight = np.bincount(cat[own], minlength=len(codes)).astype(np.float64)
        share = weight[cat[new]]
        newest_top[r] = new[np.lexsort((new, -newest_rank, -share))[:k]]
        random_top[r] = new[np.lexsort((rng.random(len(new)), -share))[:k]]
    full_base = fitted.batch_recommend(buyers, history, k)
    full_ext = extended.batch_recommend(buyers, history, k)
    share_setting = settings.serve.new_product_share
    explored = _explore(full_ext, scores, new, history, share_setting, np.random.default_rng(seed))

    def row(top: np.ndarray) -> dict[str, float]:
        m = evaluation.ranking_metrics(top, relevant_new, buyers, k)
        per = evaluation.per_user_ndcg(top, relevant_new, buyers, k)
        return {
            "recall": round(m["recall"], 6),
            "ndcg": round(m["ndcg"], 6),
            "ndcg_se": round(float(per.std(ddof=1) / np.sqrt(len(per))) if len(per) > 1 else 0.0, 6),
        }

    new_rows = {
        "content_mapping": row(content_top),
        "newest_in_category": row(newest_top),
        "random_in_category": row(random_top),
        "personal_list_model": row(full_base),
        "personal_list_content": row(full_ext),
        "personal_list_content_explore": row(explored),
    }

    # --- overall: the personal lists of `recommender evaluate`'s customers ------------------------
    users = split.users
    seen = split.train[users]
    base_top = fitted.batch_recommend(users, seen, k)
    ext_top = extended.batch_recommend(users, seen, k)
    ext_scores = _scores(extended, users, seen)
    explore_top = _explore(
        ext_top, ext_scores, np.flatnonzero(~trained), seen, share_setting, np.random.default_rng(seed)
    )

    def overall(top: np.ndarray) -> dict[str, float]:
        s = evaluation.score_lists(top, split, k, n_items)
        return {
            "ndcg": round(s.metrics["ndcg"], 6),
            "ndcg_se": round(s.ndcg_se, 6),
            "recall": round(s.metrics["recall"], 6),
            "coverage": round(s.coverage, 6),
            "new_product_share": round(float(np.isin(top, new).mean()), 6),
        }

    overall_rows = {"model": overall(base_top), "content": overall(ext_top), "content_explore": overall(explore_top)}
    return {
        "k": k,
        "cut_time": int(split.cut_time),
        "recipe": result.payload.get("params", {}).get("family", "als"),
        "new_products": len(new),
        "buyers": len(buyers),
        "customers": len(users),
        "mapping": {
            "kinds": mapping.kinds,
            "features": int(mapping.featuriser.width),
            "vocabulary": len(mapping.featuriser.vocabulary),
            "categories": len(mapping.featuriser.categories),
            "price_bands": int(len(mapping.featuriser.price_edges) + 1),
            "ridge_alpha": mapping.alpha,
        },
        "exploration_share": share_setting,
        "new": new_rows,
        "overall": overall_rows,
    }


def table(payload: dict[str, Any]) -> str:
    """The two tables as text."""
    k = payload["k"]
    lines = [
        f"products first sold in the test period: {payload['new_products']:,}; "
        f"their buyers with history: {payload['buyers']:,} (recipe {payload['recipe']})",
        "",
        f"new products, for their buyers        recall@{k}   NDCG@{k} (± se)",
    ]
    names = {
        "content_mapping": "content mapping (new products)",
        "newest_in_category": "newest in the category",
        "random_in_category": "random in the category",
        "personal_list_model": "personal list, model alone",
        "personal_list_content": "personal list, with content",
        "personal_list_content_explore": "personal list, content + explore",
    }
    for key, name in names.items():
        r = payload["new"][key]
        lines.append(f"  {name:<36} {r['recall']:.4f}    {r['ndcg']:.4f} (± {r['ndcg_se']:.4f})")
    lines += ["", f"overall personal lists ({payload['customers']:,} customers)   NDCG@{k} (± se)   share of slots new"]
    for key, name in (
        ("model", "model alone"),
        ("content", "with content mapping"),
        ("content_explore", f"with content + explore {payload['exploration_share']:g}"),
    ):
        r = payload["overall"][key]
        lines.append(f"  {name:<36} {r['ndcg']:.4f} (± {r['ndcg_se']:.4f})   {r['new_product_share']:.4f}")
    return "\n".join(lines)
