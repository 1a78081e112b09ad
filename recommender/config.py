"""Settings: one object, defaults that work with no file at all.

Precedence, lowest to highest: built-in defaults, a TOML file (``--config``,
``RECOMMENDER_CONFIG`` or ``./recommender.toml`` when present), then environment
variables. Environment variables are named ``RECOMMENDER_<FIELD>`` for top-level
fields and ``RECOMMENDER_<SECTION>_<FIELD>`` for sectioned ones, e.g.
``RECOMMENDER_DB``, ``RECOMMENDER_ALS_FACTORS``; mappings are written
``view=1,purchase=4``. Operators set things in cron lines and unit files, so the
environment must win over the file.
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from recommender.durable import private_folder_of
from recommender.errors import ConfigError

ENV_PREFIX = "RECOMMENDER_"


@dataclass
class ALSSettings:
    """Hyper-parameters of implicit's ALS and of the confidence transform.

    The defaults were chosen on a validation split carved from the training
    period of the Online Retail data (see ``recommender tune``), never on the
    test period.
    """

    factors: int = 64
    regularization: float = 30.0
    # Confidence of a (customer, product) pair with weighted count x:
    # 1 + alpha * log1p(x) with log_scaling (so one customer buying 500 units does
    # not drown every other signal), else alpha * x (implicit's own convention).
    alpha: float = 2.0
    log_scaling: bool = True
    iterations: int = 10
    # After evaluating on the temporal split, the published model continues from
    # the evaluated factors for this many iterations on all data (warm start),
    # so the newest behaviour is in it without paying for a second full fit.
    refit_iterations: int = 1
    # Half-life, in days, of an event's weight; 0 turns time decay off. Recent
    # behaviour predicts the next purchase far better than last year's.
    half_life_days: float = 14.0
    random_state: int = 42


@dataclass
class EASESettings:
    """EASE^R (:mod:`recommender.models.families.ease`): closed form, dense in the active products."""

    # λ of G = XᵀX + λI. X holds confidences (1 + α·log1p(weighted count), about 2-10), so λ is
    # on the scale of squared confidences: ~20x the few hundred published for binary data. 5000 was
    # best on Online Retail's validation split (cut from the training period; 500: -9 %).
    regularization: float = 5000.0
    # Above this many active products the dense fit (12·m² bytes + blocks: 4.9 GiB at 20,000) is refused.
    max_items: int = 20000


@dataclass
class ItemGraphSettings:
    """Sparse item-item graphs (:mod:`recommender.models.families.itemgraph`), for any catalogue size."""

    # "rp3beta" (random walk, Paudel et al. 2017) or "itemknn" (cosine with shrinkage).
    method: str = "rp3beta"
    # Neighbours kept per product (top-K of its row).
    neighbours: int = 200
    # rp3beta: transition probabilities raised to alpha; popularity of the target divided out to beta.
    alpha: float = 0.8
    beta: float = 0.5
    # itemknn: added to the cosine's denominator, so pairs seen together once weigh less.
    shrink: float = 10.0


@dataclass
class EvaluationSettings:
    k: int = 10
    cut_quantile: float = 0.8
    # Scoring every customer of a million-customer shop is not needed for a
    # stable estimate; a seeded sample keeps retraining cheap.
    max_users: int = 10000
    seed: int = 7


@dataclass
class ServeSettings:
    host: str = "127.0.0.1"
    port: int = 8000
    workers: int = 0  # 0 = min(2 * cores + 1, 8)
    # How often a worker looks at the CURRENT pointer, and refreshes product data.
    model_check_seconds: float = 1.0
    catalogue_ttl_seconds: float = 60.0
    # Serve without API keys (demo only): refused unless host is a loopback address.
    open: bool = False
    # New products' exploration share (docs/new-products.md): the expected share of a personal list's
    # slots given to a product without interactions that arrived in the last `new_product_days`, the
    # best of them by its content score for the customer. A list of n gets floor(n * share) such slots
    # plus one more with probability frac(n * share) (10 slots at 0.05: one slot in half of the lists),
    # at its end. 0 turns exploration off (new products then compete on their content score only).
    new_product_share: float = 0.05
    new_product_days: int = 30
    # Products the model has no row for (new, or never bought) are represented by their content
    # (docs/new-products.md). Off: they appear only in popular lists until a retrain learns them.
    represent_new_products: bool = True


@dataclass
class PrivacySettings:
    # Decision-log entries older than this are deleted (by `recommender prune` and by
    # every retrain job).
    retention_days: int = 90
    # Record every served list in the decision log (batched off the request path).
    decision_log: bool = True
    # How often each worker writes the lists it served; what is queued is also written when the
    # worker stops (SIGTERM, SIGINT, a restart), so only a killed (SIGKILL) worker loses them.
    decision_log_flush_seconds: float = 0.5
    # The secret that keys erasure tombstones (and signs console sessions). Never in the
    # database; empty = "<database file>.key" beside it, created owner-only on first use.
    key_file: Path = Path("")
    # Item factors cannot forget a customer without a retrain. After a withdrawal or an
    # erasure the served model is stale; past this many hours it stops serving anything
    # learnt from factors (lists fall back to non-personalized) until a clean one is published.
    max_stale_hours: float = 36.0


@dataclass
class RetentionSettings:
    """Which model artifacts stay on disk (``recommender models --prune``, and after every publish)."""

    # Published models kept besides the current one, newest first: the rollback targets.
    keep_previous: int = 3
    # Candidates and rejected models older than this are deleted (published ones follow keep_previous).
    max_age_days: float = 7.0


@dataclass
class GateSettings:
    """The release gate's health checks (see :mod:`recommender.training.gate`)."""

    # Relative NDCG the new settings may lose against the current model's settings, both
    # fitted and scored on tonight's split (0 = must be at least as good).
    tolerance: float = 0.0
    # More than this share of events dated after the training time is a data accident.
    max_future_share: float = 0.001
    # At least this share of trained customers and products must get a non-zero factor row.
    min_nonzero_share: float = 0.5
    # Interactions may shrink by at most this share since the current model (withdrawals and
    # erasures shrink them; a broken import that loses half the history is refused).
    max_data_drop: float = 0.5


@dataclass
class TimeSettings:
    """What the engine accepts as an event's time."""

    # An event, consent decision or creation time further in the future than this is refused
    # at every door (API, imports): one bad clock must not move the model's time reference.
    max_future_seconds: int = 300


@dataclass
class SelectionSettings:
    """Per-shop model selection on a validation split of the training period (see :mod:`recommender.training.selection`).

    Grids are relative or shop-independent on purpose: the same defaults must
    work for a shop nobody has looked at.
    """

    # `train` and `evaluate` choose the family and the settings that do not transfer between
    # shops; off (`--no-select`) = fit exactly the configured ALS settings, as before.
    enabled: bool = True
    # Stop adding candidates after this long (the configured settings are always tried).
    max_seconds: float = 1800.0
    # The serving model's recipe is kept unless a candidate beats it on validation by more than
    # this (relative NDCG): recipes do not flap on noise from one night to the next.
    switch_margin: float = 0.02
    # Families tried when the engine offers them (ALS is always tried).
    families: tuple[str, ...] = ("als", "ease", "rp3beta", "itemknn")
    # Decay half-lives tried, in days (0 = no decay).
    half_lives: tuple[float, ...] = (0.0, 7.0, 14.0, 30.0, 90.0)
    # Try the event-weighting profiles of `tune` (only when the shop has several event types).
    weight_profiles: bool = True
    # ALS regularization and alpha tried as multiples of the configured ones (besides 1).
    als_scales: tuple[float, ...] = (0.3, 3.0)
    # EASE^R's lambda, as multiples of the mean diagonal of the item Gram matrix XᵀX.
    ease_scales: tuple[float, ...] = (0.3, 1.0, 3.0, 10.0, 30.0)
    # Item-graph grid: neighbours (K), RP3beta's alpha and beta.
    graph_neighbours: tuple[float, ...] = (50.0, 200.0)
    graph_alphas: tuple[float, ...] = (0.5, 1.0)
    graph_betas: tuple[float, ...] = (0.3, 0.6)
    # Weight of the ALS part in a blend of the best ALS and the best item model (empty = no blend).
    blend_weights: tuple[float, ...] = (0.3, 0.5, 0.7)
    # Also a three-part blend, equal weights: ALS + EASE^R + the best item graph.
    three_part_blend: bool = True
    # More validation cuts (quantiles of the training period, besides evaluation.cut_quantile) at which
    # each family's best and the best blends are scored again; they are compared by the mean (empty = one cut).
    folds: tuple[float, ...] = (0.7, 0.9)
    # Tie rule: a finalist within this many paired standard errors of the best mean is tied with it,
    # and the tied one with the most parts (a blend) wins; 0 = plain best mean.
    tie_standard_errors: float = 1.0
    # The schedule (recommender/training/schedule.py; docs/quality.md, "When the search runs"): a
    # retrain refits the recipe chosen by the last search and searches again only when asked
    # (`recommender select`, `train --select`), when none has been run, when the last one is older
    # than this many days (0 = search at every retrain, as before), when the selection or model
    # settings changed since, or when the recipe is losing ground (below).
    every_days: float = 7.0
    # Losing ground: tonight's test NDCG@k of the refitted recipe is below the value recorded when it
    # was chosen by more than this share of it AND by more than `losing_ground_standard_errors`
    # standard errors of tonight's mean; then the same run searches again. 0 = never.
    losing_ground_share: float = 0.10
    losing_ground_standard_errors: float = 2.0
    # A candidate whose predicted peak memory (its fit plus the fitted models the search holds) is
    # above this is skipped with a line that says so. 0 = half of this machine's memory.
    max_memory_bytes: int = 0


@dataclass
class CampaignSettings:
    """Occasion campaigns (``recommender campaign run``); checked when a campaign runs.

    Flat fields, not nested tables, so every one can be set from the
    environment, e.g. ``RECOMMENDER_CAMPAIGNS_DISCOUNTS=birthday=20,anniversary=10``
    or ``RECOMMENDER_CAMPAIGNS_BIRTHDAY_CATEGORIES=toys,games``.
    """

    # Percent off, per occasion (each > 0 and < 100).
    discounts: dict[str, float] = field(default_factory=lambda: {"birthday": 15.0, "anniversary": 10.0})
    # The code is valid from this many days before the occasion (never before the
    # customer's local run date) until this many days after it.
    valid_days_before: int = 7
    valid_days_after: int = 14
    # Where 29 February occasions fall in non-leap years: "feb28" or "mar1".
    feb29_rule: str = "feb28"
    # Preferred gift categories per occasion; empty = any category.
    birthday_categories: tuple[str, ...] = ()
    anniversary_categories: tuple[str, ...] = ()
    # Price band of offered products; 0 = no bound on that side.
    min_price: float = 0.0
    max_price: float = 0.0
    # Products per offer (--items).
    items: int = 3
    # Spread rule: in one run a product goes into at most max(1, ceil(share x customers
    # offered to)) offers while other products can still fill them; only when nothing
    # else is left may it exceed that (stock and --max-per-product still hold). 1 = off.
    max_product_share: float = 0.25
    # Lifecycle kinds (recommender/campaigns/lifecycle.py; docs/campaigns.md). Each has its percent
    # off, validity in days from the customer's local run date, period of the ledger rule in days
    # (at most one offer of the kind per customer within it; 0 = once ever) and a cap on customers
    # per run (0 = none; the most valuable first, the oldest first order for second purchase).
    # Win-back: customers in the top `winback_spend_top` share by spend so far whose chance of being
    # active (value model, p_active) is below `winback_p_active_below`.
    winback_discount: float = 20.0
    winback_valid_days: int = 30
    winback_every_days: int = 180
    winback_max_customers: int = 0
    winback_p_active_below: float = 0.3
    winback_spend_top: float = 0.2
    # Second purchase: customers with exactly one purchase day, `second_purchase_after_days` to
    # `second_purchase_within_days` days after it (purchase history only: no profiling consent needed).
    second_purchase_discount: float = 10.0
    second_purchase_valid_days: int = 21
    second_purchase_every_days: int = 0
    second_purchase_max_customers: int = 0
    second_purchase_after_days: int = 30
    second_purchase_within_days: int = 90
    # Thank-you: customers whose value segment is one of these.
    thank_you_discount: float = 10.0
    thank_you_valid_days: int = 30
    thank_you_every_days: int = 365
    thank_you_max_customers: int = 0
    thank_you_segments: tuple[str, ...] = ("champions",)
    # One live offer per customer across all kinds: a customer holding an offer that has not expired
    # (held-out rows included) gets no other; within one run the first kind here wins.
    priority: tuple[str, ...] = ("birthday", "anniversary", "winback", "second_purchase", "thank_you")
    # The offers' holdout: this share of eligible customers of `holdout_kinds` is recorded but not
    # sent an offer, by the keyed hash of the A/B arms (recommender/online/assignment.py) with its
    # own salt, so the same customers are held out in every run. 0 = no holdout.
    holdout_share: float = 0.1
    holdout_kinds: tuple[str, ...] = ("winback", "second_purchase", "thank_you")
    holdout_salt: str = ""


@dataclass
class OnlineSettings:
    """Online measurement and the A/B holdout (see :mod:`recommender.online`).

    Attribution and revenue (docs/online.md): a list belongs to the customer it
    was served to, and an event's ``list_id`` counts only for an event of that
    customer (otherwise the event is attributed as if it named no list). A
    purchase's revenue is quantity x unit price, where the event's ``price`` is
    used only when it is plausible: within ``[catalogue / max_price_factor,
    catalogue x max_price_factor]`` of the product's catalogue price. Otherwise
    (or when the catalogue has no price to check it against) the catalogue price
    is used (0 without one) and the event is counted as *flagged*. A quantity
    above ``max_quantity`` counts as ``max_quantity`` units, flagged the same way.
    Flagged events are shown, with their share of each arm's events, in
    ``recommender report online`` and the console; the stored event is kept as sent.
    """

    # Share of customers (by a keyed hash of their id, stable) in the control arm: they get the
    # non-personalized list (reason ``control``). 0 = no holdout.
    control_share: float = 0.0
    # A published model version served to a further share of customers (arm ``challenger``);
    # empty = none. The rest get the current model (arm ``model``).
    challenger: str = ""
    challenger_share: float = 0.0
    # Changing the salt reshuffles every customer's arm (start a new experiment).
    salt: str = ""
    # An event counts for a list shown at most this many hours before it.
    window_hours: float = 24.0
    # Event types that count as a click on a list item, and as adding one to the cart.
    click_events: tuple[str, ...] = ("view",)
    cart_events: tuple[str, ...] = ("add_to_cart",)
    # An event's price counts for revenue only within this factor of the catalogue price (>= 1).
    max_price_factor: float = 3.0
    # A purchase of more units than this counts as this many (and is flagged).
    max_quantity: float = 100.0


@dataclass
class AnnSettings:
    """Approximate nearest-neighbour search for large catalogues (see :mod:`recommender.models.ann`).

    Below ``min_products`` the exact search is as fast and is what serves; from
    there on a publish builds a faiss index into the artifact (``pip install
    'recommender[ann]'``). ``enabled`` is also the serve-time switch: off, a
    server answers exactly even from an artifact that has an index.
    """

    enabled: bool = True
    min_products: int = 200_000
    # Inverted lists of the index; 0 = 2 x sqrt(products).
    lists: int = 0
    # Lists read per query; 0 = the count calibrated at build time to reach target_recall.
    probes: int = 0
    target_recall: float = 0.97
    # Candidates the index proposes per list, re-checked against the filters and re-scored exactly.
    candidates: int = 100
    # A filter letting fewer than this share of the products through scores just those, exactly.
    min_allowed_share: float = 0.05


@dataclass
class ValueSettings:
    """Customer value (:mod:`recommender.value`, ``recommender value``; docs/value.md).

    Value and segment are profiling: they are computed only for customers who granted
    ``purpose`` (one of ``consent_purposes``).
    """

    purpose: str = "personalization"
    # Written before amounts of money on the console and in its sentences (e.g. "£"); empty: none.
    currency: str = ""
    # Horizons, in days, of expected purchases and spend.
    horizons: tuple[float, ...] = (90.0, 180.0, 365.0)
    # ``recommender value evaluate`` without --cut: the holdout is the last this many days of history
    # (at most a third of the history, so the calibration period keeps two thirds).
    evaluation_days: float = 180.0
    # Bootstrap resamples of the evaluation's 95 % intervals, and their seed.
    bootstrap: int = 1000
    seed: int = 7


@dataclass
class Settings:
    db: Path = Path("recommender.db")
    # Relative paths are taken from the database's folder (see anchor_paths).
    model_dir: Path = Path("models")
    event_weights: dict[str, float] = field(default_factory=lambda: {"view": 1.0, "add_to_cart": 3.0, "purchase": 5.0})
    # Event types that mean "bought": exclude-purchased, bought-together and the campaigns'
    # already-bought filter read these (each must be in event_weights).
    purchase_events: tuple[str, ...] = ("purchase",)
    consent_purposes: tuple[str, ...] = ("personalization", "marketing")
    als: ALSSettings = field(default_factory=ALSSettings)
    ease: EASESettings = field(default_factory=EASESettings)
    itemgraph: ItemGraphSettings = field(default_factory=ItemGraphSettings)
    evaluation: EvaluationSettings = field(default_factory=EvaluationSettings)
    serve: ServeSettings = field(default_factory=ServeSettings)
    campaigns: CampaignSettings = field(default_factory=CampaignSettings)
    privacy: PrivacySettings = field(default_factory=PrivacySettings)
    models: RetentionSettings = field(default_factory=RetentionSettings)
    time: TimeSettings = field(default_factory=TimeSettings)
    gate: GateSettings = field(default_factory=GateSettings)
    selection: SelectionSettings = field(default_factory=SelectionSettings)
    online: OnlineSettings = field(default_factory=OnlineSettings)
    ann: AnnSettings = field(default_factory=AnnSettings)
    value: ValueSettings = field(default_factory=ValueSettings)

    @property
    def event_types(self) -> tuple[str, ...]:
        return tuple(self.event_weights)

    def to_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out["db"] = str(self.db)
        out["model_dir"] = str(self.model_dir)
        out["consent_purposes"] = list(self.consent_purposes)
        out["purchase_events"] = list(self.purchase_events)
        out["privacy"]["key_file"] = str(self.privacy.key_file)
        out["online"]["click_events"] = list(self.online.click_events)
        out["online"]["cart_events"] = list(self.online.cart_events)
        return out


def _coerce(value: Any, current: Any, name: str) -> Any:
    """Convert a TOML or environment value to the type of the default it replaces."""
    try:
        if isinstance(current, bool):
            if isinstance(value, str):
                low = value.strip().lower()
                if low in {"1", "true", "yes", "on"}:
                    return True
                if low in {"0", "false", "no", "off"}:
                    return False
                raise ValueError(value)
            return bool(value)
        if isinstance(current, int):
            return int(value)
        if isinstance(current, float):
            return float(value)
        if isinstance(current, Path):
            return Path(value)
        if isinstance(current, dict):
            if isinstance(value, str):
                pairs = (item.split("=", 1) for item in value.split(",") if item.strip())
                value = {k.strip(): v for k, v in pairs}
            return {str(k): float(v) for k, v in dict(value).items()}
        if isinstance(current, tuple):
            if isinstance(value, str):
                value = [v.strip() for v in value.split(",") if v.strip()]
            kind = float if current and isinstance(current[0], float) else str
            return tuple(kind(v) for v in value)
        return str(value)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"setting {name}: cannot use {value!r} ({exc})") from None


def _apply(target: Any, values: Mapping[str, Any], prefix: str = "") -> None:
    for key, value in values.items():
        name = f"{prefix}{key}"
        if not hasattr(target, key):
            raise ConfigError(f"unknown setting {name!r}")
        current = getattr(target, key)
        if dataclasses.is_dataclass(current):
            if not isinstance(value, Mapping):
                raise ConfigError(f"setting {name} must be a table")
            _apply(current, value, prefix=f"{name}.")
        else:
            setattr(target, key, _coerce(value, current, name))


def _from_env(settings: Settings, environ: Mapping[str, str]) -> None:
    for f in dataclasses.fields(settings):
        current = getattr(settings, f.name)
        if dataclasses.is_dataclass(current):
            for sub in dataclasses.fields(current):
                var = f"{ENV_PREFIX}{f.name}_{sub.name}".upper()
                if var in environ:
                    _apply(current, {sub.name: environ[var]}, prefix=f"{f.name}.")
        else:
            var = f"{ENV_PREFIX}{f.name}".upper()
            if var in environ:
                _apply(settings, {f.name: environ[var]})


def load_settings(
    path: str | Path | None = None,
    environ: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> Settings:
    """Build the settings from defaults, an optional TOML file, the environment and overrides."""
    environ = os.environ if environ is None else environ
    settings = Settings()
    if path is None:
        path = environ.get(f"{ENV_PREFIX}CONFIG")
        if path is None and Path("recommender.toml").is_file():
            path = "recommender.toml"
    if path is not None:
        try:
            with open(path, "rb") as fh:
                data = tomllib.load(fh)
        except FileNotFoundError:
            raise ConfigError(f"config file not found: {path}") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{path}: invalid TOML: {exc}") from None
        _apply(settings, data)
    _from_env(settings, environ)
    if overrides:
        _apply(settings, overrides)
    anchor_paths(settings)
    validate(settings)
    return settings


def anchor_paths(settings: Settings) -> None:
    """Resolve a relative ``model_dir`` against the database's folder, never the current directory.

    A cron job that forgets to ``cd``, or a campaign run with ``--db
    /srv/shop/shop.db`` from elsewhere, must find the same models as the server.
    """
    base = Path(os.path.abspath(settings.db)).parent
    if not settings.model_dir.is_absolute():
        settings.model_dir = base / settings.model_dir
    key = settings.privacy.key_file
    if str(key) in ("", "."):
        # A database that already has its key beside it (``shop.db.key``) keeps it: tombstones made with it
        # must stay matchable. A new database gets it in its private folder, which git ignores.
        beside = Path(os.path.abspath(settings.db) + ".key")
        settings.privacy.key_file = beside if beside.exists() else private_folder_of(settings.db) / "tombstone.key"
    elif not key.is_absolute():
        settings.privacy.key_file = base / key


def validate(settings: Settings) -> None:
    if not settings.event_weights:
        raise ConfigError("event_weights must name at least one event type")
    if any(w <= 0 for w in settings.event_weights.values()):
        raise ConfigError("event weights must be positive")
    als = settings.als
    if als.factors < 1 or als.iterations < 1:
        raise ConfigError("als.factors and als.iterations must be >= 1")
    if als.regularization < 0 or als.alpha <= 0:
        raise ConfigError("als.regularization must be >= 0 and als.alpha > 0")
    if als.refit_iterations < 0:
        raise ConfigError("als.refit_iterations must be >= 0")
    if als.half_life_days < 0:
        raise ConfigError("als.half_life_days must be >= 0 (0 = no decay)")
    if settings.ease.regularization <= 0 or settings.ease.max_items < 1:
        raise ConfigError("ease.regularization must be > 0 and ease.max_items >= 1")
    if not 0 <= settings.serve.new_product_share <= 1 or settings.serve.new_product_days < 0:
        raise ConfigError("serve.new_product_share must be in [0, 1] and serve.new_product_days >= 0")
    ig = settings.itemgraph
    if ig.method not in ("rp3beta", "itemknn"):
        raise ConfigError(f"itemgraph.method must be rp3beta or itemknn, not {ig.method!r}")
    if ig.neighbours < 1 or ig.alpha <= 0 or ig.beta < 0 or ig.shrink < 0:
        raise ConfigError(
            "itemgraph.neighbours must be >= 1, itemgraph.alpha > 0, itemgraph.beta and itemgraph.shrink >= 0"
        )
    if not 0 < settings.evaluation.cut_quantile < 1:
        raise ConfigError("evaluation.cut_quantile must be between 0 and 1")
    if settings.evaluation.k < 1:
        raise ConfigError("evaluation.k must be >= 1")
    unknown = [e for e in settings.purchase_events if e not in settings.event_weights]
    # The default names "purchase"; a shop without any buying event (views and likes only)
    # simply has none. A list the operator set must name configured types.
    if unknown and tuple(settings.purchase_events) != ("purchase",):
        raise ConfigError(
            f"purchase_events {', '.join(unknown)} not in event_weights ({', '.join(settings.event_weights)})"
        )
    if settings.models.keep_previous < 0 or settings.models.max_age_days < 0:
        raise ConfigError("models.keep_previous and models.max_age_days must be >= 0")
    g = settings.gate
    if (
        g.tolerance < 0
        or not 0 <= g.max_future_share <= 1
        or not 0 <= g.min_nonzero_share <= 1
        or not 0 <= g.max_data_drop <= 1
    ):
        raise ConfigError("gate.tolerance must be >= 0 and the gate shares between 0 and 1")
    if settings.time.max_future_seconds < 0:
        raise ConfigError("time.max_future_seconds must be >= 0")
    sel = settings.selection
    if (
        sel.max_seconds <= 0
        or sel.switch_margin < 0
        or any(h < 0 for h in sel.half_lives)
        or any(v <= 0 for v in (*sel.als_scales, *sel.ease_scales, *sel.graph_neighbours, *sel.graph_alphas))
        or any(b < 0 for b in sel.graph_betas)
        or any(not 0 < w < 1 for w in sel.blend_weights)
    ):
        raise ConfigError(
            "selection: max_seconds, scales, neighbours and alphas must be > 0, half-lives and betas "
            ">= 0, blend weights between 0 and 1"
        )
    if any(not 0 < q < 1 for q in sel.folds) or sel.tie_standard_errors < 0:
        raise ConfigError(
            "selection: folds must be between 0 and 1 (quantiles of the training period), tie_standard_errors >= 0"
        )
    if (
        sel.every_days < 0
        or not 0 <= sel.losing_ground_share < 1
        or sel.losing_ground_standard_errors < 0
        or sel.max_memory_bytes < 0
    ):
        raise ConfigError(
            "selection: every_days, losing_ground_standard_errors and max_memory_bytes must be >= 0, "
            "losing_ground_share between 0 and 1"
        )
    if settings.privacy.max_stale_hours <= 0:
        raise ConfigError("privacy.max_stale_hours must be > 0")
    o = settings.online
    if not 0 <= o.control_share <= 1 or not 0 <= o.challenger_share <= 1 or o.control_share + o.challenger_share > 1:
        raise ConfigError(
            "online.control_share and online.challenger_share must be between 0 and 1, and together at most 1"
        )
    if o.challenger_share > 0 and not o.challenger:
        raise ConfigError("online.challenger_share needs online.challenger (a model version)")
    if o.window_hours <= 0:
        raise ConfigError("online.window_hours must be > 0")
    if not o.max_price_factor >= 1 or not o.max_quantity > 0:
        raise ConfigError("online.max_price_factor must be >= 1 and online.max_quantity > 0")
    v = settings.value
    if v.purpose not in settings.consent_purposes:
        raise ConfigError(f"value.purpose {v.purpose!r} is not one of consent_purposes")
    if not v.horizons or any(h <= 0 for h in v.horizons) or v.evaluation_days <= 0 or v.bootstrap < 0:
        raise ConfigError("value: horizons and evaluation_days must be > 0, bootstrap >= 0")
    a = settings.ann
    if (
        a.min_products < 0
        or a.lists < 0
        or a.probes < 0
        or a.candidates < 1
        or not 0 < a.target_recall <= 1
        or not 0 <= a.min_allowed_share <= 1
    ):
        raise ConfigError(
            "ann: min_products, lists, probes must be >= 0, candidates >= 1, "
            "target_recall in (0, 1], min_allowed_share in [0, 1]"
        )


def to_toml(settings: Settings) -> str:
    """Render the tunable parts of the settings as a TOML document."""
    lines = ["[event_weights]"]
    lines += [f"{k} = {float(v)!r}" for k, v in settings.event_weights.items()]
    lines.append("")
    lines.append("[als]")
    for f in dataclasses.fields(settings.als):
        value = getattr(settings.als, f.name)
        lines.append(f"{f.name} = " + (str(value).lower() if isinstance(value, bool) else repr(value)))
    return "\n".join(lines) + "\n"
