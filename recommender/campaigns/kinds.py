"""Campaign kinds: the two dated occasions and the three lifecycle kinds, their settings and names.

- ``birthday``, ``anniversary``: the date falls in the customer's window; once per occasion year.
- ``winback``: spend so far in the top ``winback_spend_top`` (20 %) of profiled customers and
  ``p_active`` below ``winback_p_active_below`` (0.30); once per ``winback_every_days`` (180).
- ``second_purchase``: exactly one purchase day, ``second_purchase_after_days`` (30) to
  ``second_purchase_within_days`` (90) days before the run; ``second_purchase_every_days`` (0 = once ever).
- ``thank_you``: value segment in ``thank_you_segments`` (champions); once per ``thank_you_every_days`` (365).

Every kind needs marketing consent; one live offer per customer across all kinds, the
first kind of ``campaigns.priority`` winning within a run.
"""

from __future__ import annotations

from recommender.config import CampaignSettings
from recommender.errors import ConfigError, ValidationError

OCCASIONS = ("birthday", "anniversary")
LIFECYCLE = ("winback", "second_purchase", "thank_you")
KINDS = OCCASIONS + LIFECYCLE
# Kinds read from the value model: only customers with the profiling consent have a score.
VALUE_KINDS = ("winback", "thank_you")
# What --occasion may name besides one kind. "all" keeps its meaning from before the lifecycle
# kinds (the dated occasions), so a cron line written for it sends nothing new.
ALIASES = {"all": OCCASIONS, "lifecycle": LIFECYCLE, "every": KINDS}
CHOICES = KINDS + tuple(ALIASES)


def parse(occasion: str) -> tuple[str, ...]:
    """The kinds an ``--occasion`` value names."""
    if occasion in ALIASES:
        return ALIASES[occasion]
    if occasion in KINDS:
        return (occasion,)
    raise ValidationError(f"occasion must be one of {', '.join(CHOICES)}, got {occasion!r}")


def discount(conf: CampaignSettings, kind: str) -> float:
    """Percent off for ``kind``: ``campaigns.discounts`` for occasions, ``<kind>_discount`` otherwise."""
    if kind in OCCASIONS:
        return float(conf.discounts.get(kind, 0))
    return float(getattr(conf, f"{kind}_discount"))


def valid_days(conf: CampaignSettings, kind: str) -> int:
    return int(getattr(conf, f"{kind}_valid_days"))


def every_days(conf: CampaignSettings, kind: str) -> int:
    """The ledger rule's period of a lifecycle kind, in days (0 = once ever)."""
    return int(getattr(conf, f"{kind}_every_days"))


def max_customers(conf: CampaignSettings, kind: str) -> int:
    return int(getattr(conf, f"{kind}_max_customers"))


def rule(conf: CampaignSettings, kind: str) -> str:
    """The ledger rule in words."""
    if kind in OCCASIONS:
        return "once per occasion year"
    days = every_days(conf, kind)
    return "once ever" if days == 0 else f"once per {days} days"


def check(conf: CampaignSettings, kinds: tuple[str, ...]) -> None:
    """Our ConfigError for any setting of ``kinds`` (and of the priority and holdout) a run cannot use."""
    for kind in kinds:
        if not 0 < discount(conf, kind) < 100:
            where = "campaigns.discounts needs a" if kind in OCCASIONS else f"campaigns.{kind}_discount must be a"
            raise ConfigError(f"{where} {kind} discount between 0 and 100 (percent)")
        if kind in LIFECYCLE and (
            valid_days(conf, kind) < 0 or every_days(conf, kind) < 0 or max_customers(conf, kind) < 0
        ):
            raise ConfigError(f"campaigns.{kind}_valid_days, _every_days and _max_customers must be >= 0")
    if "winback" in kinds and not (0 < conf.winback_p_active_below <= 1 and 0 < conf.winback_spend_top <= 1):
        raise ConfigError("campaigns.winback_p_active_below and winback_spend_top must be > 0 and <= 1")
    if "second_purchase" in kinds and not 0 <= conf.second_purchase_after_days <= conf.second_purchase_within_days:
        raise ConfigError("campaigns: need 0 <= second_purchase_after_days <= second_purchase_within_days")
    if sorted(conf.priority) != sorted(KINDS):
        raise ConfigError(f"campaigns.priority must name every kind once: {', '.join(KINDS)}")
    if not 0 <= conf.holdout_share < 1 or any(k not in KINDS for k in conf.holdout_kinds):
        raise ConfigError(f"campaigns.holdout_share must be >= 0 and < 1, and holdout_kinds among {', '.join(KINDS)}")
