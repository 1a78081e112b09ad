"""New products get a place on day one: content features and the mapping learned at retrain.

A product nobody has bought has no row of item factors worth the name (ALS solves it to zero) and no
row or column in an item model, and a product imported after the last retrain is not in the model
at all. Both get a representation from their attributes (see docs/new-products.md):

- **content features** (:class:`Featuriser`): TF-IDF of the name and description (scikit-learn's
  ``TfidfVectorizer``, words and word pairs, sublinear tf), one-hot category and one-hot price band
  (quintiles of the log price of the products at retrain); each block L2-normalised and weighted
  (text 1, category :data:`CATEGORY_WEIGHT`, price band :data:`BAND_WEIGHT`), the row L2-normalised;
- **the mapping** (:class:`ContentMapping`), learned at retrain from the products that had
  interactions: for a factor model a ridge regression from content features to item factors
  (``sklearn.linear_model.Ridge``, intercept, ``alpha`` = :data:`RIDGE_ALPHA`); for an item model
  (EASE^R, item graph) the :data:`NEIGHBOURS` trained products nearest by content (cosine), whose
  rows and columns stand in for the missing ones, weighted by similarity; for a blend, per part.

The mapping is saved with the artifact as plain arrays (``content_*.npy``: the vectoriser's
vocabulary as a unicode array and its idf, the category names, the price band edges, the ridge
coefficients, the trained products' content rows as CSR arrays), never pickle, through
:meth:`recommender.models.base.Recommender.save`. :func:`extend` then gives any loaded model the
products it lacks: a :class:`ContentExtended` model scores, folds in, ranks and finds similar
products over the trained ones plus the cold ones, so every surface serves them without a retrain.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp
import sqlite_utils

from recommender import store
from recommender.errors import ModelError
from recommender.models.base import Recommender, as_index_array, top_k

# Text: words and word pairs of "name description", lowercased; rare terms kept (a new product's
# distinctive word is what finds its neighbours), the vocabulary capped.
NGRAMS = (1, 2)
MAX_FEATURES = 50_000
CATEGORY_WEIGHT = 0.6
BAND_WEIGHT = 0.3
PRICE_BANDS = 5
RIDGE_ALPHA = 1.0
NEIGHBOURS = 20  # trained products whose rows stand in for a cold product's in an item model
SIMILAR_POOL = 200  # how deep an item model's similar list is read to place cold products in it
FORMAT = 1


@dataclass(frozen=True)
class ProductText:
    """What the content features read of a product."""

    id: str
    name: str | None = None
    description: str | None = None
    category: str | None = None
    price: float | None = None

    @property
    def text(self) -> str:
        return " ".join(t for t in (self.name, self.description) if t)


_WORD = re.compile(r"[A-Za-z]{3,}")


def category_of(product: ProductText) -> str | None:
    """The product's category, else the last word of its name (how the cold-start baselines group products)."""
    if product.category:
        return product.category
    words = _WORD.findall(product.name or "")
    return words[-1].lower() if words else None


def _vectoriser(vocabulary: Mapping[str, int] | None = None):
    from sklearn.feature_extraction.text import TfidfVectorizer

    return TfidfVectorizer(
        ngram_range=NGRAMS, sublinear_tf=True, max_features=MAX_FEATURES, dtype=np.float32, vocabulary=vocabulary
    )


def _normalise_rows(m: sp.csr_matrix) -> sp.csr_matrix:
    m = sp.csr_matrix(m, dtype=np.float32)
    norms = np.sqrt(np.asarray(m.multiply(m).sum(axis=1)).ravel())
    norms[norms == 0] = 1.0
    return sp.csr_matrix(sp.diags(1.0 / norms) @ m, dtype=np.float32)


class Featuriser:
    """Products → content feature rows: TF-IDF text, one-hot category, one-hot price band."""

    def __init__(
        self, vocabulary: Sequence[str], idf: np.ndarray, categories: Sequence[str], price_edges: np.ndarray
    ) -> None:
        self.vocabulary = [str(t) for t in vocabulary]
        self.idf = np.asarray(idf, dtype=np.float64)
        self.categories = [str(c) for c in categories]
        self.category_index = {c: i for i, c in enumerate(self.categories)}
        self.price_edges = np.asarray(price_edges, dtype=np.float64)
        self._text = None
        if self.vocabulary:
            vec = _vectoriser({t: i for i, t in enumerate(self.vocabulary)})
            vec.idf_ = self.idf  # a fixed vocabulary and its idf: fitted without seeing text again
            self._text = vec

    @classmethod
    def fit(cls, products: Sequence[ProductText]) -> Featuriser:
        texts = [p.text for p in products]
        vocabulary: list[str] = []
        idf = np.zeros(0)
        if any(_WORD.search(t) or t.strip() for t in texts):
            vec = _vectoriser()
            try:
                vec.fit(texts)
                vocabulary = [t for t, _ in sorted(vec.vocabulary_.items(), key=lambda kv: kv[1])]
                idf = np.asarray(vec.idf_, dtype=np.float64)
            except ValueError:  # no word at all (every name a code)
                vocabulary, idf = [], np.zeros(0)
        categories = sorted({p.category for p in products if p.category})
        prices = np.array([p.price for p in products if p.price is not None and p.price > 0], dtype=np.float64)
        edges = (
            np.unique(np.quantile(np.log1p(prices), np.linspace(0, 1, PRICE_BANDS + 1)[1:-1]))
            if len(prices)
            else np.zeros(0)
        )
        return cls(vocabulary, idf, categories, edges)

    @property
    def width(self) -> int:
        return len(self.vocabulary) + len(self.categories) + len(self.price_edges) + 1

    def transform(self, products: Sequence[ProductText]) -> sp.csr_matrix:
        """One L2-normalised row per product (a product with nothing known is a zero row)."""
        n = len(products)
        blocks = []
        if self._text is not None:
            blocks.append(_normalise_rows(self._text.transform([p.text for p in products])))
        else:
            blocks.append(sp.csr_matrix((n, 0), dtype=np.float32))
        cats = [self.category_index.get(p.category) if p.category else None for p in products]
        rows = [i for i, c in enumerate(cats) if c is not None]
        blocks.append(
            sp.csr_matrix(
                (np.full(len(rows), CATEGORY_WEIGHT, np.float32), (rows, [cats[i] for i in rows])),
                shape=(n, len(self.categories)),
            )
        )
        priced = [i for i, p in enumerate(products) if p.price is not None and p.price > 0]
        bands = np.searchsorted(self.price_edges, np.log1p([products[i].price for i in priced]), side="right")
        blocks.append(
            sp.csr_matrix(
                (np.full(len(priced), BAND_WEIGHT, np.float32), (priced, bands)), shape=(n, len(self.price_edges) + 1)
            )
        )
        return _normalise_rows(sp.hstack(blocks, format="csr"))

    def arrays(self) -> dict[str, np.ndarray]:
        return {
            "vocabulary": np.array(self.vocabulary, dtype=str),
            "idf": self.idf.astype(np.float64),
            "categories": np.array(self.categories, dtype=str),
            "price_edges": self.price_edges,
        }

    @classmethod
    def from_arrays(cls, arrays: Mapping[str, np.ndarray]) -> Featuriser:
        return cls(
            arrays["vocabulary"].tolist(),
            np.asarray(arrays["idf"]),
            arrays["categories"].tolist(),
            np.asarray(arrays["price_edges"]),
        )


def _factor_kind(model: Recommender) -> bool:
    return hasattr(model, "item_factors") and hasattr(model, "user_factors")


def parts_of(model: Recommender) -> list[Recommender]:
    return list(getattr(model, "parts", None) or [model])


def ridge(features: sp.csr_matrix, targets: np.ndarray, alpha: float = RIDGE_ALPHA) -> tuple[np.ndarray, np.ndarray]:
    """``(coef (features × targets), intercept)`` of a ridge regression with intercept (sklearn's ``Ridge``)."""
    from sklearn.linear_model import Ridge

    fitted = Ridge(alpha=alpha, fit_intercept=True, solver="sparse_cg", tol=1e-8, max_iter=2000)
    fitted.fit(features, np.asarray(targets, dtype=np.float64))
    coef = np.atleast_2d(fitted.coef_).T.astype(np.float32)
    return coef, np.atleast_1d(fitted.intercept_).astype(np.float32)


class ContentMapping:
    """The featuriser, which trained products were cold, and one mapping per model part."""

    def __init__(
        self,
        featuriser: Featuriser,
        cold: np.ndarray,
        kinds: Sequence[str],
        ridges: Mapping[int, tuple[np.ndarray, np.ndarray]],
        anchors: sp.csr_matrix | None,
        anchor_items: np.ndarray | None,
        alpha: float = RIDGE_ALPHA,
    ) -> None:
        self.featuriser = featuriser
        self.cold = as_index_array(cold)
        self.kinds = list(kinds)
        self.ridges = dict(ridges)
        self.anchors = anchors
        self.anchor_items = None if anchor_items is None else as_index_array(anchor_items)
        self.alpha = float(alpha)

    @classmethod
    def fit(
        cls, model: Recommender, products: Mapping[str, ProductText], trained: np.ndarray, alpha: float = RIDGE_ALPHA
    ) -> ContentMapping:
        """Learn the mapping of ``model`` (fitted); ``trained[i]`` says item ``i`` had interactions in its data."""
        trained = np.asarray(trained, dtype=bool)
        if len(trained) != model.n_items:
            raise ModelError("trained flags do not match the model's items")
        texts = [products.get(p) or ProductText(p) for p in model.item_ids]
        featuriser = Featuriser.fit(texts)
        features = featuriser.transform(texts)
        warm = np.flatnonzero(trained)
        kinds, ridges = [], {}
        for k, part in enumerate(parts_of(model)):
            if _factor_kind(part):
                kinds.append("ridge")
                if len(warm):
                    ridges[k] = ridge(features[warm], np.asarray(part.item_factors)[warm], alpha)
                else:
                    f = int(np.asarray(part.item_factors).shape[1])
                    ridges[k] = (np.zeros((features.shape[1], f), np.float32), np.zeros(f, np.float32))
            else:
                kinds.append("neighbours")
        anchors = anchor_items = None
        if "neighbours" in kinds:
            anchors, anchor_items = features[warm], warm
        return cls(featuriser, np.flatnonzero(~trained), kinds, ridges, anchors, anchor_items, alpha)

    # --- persistence (as arrays; Recommender.save writes them as content_<name>.npy) --------------

    def arrays(self) -> dict[str, np.ndarray]:
        out = dict(self.featuriser.arrays())
        out["cold"] = self.cold
        for k, (coef, intercept) in self.ridges.items():
            out[f"part{k}_coef"] = coef
            out[f"part{k}_intercept"] = intercept
        if self.anchors is not None:
            a = sp.csr_matrix(self.anchors)
            out.update(
                anchor_indptr=a.indptr.astype(np.int64),
                anchor_indices=a.indices.astype(np.int32),
                anchor_data=a.data.astype(np.float32),
                anchor_items=self.anchor_items,
            )
        return out

    def fields(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "kinds": self.kinds,
            "alpha": self.alpha,
            "ngrams": list(NGRAMS),
            "width": self.featuriser.width,
        }

    @classmethod
    def from_arrays(cls, arrays: Mapping[str, np.ndarray], fields: Mapping[str, Any]) -> ContentMapping:
        if fields.get("format") != FORMAT:
            raise ModelError(f"unknown content mapping format {fields.get('format')!r}")
        featuriser = Featuriser.from_arrays(arrays)
        kinds = list(fields["kinds"])
        ridges = {
            k: (np.asarray(arrays[f"part{k}_coef"]), np.asarray(arrays[f"part{k}_intercept"]))
            for k, kind in enumerate(kinds)
            if kind == "ridge"
        }
        anchors = anchor_items = None
        if "anchor_indptr" in arrays:
            width = int(fields["width"])
            anchors = sp.csr_matrix(
                (
                    np.asarray(arrays["anchor_data"]),
                    np.asarray(arrays["anchor_indices"]),
                    np.asarray(arrays["anchor_indptr"]),
                ),
                shape=(len(arrays["anchor_indptr"]) - 1, width),
            )
            anchor_items = np.asarray(arrays["anchor_items"])
        return cls(
            featuriser,
            np.asarray(arrays["cold"]),
            kinds,
            ridges,
            anchors,
            anchor_items,
            float(fields.get("alpha", RIDGE_ALPHA)),
        )

    def attach(self, model: Recommender) -> None:
        """Make the mapping part of ``model``'s artifact (saved with it, loaded with it)."""
        model.content_arrays = self.arrays()  # type: ignore[attr-defined]
        model.manifest["content"] = self.fields()

    @classmethod
    def of(cls, model: Recommender) -> ContentMapping | None:
        """The mapping saved with ``model`` (None for artifacts made before it)."""
        cached = getattr(model, "_content_mapping", None)
        if cached is not None:
            return cached
        arrays = getattr(model, "content_arrays", None)
        fields = model.manifest.get("content")
        if not arrays or not fields:
            return None
        mapping = cls.from_arrays(arrays, fields)
        model._content_mapping = mapping  # type: ignore[attr-defined]
        return mapping

    # --- representations ---------------------------------------------------------------------

    def predict_factors(self, part: int, features: sp.csr_matrix) -> np.ndarray:
        coef, intercept = self.ridges[part]
        return np.asarray(features @ coef, dtype=np.float32) + intercept

    def neighbours(self, features: sp.csr_matrix, n_items: int, k: int = NEIGHBOURS) -> sp.csr_matrix:
        """Rows over the model's items: each cold product's ``k`` nearest trained products, weights summing to 1."""
        if self.anchors is None or self.anchors.shape[0] == 0 or features.shape[0] == 0:
            return sp.csr_matrix((features.shape[0], n_items), dtype=np.float32)
        sims = (features @ self.anchors.T).toarray()
        rows, cols, vals = [], [], []
        for r in range(sims.shape[0]):
            top = top_k(np.where(sims[r] > 0, sims[r], -np.inf), k)
            if len(top):
                w = sims[r, top]
                rows.extend([r] * len(top))
                cols.extend(self.anchor_items[top].tolist())
                vals.extend((w / w.sum()).tolist())
        return sp.csr_matrix((np.asarray(vals, np.float32), (rows, cols)), shape=(features.shape[0], n_items))


def extend(
    model: Recommender, new_products: Sequence[ProductText] = (), base_products: Mapping[str, ProductText] | None = None
) -> Recommender:
    """``model`` with a representation for its cold products and for ``new_products`` (appended to its items).

    The cold products of the model are those without interactions in its training data; their
    content is read from ``base_products`` (id → text; those missing there keep the model's own
    rows). A model saved without a mapping is returned as it is.
    """
    mapping = ContentMapping.of(model)
    if mapping is None:
        return model
    new_products = [p for p in new_products if p.id not in model.item_index]
    base_products = base_products or {}
    cold_base = [int(i) for i in mapping.cold if model.item_ids[int(i)] in base_products]
    texts = [base_products[model.item_ids[i]] for i in cold_base] + list(new_products)
    features = mapping.featuriser.transform(texts) if texts else sp.csr_matrix((0, mapping.featuriser.width))
    item_ids = list(model.item_ids) + [p.id for p in new_products]
    cold = np.array(cold_base + list(range(model.n_items, model.n_items + len(new_products))), dtype=np.int64)
    parts = parts_of(model)
    extended = []
    for k, part in enumerate(parts):
        kind = mapping.kinds[k] if k < len(mapping.kinds) else "neighbours"
        rep = (
            mapping.predict_factors(k, features)
            if kind == "ridge" and k in mapping.ridges
            else mapping.neighbours(features, model.n_items)
        )
        extended.append(ContentExtended(part, item_ids, cold, rep, features, mapping))
    signals = {name: _pad(np.asarray(a), len(item_ids)) for name, a in model.signals.items()}
    if len(parts) == 1 and parts[0] is model:
        out = extended[0]
        out.signals = signals
        return out
    blend = type(model)(extended, list(model.weights), depth=model.depth, manifest=model.manifest, signals=signals)
    blend.cold_items = cold  # type: ignore[attr-defined]
    return blend


def _pad(array: np.ndarray, n: int) -> np.ndarray:
    if array.shape[0] >= n:
        return array
    fill = -1 if np.issubdtype(array.dtype, np.integer) else 0
    pad = np.full((n - array.shape[0], *array.shape[1:]), fill, dtype=array.dtype)
    return np.concatenate([array, pad])


def cold_items(model: Recommender) -> np.ndarray:
    """Item indices of a served model whose representation comes from content (empty when none)."""
    return np.asarray(getattr(model, "cold_items", np.zeros(0, np.int64)), dtype=np.int64)


class ContentExtended(Recommender):
    """A trained model plus its cold products, represented through the content mapping.

    ``rep`` is, per cold product (in ``cold`` order), a predicted factor row (a factor model's
    part) or a row of weights over the trained products (an item model's part). Trained
    products are ranked by the model itself; cold ones by their representation; the two are
    merged exactly (a list's top n is the top n of both tops). Never saved: it is made from
    an artifact and the catalogue, in each worker.
    """

    family = "content"

    def __init__(
        self,
        base: Recommender,
        item_ids: list[str],
        cold: np.ndarray,
        rep: Any,
        features: sp.csr_matrix,
        mapping: ContentMapping,
    ) -> None:
        super().__init__(base.user_ids, item_ids, base.manifest, {})
        self.user_index = base.user_index
        self.base = base
        self.n_base = base.n_items
        self.cold_items = as_index_array(cold)
        self.rep = rep
        self.features = features
        self.mapping = mapping
        self.ridge = not sp.issparse(rep)
        self.cold_mask = np.zeros(len(item_ids), dtype=bool)
        self.cold_mask[self.cold_items] = True
        self.cold_row = np.full(len(item_ids), -1, dtype=np.int64)
        self.cold_row[self.cold_items] = np.arange(len(self.cold_items))
        self._warm_base = ~self.cold_mask[: self.n_base]
        self._warm_base.flags.writeable = False
        self._allow_memo: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        self._unit: np.ndarray | None = None

    @property
    def version(self) -> str | None:
        return self.base.version

    def __getattr__(self, name: str) -> Any:  # user_vector, regularization, ann settings, ... of the base
        if name in ("base", "__setstate__"):
            raise AttributeError(name)
        return getattr(self.base, name)

    # --- helpers ----------------------------------------------------------------------------

    def _base_allow(self, allow: np.ndarray | None) -> np.ndarray:
        """The trained products ``allow`` lets through (cold ones are ranked by content), kept per mask."""
        if allow is None:
            return self._warm_base
        hit = self._allow_memo.get(id(allow))
        if hit is not None and hit[0] is allow:
            return hit[1]
        out = np.asarray(allow[: self.n_base]) & self._warm_base
        out.flags.writeable = False
        if not allow.flags.writeable:  # the catalogue's cached masks: keep what is derived from them
            if len(self._allow_memo) > 64:
                self._allow_memo.clear()
            self._allow_memo[id(allow)] = (allow, out)
        return out

    def _cold_scores(self, state: Any, base_scores: np.ndarray | None = None) -> np.ndarray:
        if len(self.cold_items) == 0:
            return np.zeros(0, dtype=np.float32)
        if self.ridge:
            return self.rep @ np.asarray(state, dtype=np.float32)
        if base_scores is None:
            base_scores = self.base.score(state)
        return np.asarray(self.rep @ np.asarray(base_scores, dtype=np.float32)).ravel()

    def _rows(self, items: np.ndarray) -> np.ndarray:
        """Factor rows of extended items (ridge parts)."""
        items = as_index_array(items)
        out = np.zeros((len(items), self.rep.shape[1]), dtype=np.float64)
        cold = self.cold_row[items]
        warm = cold < 0
        out[warm] = np.asarray(self.base.item_factors)[items[warm]]
        out[~warm] = self.rep[cold[~warm]]
        return out

    # --- the model interface ---------------------------------------------------------------

    def fold_in(self, items: np.ndarray, confidences: np.ndarray) -> Any | None:
        items = as_index_array(items)
        conf = np.asarray(confidences, dtype=np.float64)
        if len(items) == 0:
            return None
        cold = self.cold_mask[items]
        if not cold.any():
            return self.base.fold_in(items, conf)
        if self.ridge:
            y = self._rows(items)
            a = self.base.yty_regularized + (y.T * (conf - 1.0)) @ y
            b = (y.T * conf).sum(axis=1)
            vector = np.linalg.solve(a, b).astype(np.float32)
            return vector if np.any(vector) else None
        # an item model: a cold product in the history counts as its content neighbours
        spread = self.rep[self.cold_row[items[cold]]].multiply(conf[cold][:, None]).tocsr()
        spread.sum_duplicates()
        extra = np.asarray(spread.sum(axis=0)).ravel()
        nz = np.flatnonzero(extra)
        warm_items = np.concatenate([items[~cold], nz])
        warm_conf = np.concatenate([conf[~cold], extra[nz]])
        return self.base.fold_in(warm_items, warm_conf) if len(warm_items) else None

    def score(self, state: Any, items: np.ndarray | None = None) -> np.ndarray:
        base_scores = np.asarray(self.base.score(state), dtype=np.float32)
        full = np.zeros(self.n_items, dtype=np.float32)
        full[: self.n_base] = base_scores
        full[self.cold_items] = self._cold_scores(state, base_scores)
        return full if items is None else full[as_index_array(items)]

    def recommend(
        self, state: Any, n: int = 10, *, exclude: Iterable[int] = (), allow: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        banned = as_index_array(exclude)
        top, scores = self.base.recommend(state, n, exclude=banned[banned < self.n_base], allow=self._base_allow(allow))
        if len(self.cold_items) == 0:
            return top, scores
        cold_scores = np.asarray(self._cold_scores(state), dtype=np.float64).copy()
        if allow is not None:
            cold_scores[~np.asarray(allow)[self.cold_items]] = -np.inf
        if len(banned):
            rows = self.cold_row[banned]
            cold_scores[rows[rows >= 0]] = -np.inf
        best = top_k(cold_scores, n)
        items = np.concatenate([as_index_array(top), self.cold_items[best]])
        values = np.concatenate([np.asarray(scores, dtype=np.float64), cold_scores[best]])
        order = np.lexsort((items, -values))[:n]
        return items[order], values[order].astype(np.float32)

    def _unit_factors(self) -> np.ndarray:
        if self._unit is None:
            y = np.asarray(self.base.item_factors, dtype=np.float32).copy()
            y[self.cold_items[self.cold_items < self.n_base]] = 0.0  # ranked by their content rows instead
            y = np.concatenate([y, np.zeros((self.n_items - self.n_base, y.shape[1]), np.float32)])
            y[self.cold_items] = self.rep
            norms = np.linalg.norm(y, axis=1)
            norms[norms == 0] = 1.0
            self._unit = y / norms[:, None]
        return self._unit

    def similar_items(
        self, item_index: int, n: int = 10, *, allow: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        item_index = int(item_index)
        if self.ridge:
            if not self.cold_mask[item_index]:
                top, scores = self.base.similar_items(item_index, n, allow=self._base_allow(allow))
                unit = self._unit_factors()
                cold_scores = (unit[self.cold_items] @ unit[item_index]).astype(np.float64)
            else:
                unit = self._unit_factors()
                sims = (unit @ unit[item_index]).astype(np.float64)
                sims[item_index] = -np.inf
                if allow is not None:
                    sims[~np.asarray(allow)] = -np.inf
                best = top_k(sims, n)
                return best, sims[best].astype(np.float32)
        else:
            if not self.cold_mask[item_index]:
                top, scores = self.base.similar_items(item_index, n, allow=self._base_allow(allow))
                pool, pool_scores = self.base.similar_items(item_index, max(SIMILAR_POOL, n))
                vector = np.zeros(self.n_base, dtype=np.float32)
                vector[pool] = pool_scores
                cold_scores = np.asarray(self.rep @ vector, dtype=np.float64).ravel()
            else:
                # a cold product: its nearest products by content (cosine over TF-IDF, category, price band)
                mine = self.features[self.cold_row[item_index]]
                sims = np.full(self.n_items, -np.inf)
                if self.mapping.anchors is not None and self.mapping.anchors.shape[0]:
                    sims[self.mapping.anchor_items] = (self.mapping.anchors @ mine.T).toarray().ravel()
                sims[self.cold_items] = (self.features @ mine.T).toarray().ravel()
                sims[item_index] = -np.inf
                sims[sims <= 0] = -np.inf
                if allow is not None:
                    sims[~np.asarray(allow)] = -np.inf
                best = top_k(sims, n)
                return best, sims[best].astype(np.float32)
        if allow is not None:
            cold_scores[~np.asarray(allow)[self.cold_items]] = -np.inf
        cold_scores[cold_scores <= 0] = -np.inf
        best = top_k(cold_scores, n)
        items = np.concatenate([as_index_array(top), self.cold_items[best]])
        values = np.concatenate([np.asarray(scores, dtype=np.float64), cold_scores[best]])
        order = np.lexsort((items, -values))[:n]
        return items[order], values[order].astype(np.float32)

    def explain(
        self, items: np.ndarray, confidences: np.ndarray, item_index: int, n: int = 3
    ) -> list[tuple[int, float]]:
        items = as_index_array(items)
        conf = np.asarray(confidences, dtype=np.float64)
        if self.ridge:  # the factor model's exact decomposition, over trained and cold rows alike
            if len(items) == 0:
                return []
            y = self._rows(items)
            a = self.base.yty_regularized + (y.T * (conf - 1.0)) @ y
            weights = np.linalg.solve(a, self._rows(np.array([item_index]))[0])
            contrib = conf * (y @ weights)
            order = np.argsort(-contrib)[:n]
            return [(int(items[j]), float(contrib[j])) for j in order if contrib[j] > 0]
        warm = ~self.cold_mask[items]
        if self.cold_mask[item_index]:
            return []
        return self.base.explain(items[warm], conf[warm], item_index, n)

    def batch_scores(self, users: np.ndarray, history: sp.csr_matrix) -> np.ndarray:
        history = sp.csr_matrix(history)[:, : self.n_base]
        base_scores = np.asarray(self.base.batch_scores(users, history), dtype=np.float32)
        out = np.zeros((base_scores.shape[0], self.n_items), dtype=np.float32)
        out[:, : self.n_base] = base_scores
        if len(self.cold_items):
            if self.ridge:
                cold = np.asarray(self.base.user_factors)[users] @ self.rep.T
            else:
                cold = np.asarray((self.rep @ base_scores.T).T)
            out[:, self.cold_items] = cold
        return out

    def batch_recommend(self, users: np.ndarray, history: sp.csr_matrix, k: int, block: int = 2048) -> np.ndarray:
        block = max(16, min(block, (1 << 25) // max(self.n_items, 1)))
        return super().batch_recommend(users, history, k, block=block)

    def health(self, trained_users: np.ndarray, trained_items: np.ndarray) -> dict[str, float]:
        return self.base.health(trained_users, trained_items)

    def warm_up(self) -> None:
        self.base.warm_up()

    def arrays(self) -> dict[str, np.ndarray]:
        raise ModelError("a model extended with new products is made in each worker and never saved")

    @classmethod
    def from_arrays(cls, arrays, user_ids, item_ids, manifest, signals):  # pragma: no cover - never saved
        raise ModelError("a model extended with new products is never loaded from an artifact")


def database_texts(db: sqlite_utils.Database) -> dict[str, ProductText]:
    """Every product's content as the store holds it."""
    return {r[0]: ProductText(*r) for r in store.product_texts(db)}


def trained_items(matrix: sp.spmatrix) -> np.ndarray:
    """Per item, whether the matrix the model was fitted on has an interaction with it."""
    return np.diff(sp.csc_matrix(matrix).indptr) > 0


def attach_mapping(
    db: sqlite_utils.Database, model: Recommender, matrix: sp.spmatrix, texts: Mapping[str, ProductText] | None = None
) -> ContentMapping:
    """Learn ``model``'s content mapping on ``matrix`` (what it was fitted on) and save it with the model."""
    mapping = ContentMapping.fit(model, texts if texts is not None else database_texts(db), trained_items(matrix))
    mapping.attach(model)
    model._content_mapping = mapping  # type: ignore[attr-defined]
    return mapping
