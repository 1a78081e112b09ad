"""The Spark engine: Spark MLlib's implicit ALS, for data that outgrows one machine.

It fits with ``pyspark.ml.recommendation.ALS(implicitPrefs=True)`` and turns
Spark's user and item factors back into a :class:`~recommender.models.factor.FactorModel`
with the same id maps as the ``implicit`` engine, so evaluation, the release
gate, publishing and serving are shared code and the server cannot tell which
engine made a model (only the manifest says ``"engine": "spark"``).

What the settings mean on each engine
-------------------------------------
Both engines solve Hu, Koren & Volinsky's weighted least squares with
preference ``p = 1`` for every observed (customer, product) pair, but they
parameterise confidence and regularisation differently. The mapping below
makes one ``[als]`` section mean the same thing on both.

*Confidence.* Our matrix holds the confidence itself (``implicit`` runs with
``alpha = 1``): ``c = 1 + als.alpha * log1p(x)`` with ``als.log_scaling``,
where ``x`` is the summed, time-decayed event weight of the pair. Spark
computes ``c = 1 + alpha * r`` from a rating ``r``, and only ``r > 0`` counts
as observed. We feed ``r = log1p(x)`` (recovered from the matrix as
``(c - 1) / als.alpha``) and Spark ``alpha = als.alpha``: the confidences are
identical. Pairs whose confidence rounds to exactly 1 in float32 (events so
old that decay took their weight to ~0) get the smallest positive float32 as
``r``, so Spark still sees them as observed, as ``implicit`` does.
Without log scaling ``implicit`` uses ``c = als.alpha * x`` and Spark gets
``r = x``, i.e. ``c = 1 + als.alpha * x``: one more unit of confidence per
observed pair, which matters only when ``als.alpha * x`` is near 1.

*Regularisation.* ``implicit`` adds ``als.regularization * I`` to every
customer's and product's normal equations. Spark adds ``regParam * n * I``,
where ``n`` is the number of observed pairs of that customer or product
(ALS-WR, Zhou et al. 2008), so no single ``regParam`` matches ``implicit``
on every row. We set ``regParam = als.regularization / m`` where ``m`` is the
mean number of pairs per customer or per product (of those with any),
whichever is larger: an average row of the heavier side is regularised
exactly as by ``implicit``, every other row of that side in proportion to
its pairs, and the lighter side less. Matching the heavier side matters:
ALS-WR shrinks the most popular products hardest, and past a point their
factors, then everyone's, collapse to zero. On the sample shop (400
products, so ``m`` is the per-product mean, 37.6) matching the per-customer
mean (11.6) instead gave NDCG@10 0.013 against ``implicit``'s 0.187 at
``regularization = 30``; this rule gave 0.234, and 0.263 against 0.289
at 10. On Online Retail (means 55.8 and 61.4) every rule agrees within 3 %
of ``implicit``. ``regParam`` is computed from the matrix of each fit and
recorded in the manifest (``spark.reg_param``). The model keeps
``als.regularization`` for fold-in, which is what an average row got.

*Warm starts.* Spark's ALS cannot start from given factors. A ``warm_start``
call (the retrain job's refit on all data) is therefore a fresh fit of the
full matrix with ``als.iterations``; ``als.refit_iterations`` only says
whether that refit happens (> 0). A Spark retrain costs two full fits.

Getting the data to Spark
-------------------------
Without ``interactions_path`` the confidence matrix built on the driver is
handed over as (user, item, rating) triplets: written to a temporary Parquet
file when the master is local (the JVM reads it directly), or sent through
the driver as Arrow batches on a cluster, whose executors cannot see the
driver's temporary files.

``train`` and ``evaluate`` with ``--interactions`` do not come here with a
matrix at all: :mod:`recommender.training.spark` runs the whole retrain on the
executors (:mod:`.spark_history`). What follows is for a direct ``fit`` call
with a matrix (``tune``, library callers).

With ``interactions_path`` (the output of ``recommender export-interactions``
on storage the cluster can read) Spark builds the confidences itself from the
exported events, by the same rules, and joins them to our id maps. It uses
them only when they describe exactly the matrix it was asked to fit (same
number of pairs, same confidence checksums within float rounding); otherwise,
e.g. for the evaluation fit on the past of the temporal split, or when the
export is older than the database, it falls back to the driver's matrix, so
a fit never learns from other data than the matrix it was given. The
manifest records which input was used (``spark.input``).

Spark 4 moves Arrow tables in and out of the JVM directly; on Spark 3.5
(``pyspark>=3.5`` is allowed, to match older clusters) the same data goes as
Python rows, which is slower for large inputs but gives the same result.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import logging
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import scipy.sparse as sp

from recommender.config import ALSSettings
from recommender.data.interactions import SECONDS_PER_DAY
from recommender.errors import ConfigError, RecommenderError
from recommender.models.engines.base import Engine
from recommender.models.factor import FactorModel

log = logging.getLogger(__name__)

DEFAULT_MASTER = "local[*]"
# Settings every session gets unless the caller's conf says otherwise.
DEFAULT_CONF = {
    "spark.app.name": "recommender-als",
    "spark.api.mode": "classic",  # the engine drives the JVM directly (SparkContext), not Spark Connect
    "spark.ui.enabled": "false",
    "spark.ui.showConsoleProgress": "false",
}
# The smallest positive float32: a rating Spark still counts as observed.
TINY_RATING = float(np.finfo(np.float32).tiny)
# Relative tolerance of the export-versus-matrix checksums (float32 rounding).
CHECKSUM_TOLERANCE = 1e-5
EXPORT_COLUMNS = ("customer_id", "product_id", "weight", "occurred_at")
LOG4J_ENV = "LOG4J_CONFIGURATION_FILE"  # log4j2's environment form of -Dlog4j2.configurationFile

_log4j_files: dict[str, str] = {}


def find_java(environ: Mapping[str, str] | None = None) -> str:
    """The java executable Spark would launch: ``$JAVA_HOME/bin/java``, else ``java`` on ``PATH``.

    Spark's launcher looks in the same two places; checking first turns its
    multi-line failure into one line that says what to install.
    """
    env = os.environ if environ is None else environ
    home = env.get("JAVA_HOME")
    if home:
        candidate = Path(home) / "bin" / "java"
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
        raise ConfigError(f"JAVA_HOME={home} has no bin/java: point it at a Java 17+ installation or unset it")
    found = shutil.which("java", path=env.get("PATH", ""))
    if not found:
        raise ConfigError(
            "the spark engine needs Java 17 or newer: no java on PATH and JAVA_HOME is not set "
            "(e.g. apt-get install openjdk-17-jre-headless)"
        )
    return found


def java_version(java: str) -> str:
    """The version string ``java -version`` reports, e.g. ``17.0.15``."""
    try:
        out = subprocess.run([java, "-version"], capture_output=True, text=True, timeout=60, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ConfigError(f"cannot run {java} -version ({exc})") from None
    match = re.search(r'version "([^"]+)"', out.stderr + out.stdout)
    if out.returncode != 0 or not match:
        raise ConfigError(f"{java} -version failed: {(out.stderr.strip().splitlines() or ['no output'])[-1]}")
    return match.group(1)


def _java_major(version: str) -> int:
    parts = version.split(".")
    return int(parts[1]) if parts[0] == "1" and len(parts) > 1 else int(re.match(r"\d+", parts[0]).group(0))


def _quiet_logging_file(level: str) -> str:
    """A log4j2 configuration that logs ``level`` and above to stderr, written once per process.

    Besides the root logger it must set ``PythonGatewayServer``: for a Python
    driver Spark resets the root level to that logger's (WARN by default) and
    prints a banner about it.
    """
    if level not in _log4j_files:
        text = "\n".join(
            [
                f"rootLogger.level = {level.lower()}",
                "rootLogger.appenderRef.stderr.ref = console",
                "appender.console.type = Console",
                "appender.console.name = console",
                "appender.console.target = SYSTEM_ERR",
                "appender.console.layout.type = PatternLayout",
                "appender.console.layout.pattern = %d{HH:mm:ss} %p %c{1}: %m%n%ex",
                "logger.gateway.name = org.apache.spark.api.python.PythonGatewayServer",
                f"logger.gateway.level = {level.lower()}",
                "logger.repl.name = org.apache.spark.repl.Main",
                f"logger.repl.level = {level.lower()}",
                "",
            ]
        )
        fd, path = tempfile.mkstemp(prefix="recommender-log4j2-", suffix=".properties")
        with os.fdopen(fd, "w") as fh:
            fh.write(text)
        atexit.register(lambda p=path: os.path.exists(p) and os.unlink(p))
        _log4j_files[level] = path
    return _log4j_files[level]


def session_conf(master: str | None, conf: Mapping[str, str] | None) -> dict[str, str]:
    """Every setting the session starts with: our quiet defaults, then the caller's ``conf``."""
    merged = dict(DEFAULT_CONF)
    merged.update({str(k): str(v) for k, v in (conf or {}).items()})
    merged["spark.master"] = master or merged.get("spark.master") or DEFAULT_MASTER
    return merged


@contextlib.contextmanager
def _quiet_jvm(conf: Mapping[str, str], level: str) -> Iterator[None]:
    """While the driver JVM starts, point log4j at a configuration that logs only ``level`` and above.

    Through log4j's environment variable, not ``spark.driver.extraJavaOptions``,
    which would replace a cluster's own driver options. A log4j setting of
    the caller's (in that conf, or already in the environment) wins.
    """
    if "log4j" in conf.get("spark.driver.extraJavaOptions", "") or LOG4J_ENV in os.environ:
        yield
        return
    os.environ[LOG4J_ENV] = _quiet_logging_file(level)
    try:
        yield
    finally:
        os.environ.pop(LOG4J_ENV, None)


def check_prerequisites(environ: Mapping[str, str] | None = None) -> None:
    """Fail fast, in one line, when pyspark or Java is missing (before minutes of loading data).

    Nothing to check once a SparkContext runs in this process.
    """
    try:
        from pyspark import SparkContext
    except ImportError as exc:
        raise ConfigError(f"pyspark is not installed ({exc}): pip install -e '.[spark]'") from None
    if SparkContext._active_spark_context is None:
        find_java(environ)


def spark_session(master: str | None = None, conf: Mapping[str, str] | None = None, log_level: str = "ERROR"):
    """The process's SparkSession: started with ``master`` and ``conf``, or the running one reused as it is.

    Spark cannot change a running context's master or static settings, so a
    second engine in the same process shares the first one's session.
    """
    check_prerequisites()
    import pyspark
    from pyspark import SparkContext
    from pyspark.sql import SparkSession

    if SparkContext._active_spark_context is not None:
        return SparkSession.builder.getOrCreate()
    java = find_java()
    version = java_version(java)
    if int(pyspark.__version__.split(".")[0]) >= 4 and _java_major(version) < 17:
        raise ConfigError(f"Spark {pyspark.__version__} needs Java 17 or newer, {java} is {version}")
    settings = session_conf(master, conf)
    if _is_local(settings["spark.master"]):
        # Python workers (evaluation, signals) must import this package: the driver's interpreter.
        settings.setdefault("spark.pyspark.python", sys.executable)
    builder = SparkSession.builder
    for key, value in settings.items():
        builder = builder.config(key, value)
    try:
        with _quiet_jvm(settings, log_level):
            spark = builder.getOrCreate()
    except Exception as exc:  # noqa: BLE001 - the JVM failed to start: py4j / pyspark errors carry pages of text
        raise ConfigError(f"cannot start Spark ({_first_line(exc)})") from None
    spark.sparkContext.setLogLevel(log_level)
    return spark


def reg_param(matrix: sp.csr_matrix, regularization: float) -> float:
    """Spark's ``regParam`` that regularises an average row of the heavier side as ``implicit`` does.

    ``regularization / max(pairs per customer, pairs per product)``, over the
    customers and products that have any pair (see the module docs for why).
    """
    if matrix.nnz == 0:
        return float(regularization)
    customers = int(np.count_nonzero(np.diff(matrix.indptr)))
    products = int(np.count_nonzero(np.bincount(matrix.indices, minlength=matrix.shape[1])))
    return float(regularization) / max(matrix.nnz / customers, matrix.nnz / products)


def ratings_from_matrix(matrix: sp.csr_matrix, als: ALSSettings) -> pa.Table:
    """(user, item, rating) triplets whose Spark confidence ``1 + alpha * rating`` is ours."""
    matrix = sp.csr_matrix(matrix, dtype=np.float32)
    users = np.repeat(np.arange(matrix.shape[0], dtype=np.int32), np.diff(matrix.indptr))
    values = matrix.data.astype(np.float64)
    rating = (values - 1.0) / als.alpha if als.log_scaling else values / als.alpha
    rating = np.maximum(rating, TINY_RATING).astype(np.float32)
    return pa.table(
        {
            "user": pa.array(users),
            "item": pa.array(matrix.indices.astype(np.int32, copy=False)),
            "rating": pa.array(rating),
        }
    )


def _checksums(matrix: sp.csr_matrix) -> tuple[int, float, float, float]:
    """Pair count and three confidence sums (plain, × (user+1), × (item+1)) of a matrix."""
    coo = matrix.tocoo()
    c = coo.data.astype(np.float64)
    return int(matrix.nnz), float(c.sum()), float((c * (coo.row + 1.0)).sum()), float((c * (coo.col + 1.0)).sum())


def _same(a: tuple[int, float, float, float], b: tuple[int, float, float, float]) -> bool:
    """Same pair count, and each confidence sum equal within float32 rounding."""
    return a[0] == b[0] and all(
        abs(x - y) <= CHECKSUM_TOLERANCE * max(abs(x), abs(y), 1.0) for x, y in zip(a[1:], b[1:])
    )


def _is_local(master: str) -> bool:
    """Whether executors share the driver's file system (local and local-cluster masters)."""
    return master.startswith("local")


def _from_arrow(spark, table: pa.Table):
    """A DataFrame of an Arrow table: directly on Spark 4, as Python rows on Spark 3.5."""
    if int(spark.version.split(".")[0]) >= 4:
        return spark.createDataFrame(table)
    from pyspark.sql.pandas.types import from_arrow_schema

    return spark.createDataFrame(
        list(zip(*(c.to_pylist() for c in table.columns))), schema=from_arrow_schema(table.schema)
    )


def _to_arrow(frame) -> pa.Table:
    """A (small) DataFrame collected to the driver as an Arrow table, on Spark 4 or 3.5."""
    if hasattr(frame, "toArrow"):
        return frame.toArrow()
    batches = frame._collect_as_arrow()  # Spark 3.5: what toPandas uses, without pandas
    if batches:
        return pa.Table.from_batches(batches)
    from pyspark.sql.pandas.types import to_arrow_schema

    return to_arrow_schema(frame.schema).empty_table()


def read_export_frame(spark, path: str):
    """The rows of an ``export-interactions`` folder: only the files its manifest lists.

    A file the manifest does not list was left by an export that was killed
    before its commit, or replaced by a later one: not part of the export.
    """
    from recommender.data import exports

    if "://" in path:
        marker_rows = spark.read.text(f"{path.rstrip('/')}/{exports.MARKER}", wholetext=True).collect()
        marker = json.loads(marker_rows[0][0]) if marker_rows else None
        files = [f"{path.rstrip('/')}/{e['path']}" for e in marker["files"]] if marker and "files" in marker else None
    else:
        marker = exports.read_marker(path)
        files = exports.export_files(path) if marker and marker.get("layout") == exports.LAYOUT else None
    if files is None:  # an export of the first layout: the folder whole
        return spark.read.parquet(path)
    if not files:
        raise ConfigError(f"the export {path} holds no events")
    return spark.read.option("basePath", path).parquet(*files)


def _first_line(exc: BaseException) -> str:
    """The informative line of an error: for a Java exception its own message, not py4j's
    "An error occurred while calling o123.fit"."""
    text = str(exc)
    java = getattr(exc, "java_exception", None)
    if java is not None:
        with contextlib.suppress(Exception):
            text = str(java.toString())
    return (text.strip().splitlines() or [exc.__class__.__name__])[0]


class SparkALS(Engine):
    """Spark MLlib's implicit ALS behind the :class:`Engine` interface (see the module docs)."""

    name = "spark"
    warm_starts = False

    def __init__(
        self,
        master: str | None = None,
        conf: Mapping[str, str] | None = None,
        interactions_path: str | os.PathLike | None = None,
        log_level: str = "ERROR",
    ) -> None:
        self.master = master
        self.conf = dict(conf or {})
        self.interactions_path = None if interactions_path is None else str(interactions_path)
        self.log_level = log_level
        check_prerequisites()
        if self.interactions_path and "://" not in self.interactions_path and not Path(self.interactions_path).exists():
            raise ConfigError(
                f"cannot read interactions from {self.interactions_path}: no such file or folder "
                "(write it with recommender export-interactions)"
            )

    def session(self):
        """Start Spark on first use and keep it for the rest of the process (later fits reuse it)."""
        return spark_session(self.master, self.conf, self.log_level)

    def fit(
        self,
        matrix: sp.csr_matrix,
        user_ids: list[str],
        item_ids: list[str],
        als: ALSSettings,
        *,
        progress: bool = False,
        warm_start: FactorModel | None = None,
        iterations: int | None = None,
    ) -> FactorModel:
        """Fit on ``matrix``; a ``warm_start`` call is a fresh fit with ``als.iterations`` (Spark cannot warm-start).

        ``progress`` is ignored: Spark reports stages, not iterations, and its
        console progress bar is off so the CLI's output stays readable.
        """
        if warm_start is not None or iterations is None:
            iterations = als.iterations
        matrix = sp.csr_matrix(matrix, dtype=np.float32)
        matrix.eliminate_zeros()
        spark = self.session()
        started = time.perf_counter()
        with tempfile.TemporaryDirectory(prefix="recommender-spark-") as scratch:
            ratings, source, export_pairs = self._ratings(
                spark, matrix, list(user_ids), list(item_ids), als, Path(scratch)
            )
            regularization = reg_param(matrix, als.regularization)
            user_factors, item_factors = self._train(ratings, matrix.shape, als, iterations, regularization)
        details = {
            "version": spark.version,
            "master": spark.sparkContext.master,
            "input": source,
            "reg_param": regularization,
            "alpha": als.alpha,
            "iterations": iterations,
            "fit_seconds": round(time.perf_counter() - started, 3),
        }
        if export_pairs is not None:
            details.update(export=self.interactions_path, export_pairs=export_pairs)
        return FactorModel(
            user_factors=user_factors,
            item_factors=item_factors,
            user_ids=list(user_ids),
            item_ids=list(item_ids),
            regularization=als.regularization,
            manifest={"engine": self.name, "spark": details},
        )

    # --- input ---------------------------------------------------------------

    def _ratings(
        self, spark, matrix: sp.csr_matrix, user_ids: list[str], item_ids: list[str], als: ALSSettings, scratch: Path
    ) -> tuple[Any, str, int | None]:
        """The ratings DataFrame Spark fits on, where it came from (``export`` or ``driver``),
        and how many pairs the export held (None when there is none)."""
        export_pairs = None
        if self.interactions_path is not None:
            ratings, sums = self.ratings_from_export(spark, user_ids, item_ids, als)
            expected = _checksums(matrix)
            export_pairs = sums[0]
            if _same(sums, expected):
                return ratings, "export", export_pairs
            ratings.unpersist()
            log.info(
                "export %s has %d pairs, the matrix to fit %d (or other confidences): fitting the driver's matrix",
                self.interactions_path,
                sums[0],
                expected[0],
            )
        table = ratings_from_matrix(matrix, als)
        return self._to_spark(spark, table, scratch), "driver", export_pairs

    def _to_spark(self, spark, table: pa.Table, scratch: Path, *, via: str | None = None):
        """Hand triplets to Spark: a Parquet file on a shared file system, else Arrow batches via the driver."""
        via = via or ("parquet" if _is_local(spark.sparkContext.master) else "arrow")
        if via == "parquet":
            path = scratch / "ratings.parquet"
            pq.write_table(table, path, row_group_size=1 << 20)
            return spark.read.parquet(str(path)).cache()
        return _from_arrow(spark, table).cache()

    def ratings_from_export(
        self, spark, user_ids: list[str], item_ids: list[str], als: ALSSettings
    ) -> tuple[Any, tuple[int, float, float, float]]:
        """Confidences built on the cluster from exported events, by the rules of :mod:`recommender.data.interactions`.

        Per (customer, product): the sum of ``weight · 2^(-age / half-life)``
        with age counted from the newest exported event, then ``log1p`` when
        log scaling is on. Ids are joined to our ``user_ids`` / ``item_ids``,
        so customers or products unknown here are dropped. Returns the cached
        ratings and the checksums that :func:`_checksums` gives for a matrix.
        """
        from pyspark.errors import AnalysisException
        from pyspark.sql import functions as F

        path = self.interactions_path
        if "://" not in path:
            path = str(Path(path).resolve())
        try:
            events = read_export_frame(spark, path)
        except AnalysisException as exc:
            raise ConfigError(f"cannot read interactions from {self.interactions_path}: {_first_line(exc)}") from None
        missing = [c for c in EXPORT_COLUMNS if c not in events.columns]
        if missing:
            raise ConfigError(
                f"{self.interactions_path} is not an export-interactions output (missing {', '.join(missing)})"
            )
        users = _from_arrow(
            spark,
            pa.table(
                {
                    "customer_id": pa.array(user_ids, pa.string()),
                    "user": pa.array(np.arange(len(user_ids), dtype=np.int32)),
                }
            ),
        )
        items = _from_arrow(
            spark,
            pa.table(
                {
                    "product_id": pa.array(item_ids, pa.string()),
                    "item": pa.array(np.arange(len(item_ids), dtype=np.int32)),
                }
            ),
        )
        events = (
            events.select(
                "customer_id",
                "product_id",
                F.col("weight").cast("double").alias("weight"),
                F.col("occurred_at").cast("long").alias("t"),
            )
            .where(F.col("weight") > 0)
            .join(users, "customer_id")
            .join(items, "product_id")
        )
        weight = F.col("weight")
        if als.half_life_days > 0:
            reference = events.agg(F.max("t")).first()[0]
            if reference is not None:
                age_days = F.greatest(F.lit(reference) - F.col("t"), F.lit(0)) / F.lit(SECONDS_PER_DAY)
                weight = weight * F.pow(F.lit(2.0), -age_days / F.lit(float(als.half_life_days)))
        pairs = events.groupBy("user", "item").agg(F.sum(weight).alias("x")).where(F.col("x") > 0)
        rating = F.log1p("x") if als.log_scaling else F.col("x")
        ratings = pairs.select("user", "item", F.greatest(rating, F.lit(TINY_RATING)).cast("float").alias("rating"))
        ratings = ratings.cache()
        # The confidence our matrix would hold for each pair, to compare with it.
        scaled = F.lit(als.alpha) * F.col("rating")
        conf = F.lit(1.0) + scaled if als.log_scaling else scaled
        row = ratings.agg(
            F.count(F.lit(1)).alias("n"),
            F.sum(conf).alias("c"),
            F.sum(conf * (F.col("user") + 1)).alias("cu"),
            F.sum(conf * (F.col("item") + 1)).alias("ci"),
        ).first()
        sums = (int(row["n"]), float(row["c"] or 0.0), float(row["cu"] or 0.0), float(row["ci"] or 0.0))
        return ratings, sums

    # --- fit -------------------------------------------------------------------

    def _train(
        self, ratings, shape: tuple[int, int], als: ALSSettings, iterations: int, regularization: float
    ) -> tuple[np.ndarray, np.ndarray]:
        estimator = als_estimator(ratings.sparkSession, als, iterations, regularization)
        try:
            fitted = estimator.fit(ratings)
            users = _dense(fitted.userFactors, shape[0], als.factors)
            items = _dense(fitted.itemFactors, shape[1], als.factors)
        except Exception as exc:  # executor lost, out of memory, ...: one line for the CLI, the rest chained
            raise RecommenderError(f"Spark ALS failed: {_first_line(exc)}") from exc
        finally:
            ratings.unpersist()
        return users, items


def als_estimator(spark, als: ALSSettings, iterations: int, regularization: float):
    """MLlib's implicit ALS with our settings on ``user`` / ``item`` / ``rating`` columns."""
    from pyspark.ml.recommendation import ALS

    # Blocks of customers and of products: one per core when local (Spark's fixed 10
    # costs a third more time on two cores), at least Spark's 10 on a cluster, whose
    # default parallelism may count only the executors started so far.
    context = spark.sparkContext
    cores = max(1, int(context.defaultParallelism))
    blocks = cores if _is_local(context.master) else max(10, cores)
    return ALS(
        rank=als.factors,
        maxIter=iterations,
        regParam=regularization,
        implicitPrefs=True,
        alpha=als.alpha,
        userCol="user",
        itemCol="item",
        ratingCol="rating",
        nonnegative=False,
        coldStartStrategy="drop",
        seed=int(als.random_state),
        numUserBlocks=blocks,
        numItemBlocks=blocks,
    )


def _dense(factors, rows: int, rank: int) -> np.ndarray:
    """Spark's (id, features) rows as a dense float32 array; ids Spark never saw get zero rows.

    ``implicit`` also solves a row without any pair to zero, and the server
    answers a customer with a zero vector from its fallback (``no_history``).
    """
    table = _to_arrow(factors)
    out = np.zeros((rows, rank), dtype=np.float32)
    if table.num_rows:
        ids = table.column("id").to_numpy()
        flat = pc.list_flatten(table.column("features")).to_numpy(zero_copy_only=False)
        out[ids] = np.asarray(flat, dtype=np.float32).reshape(len(ids), rank)
    return out
