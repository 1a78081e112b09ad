"""The history on the cluster: an export's events turned into splits, confidences and scores by Spark.

With ``train --engine spark --interactions PATH`` no event passes through the
driver. The executors read the export and apply, as DataFrame expressions,
the rules the driver path applies with numpy:

* consent: only customers whose ``personalization`` consent is granted *now*
  (the driver sends the list from the consents table, never the events), so a
  withdrawal or erasure since the export is honoured before anything is fitted;
* time: events dated after the read plus ``time.max_future_seconds`` are left
  out and counted (:func:`recommender.data.interactions.load`);
* weights: event-type weight × quantity from tonight's settings;
* the split: the cut is the "higher" quantile of event time, computed exactly
  (:func:`cut_time`), as :func:`recommender.training.evaluation.temporal_split` does;
* confidences: decayed sums per pair, decay counted from the cut for the
  split's past and from min(newest event, read time) for the full fit
  (:class:`recommender.data.interactions.Interactions`);
* scores: each partition of evaluated customers is ranked and scored with the
  very functions of :mod:`recommender.training.evaluation` and :mod:`recommender.models.factor`
  (seen items filtered, relevant = new items after the cut), model and
  popularity alike; the driver adds up per-partition sums.

What comes back to the driver: counts, the customer and product id lists,
factors, popularity counts and bought-together lists — all of a size set by
the number of customers and products, none by the number of events.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa

from recommender.config import ALSSettings, Settings
from recommender.data.interactions import SECONDS_PER_DAY
from recommender.errors import ConfigError, ValidationError
from recommender.models.engines.spark import TINY_RATING, _from_arrow, _to_arrow, read_export_frame

DAY = int(SECONDS_PER_DAY)


@dataclass
class History:
    """An export's events on the cluster, filtered and numbered like the driver's Interactions.

    Also what the release gate reads in place of an ``Interactions``: its
    length, the future events left out and the newest of them.
    """

    events: Any  # DataFrame: user, item, event_type, weight, t (cached)
    user_ids: list[str]
    item_ids: list[str]
    rows: int
    read_at: int
    newest: int | None
    future_events: int
    newest_future: int | None
    epoch: int

    def __len__(self) -> int:
        return self.rows

    @property
    def shape(self) -> tuple[int, int]:
        return len(self.user_ids), len(self.item_ids)

    @property
    def reference_time(self) -> int:
        """As :attr:`Interactions.reference_time`: the newest event, never later than the read."""
        if self.newest is None:
            return self.read_at
        return min(self.newest, self.read_at) if self.read_at else self.newest


def load_history(
    spark,
    path: str,
    settings: Settings,
    consenting: list[str],
    item_ids: list[str],
    *,
    read_at: int,
    epoch: int,
    exported_weights: dict[str, float] | None,
) -> History:
    """Read the export at ``path``, keep ``consenting`` customers' weighted events, number ids like the driver."""
    from pyspark.sql import functions as F

    weights = {t: float(w) for t, w in settings.event_weights.items() if w > 0}
    if exported_weights is not None:
        missing = sorted(set(weights) - set(exported_weights))
        if missing:
            raise ConfigError(
                f"the export at {path} left out event type(s) {', '.join(missing)} (weight 0 when it "
                f"was written): export again with tonight's event weights"
            )
    raw = read_export_frame(spark, path)
    if not weights:
        raise ValidationError("no event type has a positive weight: nothing to train on")
    weight_of = F.create_map(*[x for t, w in sorted(weights.items()) for x in (F.lit(t), F.lit(w))])
    frame = raw.select(
        F.col("customer_id").cast("string").alias("customer_id"),
        F.col("product_id").cast("string").alias("product_id"),
        F.col("event_type").cast("string").alias("event_type"),
        (
            F.coalesce(weight_of[F.col("event_type").cast("string")], F.lit(0.0)) * F.col("quantity").cast("double")
        ).alias("weight"),
        F.col("occurred_at").cast("long").alias("t"),
    ).where(F.col("weight") > 0)
    allowed = _from_arrow(spark, pa.table({"customer_id": pa.array(sorted(consenting), pa.string())}))
    frame = frame.join(F.broadcast(allowed) if len(consenting) < 2_000_000 else allowed, "customer_id")
    limit = read_at + settings.time.max_future_seconds
    future = frame.where(F.col("t") > limit).agg(F.count(F.lit(1)).alias("n"), F.max("t").alias("newest")).first()
    kept = frame.where(F.col("t") <= limit)
    users = sorted(r[0] for r in kept.select("customer_id").distinct().collect())
    user_frame = _from_arrow(
        spark,
        pa.table(
            {"customer_id": pa.array(users, pa.string()), "user": pa.array(np.arange(len(users), dtype=np.int32))}
        ),
    )
    item_frame = _from_arrow(
        spark,
        pa.table(
            {"product_id": pa.array(item_ids, pa.string()), "item": pa.array(np.arange(len(item_ids), dtype=np.int32))}
        ),
    )
    events = (
        kept.join(user_frame, "customer_id")
        .join(F.broadcast(item_frame), "product_id")
        .select("user", "item", "event_type", "weight", "t")
        .cache()
    )
    row = events.agg(F.count(F.lit(1)).alias("n"), F.max("t").alias("newest")).first()
    return History(
        events=events,
        user_ids=users,
        item_ids=list(item_ids),
        rows=int(row["n"]),
        read_at=read_at,
        newest=None if row["newest"] is None else int(row["newest"]),
        future_events=int(future["n"]),
        newest_future=None if future["newest"] is None else int(future["newest"]),
        epoch=epoch,
    )


def numpy_higher_index(n: int, q: float) -> int:
    """The 0-based rank ``np.quantile(x, q, method="higher")`` picks among ``n`` sorted values.

    numpy's index for "higher" is ``ceil((n - 1) · q)`` in float64; written out
    here so no array of ``n`` values is needed.
    """
    return int(min(max(math.ceil(float(np.float64(n - 1) * np.float64(q))), 0), n - 1))


def cut_time(events, quantile: float, n: int) -> int:
    """The exact "higher" ``quantile`` of event time, found with two small histograms.

    Events per day, then events per second within the day that holds the
    wanted rank: the driver receives at most a day count and 86,400 seconds,
    whatever the history's size.
    """
    from pyspark.sql import functions as F

    if n == 0:
        raise ValidationError("no interactions to split")
    rank = numpy_higher_index(n, quantile)
    days = sorted(
        (int(r[0]), int(r[1]))
        for r in events.groupBy((F.col("t") - F.pmod("t", F.lit(DAY))).alias("d")).count().collect()
    )
    below = 0
    for day, count in days:
        if below + count > rank:
            seconds = sorted(
                (int(r[0]), int(r[1]))
                for r in events.where((F.col("t") >= day) & (F.col("t") < day + DAY)).groupBy("t").count().collect()
            )
            for second, c in seconds:
                if below + c > rank:
                    return second
                below += c
        below += count
    raise AssertionError("rank beyond the events counted")  # pragma: no cover - counts are consistent


def ratings(history: History, als: ALSSettings, *, mask=None, reference_time: int):
    """(user, item, rating) whose Spark confidence ``1 + alpha · rating`` is our confidence for the pair.

    ``mask`` selects events (a Column), as ``Interactions.matrix(mask=...)`` does.
    """
    from pyspark.sql import functions as F

    events = history.events if mask is None else history.events.where(mask)
    weight = F.col("weight")
    if als.half_life_days > 0:
        age_days = F.greatest(F.lit(reference_time) - F.col("t"), F.lit(0)) / F.lit(SECONDS_PER_DAY)
        weight = weight * F.pow(F.lit(2.0), -age_days / F.lit(float(als.half_life_days)))
    pairs = events.groupBy("user", "item").agg(F.sum(weight).alias("x")).where(F.col("x") > 0)
    rating = F.log1p("x") if als.log_scaling else F.col("x")
    return pairs.select("user", "item", F.greatest(rating, F.lit(TINY_RATING)).cast("float").alias("rating")).cache()


def reg_param(frame, regularization: float) -> tuple[float, int]:
    """:func:`recommender.models.engines.spark.reg_param` computed on a ratings DataFrame; also returns the pair count."""
    from pyspark.sql import functions as F

    row = frame.agg(
        F.count(F.lit(1)).alias("n"), F.countDistinct("user").alias("u"), F.countDistinct("item").alias("i")
    ).first()
    n, users, items = int(row["n"]), int(row["u"]), int(row["i"])
    if n == 0:
        return float(regularization), 0
    return float(regularization) / max(n / users, n / items), n


def trained_rows(frame) -> tuple[np.ndarray, np.ndarray]:
    """Customers and products with a pair in a ratings DataFrame (indices, sorted)."""
    users = np.array(sorted(r[0] for r in frame.select("user").distinct().collect()), dtype=np.int64)
    items = np.array(sorted(r[0] for r in frame.select("item").distinct().collect()), dtype=np.int64)
    return users, items


# --- evaluation -------------------------------------------------------------------------------------------------


@dataclass
class SplitSummary:
    """What :func:`recommender.training.evaluation.report_payload` reads of a split."""

    cut_time: int
    users: range
    eligible_users: int


def evaluation_frame(history: History, train, cut: int, max_users: int, seed: int):
    """Per evaluated customer: seen items (the split's past) and relevant items (new after the cut).

    Returns (DataFrame user/seen/relevant, eligible count, evaluated count).
    Customers are sampled as :func:`recommender.training.evaluation.temporal_split`
    samples them (same seed, same sorted candidates).
    """
    from pyspark.sql import functions as F

    seen = train.groupBy("user").agg(F.sort_array(F.collect_list("item")).alias("seen"))
    future = history.events.where(F.col("t") >= cut).select("user", "item").distinct()
    new = future.join(train.select("user", "item"), ["user", "item"], "left_anti")
    relevant = new.groupBy("user").agg(F.sort_array(F.collect_list("item")).alias("relevant"))
    frame = seen.join(relevant, "user")
    eligible = frame.count()
    evaluated = eligible
    if max_users and eligible > max_users:
        candidates = np.array(sorted(r[0] for r in frame.select("user").collect()), dtype=np.int64)
        picked = np.sort(np.random.default_rng(seed).choice(candidates, size=max_users, replace=False))
        spark = train.sparkSession
        chosen = _from_arrow(spark, pa.table({"user": pa.array(picked.astype(np.int32))}))
        frame = frame.join(F.broadcast(chosen), "user")
        evaluated = max_users
    return frame, eligible, evaluated


BATCH = 10_000  # evaluated customers ranked at once by one Python worker


def _scorer(item_factors, order, n_items: int, rank: int, k: int, ks: list[int]):
    """The function each executor runs on its customers: rank, filter seen, score, sum.

    Yields, per batch and list (model, popularity) and cut-off, the sums of the
    metrics and the batch size, and at ``k`` the products shown: a few numbers
    per batch, whatever the number of customers.
    """

    def score(rows: Iterator[Any]) -> Iterator[tuple]:
        import itertools

        import scipy.sparse as sp

        from recommender.models.factor import batch_top_k
        from recommender.training import evaluation

        items = item_factors.value
        popular = order.value
        depth = max(ks)
        rows = iter(rows)
        while True:
            batch = list(itertools.islice(rows, BATCH))
            if not batch:
                return
            m = len(batch)
            users = np.zeros((m, rank), dtype=np.float32)
            for j, row in enumerate(batch):
                if row[1] is not None:
                    users[j] = row[1]

            def csr(column: int) -> sp.csr_matrix:
                lengths = np.fromiter((len(r[column]) for r in batch), dtype=np.int64, count=m)
                indptr = np.concatenate([[0], np.cumsum(lengths)])
                indices = np.fromiter((i for r in batch for i in r[column]), dtype=np.int32, count=int(indptr[-1]))
                return sp.csr_matrix((np.ones(len(indices), np.float32), indices, indptr), shape=(m, n_items))

            seen, relevant = csr(2), csr(3)
            positions = np.arange(m)
            tops = {
                "model": batch_top_k(users, items, seen, depth),
                "popularity": evaluation.popular_not_seen(popular, seen, positions, depth),
            }
            for which, top in tops.items():
                for kk in ks:
                    means = evaluation.ranking_metrics(top, relevant, positions, kk)
                    shown = top[:, :kk]
                    yield (
                        which,
                        kk,
                        m,
                        {name: means[name] * m for name in evaluation.METRICS},  # back to sums
                        np.unique(shown[shown >= 0]).tolist() if kk == k else [],
                    )

    return score


def score_split(
    frame, user_factors, item_factors: np.ndarray, popularity: np.ndarray, k: int, curve_k: int = 0
) -> dict[str, Any]:
    """Model and popularity scores of the evaluated customers, as :class:`evaluation.Scores` per name."""
    from pyspark.sql import functions as F

    from recommender.training import evaluation

    spark = frame.sparkSession
    n_items, rank = item_factors.shape
    order = np.argsort(-popularity.astype(np.float32), kind="stable")
    ks = sorted({k, *range(1, curve_k + 1)})
    context = spark.sparkContext
    scorer = _scorer(
        context.broadcast(np.ascontiguousarray(item_factors, dtype=np.float32)),
        context.broadcast(order),
        n_items,
        rank,
        k,
        ks,
    )
    joined = frame.join(user_factors.select(F.col("id").alias("user"), "features"), "user", "left")
    results = joined.select("user", "features", "seen", "relevant").rdd.mapPartitions(scorer).collect()
    totals: dict[tuple[str, int], dict[str, float]] = {}
    counts: dict[tuple[str, int], int] = {}
    shown: dict[str, set[int]] = {"model": set(), "popularity": set()}
    for which, kk, m, sums, items in results:
        bucket = totals.setdefault((which, kk), dict.fromkeys(evaluation.METRICS, 0.0))
        for name in evaluation.METRICS:
            bucket[name] += sums[name]
        counts[(which, kk)] = counts.get((which, kk), 0) + m
        shown[which].update(items)
    scores = {}
    for which in ("model", "popularity"):

        def mean(kk: int) -> dict[str, float]:
            n = max(counts.get((which, kk), 0), 1)
            return {name: totals.get((which, kk), {}).get(name, 0.0) / n for name in evaluation.METRICS}

        curve = {m: [mean(kk)[m] for kk in range(1, curve_k + 1)] for m in evaluation.METRICS} if curve_k else {}
        scores[which] = evaluation.Scores(mean(k), len(shown[which]) / max(n_items, 1), curve)
    return scores


def popularity_of(train, n_items: int) -> np.ndarray:
    """Distinct customers per product among a ratings DataFrame's pairs (``evaluation.popularity``)."""
    out = np.zeros(n_items, dtype=np.float32)
    table = _to_arrow(train.groupBy("item").count())
    if table.num_rows:
        out[table.column("item").to_numpy()] = table.column("count").to_numpy()
    return out


# --- signals ---------------------------------------------------------------------------------------------------


def signals(
    history: History, purchase_events: tuple[str, ...], depth: int, min_support: int = 2
) -> dict[str, np.ndarray]:
    """:func:`recommender.data.signals.compute` on the cluster: popularity and bought-together lists.

    Baskets are one customer's purchase-type events on one UTC day; lift is
    ``n(a, b) · N / (n(a) · n(b))`` over pairs in at least ``min_support``
    baskets, ranked by lift, then count, then product.
    """
    from pyspark.sql import Window, functions as F

    n_items = len(history.item_ids)
    popularity = popularity_of(history.events.select("user", "item").distinct(), n_items)
    items = np.full((n_items, depth), -1, dtype=np.int32)
    lifts = np.zeros((n_items, depth), dtype=np.float32)
    bought = history.events.where(F.col("event_type").isin(list(purchase_events)))
    baskets = bought.select("user", (F.floor(F.col("t") / DAY)).alias("day"), "item").distinct().cache()
    total = baskets.select("user", "day").distinct().count()
    if total:
        per_item = baskets.groupBy("item").agg(F.count(F.lit(1)).alias("n"))
        a, b = baskets.alias("a"), baskets.alias("b")
        pairs = (
            a.join(
                b,
                (F.col("a.user") == F.col("b.user"))
                & (F.col("a.day") == F.col("b.day"))
                & (F.col("a.item") != F.col("b.item")),
            )
            .groupBy(F.col("a.item").alias("x"), F.col("b.item").alias("y"))
            .agg(F.count(F.lit(1)).alias("c"))
            .where(F.col("c") >= min_support)
        )
        na, nb = (
            per_item.select(F.col("item").alias("x"), F.col("n").alias("nx")),
            per_item.select(F.col("item").alias("y"), F.col("n").alias("ny")),
        )
        scored = (
            pairs.join(na, "x")
            .join(nb, "y")
            .withColumn("lift", F.col("c") * F.lit(float(total)) / (F.col("nx") * F.col("ny")))
        )
        window = Window.partitionBy("x").orderBy(F.col("lift").desc(), F.col("c").desc(), F.col("y").asc())
        top = _to_arrow(
            scored.withColumn("r", F.row_number().over(window)).where(F.col("r") <= depth).select("x", "y", "lift", "r")
        )
        if top.num_rows:
            x, y = top.column("x").to_numpy(), top.column("y").to_numpy()
            r = top.column("r").to_numpy() - 1
            items[x, r] = y
            lifts[x, r] = top.column("lift").to_numpy().astype(np.float32)
    baskets.unpersist()
    return {"popularity": popularity, "together_items": items, "together_lift": lifts}
