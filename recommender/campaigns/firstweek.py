"""A shop's first week as a checklist: data in, consent, model, first campaign, measurement on.

Each step says whether it is done, what is missing, and the command (or console
page) that fixes it. The CLI's import hints and the console's overview read the
same :func:`checklist`, so both faces say the same thing.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import sqlite_utils

from recommender import store
from recommender.config import Settings
from recommender.models.registry import Registry
from recommender.store.consents import MARKETING, PERSONALIZATION

CUSTOMERS_FIX = "recommender import customers --map shopify customers.csv"
PRESET_NOTE = "presets: shopify, woocommerce, magento; see docs/operations.md"
CONSENTS_FIX = "recommender import consents consents.csv"
ORDERS_FIX = "recommender import-transactions orders.csv"
TRAIN_FIX = "recommender train --publish"
CAMPAIGN_FIX = "recommender campaign run --occasion all --days-ahead 7"
CAMPAIGN_PAGE = "/console/campaigns"
CONTROL_SHARE_HINT = 0.1
MEASURE_FIX = f"add [online] control_share = {CONTROL_SHARE_HINT} to recommender.toml and restart the server"


@dataclass(frozen=True)
class Step:
    """One line of the checklist: ``status`` says what is there or what is missing; ``fix`` how to fix it."""

    key: str
    title: str
    done: bool
    status: str
    fix: str = ""
    page: str = ""
    page_label: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Checklist:
    steps: tuple[Step, ...]
    counts: dict[str, int]

    @property
    def done(self) -> bool:
        return all(s.done for s in self.steps)

    def to_dict(self) -> dict[str, Any]:
        return {"done": self.done, "steps": [s.to_dict() for s in self.steps], "counts": self.counts}


def _n(n: int, word: str) -> str:
    return f"{n:,} {word}{'' if n == 1 else 's'}"


def counts(db: sqlite_utils.Database, settings: Settings) -> dict[str, int]:
    return store.first_week_counts(db, settings.consent_purposes, MARKETING)


def missing_for_campaigns(c: dict[str, int]) -> list[str]:
    """What an occasion campaign lacks: birthdays (or anniversaries), e-mails, marketing consent."""
    out = []
    if c["with_occasion"] == 0:
        out.append("birthdays")
    if c["with_email"] == 0:
        out.append("e-mails")
    if c.get(f"granted:{MARKETING}", 0) == 0:
        out.append("marketing consent")
    return out


def customer_file_hint(c: dict[str, int]) -> str:
    """One line for a shop with orders but no customer data, or "" when campaigns have what they need."""
    missing = missing_for_campaigns(c)
    if not missing or c["customers"] == 0:
        return ""
    words = ", ".join(missing[:-1]) + (" and " if len(missing) > 1 else "") + missing[-1]
    return (
        f"campaigns need {words}, which an order file does not carry: import the shop's "
        f"customer export with `{CUSTOMERS_FIX}` ({PRESET_NOTE})"
    )


def consent_hint(c: dict[str, int]) -> str:
    """One line when no customer has personalization consent (training would have nothing), else ""."""
    if c["customers"] == 0 or c.get(f"granted:{PERSONALIZATION}", 0) > 0:
        return ""
    return (
        "training needs personalization consent and no customer has it: if your shop's terms allow it, "
        "import the orders again with `--grant personalization` (it records consent for customers with no "
        f"decision yet); otherwise record each customer's decision with `{CONSENTS_FIX}`"
    )


def checklist(db: sqlite_utils.Database, settings: Settings) -> Checklist:
    """The five first-week steps over the database, the model registry and the settings."""
    c = counts(db, settings)
    steps = [_data_step(c), _consent_step(c), _model_step(settings), _campaign_step(c), _measure_step(settings)]
    return Checklist(tuple(steps), c)


def _data_step(c: dict[str, int]) -> Step:
    if c["events"] == 0:
        return Step("data", "Data in", False, "No orders yet: nothing to learn from.", ORDERS_FIX)
    missing = [m for m in missing_for_campaigns(c) if m != "marketing consent"]
    if missing:
        return Step(
            "data",
            "Data in",
            False,
            f"Orders are in ({_n(c['customers'], 'customer')}), but no {' or '.join(missing)} for "
            "campaigns: add the shop's customer export.",
            CUSTOMERS_FIX,
        )
    return Step(
        "data",
        "Data in",
        True,
        f"Orders and {_n(c['customers'], 'customer')}: {c['with_occasion']:,} with a birthday or "
        f"anniversary, {c['with_email']:,} with an e-mail.",
    )


def _consent_step(c: dict[str, int]) -> Step:
    personal, marketing = c.get(f"granted:{PERSONALIZATION}", 0), c.get(f"granted:{MARKETING}", 0)
    if c["customers"] and personal == 0:
        return Step(
            "consent",
            "Consent",
            False,
            "No customer has agreed to personalization, and the model learns only from those who have.",
            f"{CONSENTS_FIX} (or import-transactions --grant personalization, if your terms allow it)",
        )
    if c["customers"] and c["reachable"] == 0:
        why = (
            "No customer has agreed to marketing"
            if marketing == 0
            else "None of the customers who agreed to marketing has a birthday or anniversary"
        )
        return Step(
            "consent",
            "Consent",
            False,
            f"{why}: a campaign has nobody to send to.",
            f"{CUSTOMERS_FIX} (its Accepts Email Marketing column), or {CONSENTS_FIX}",
        )
    if c["customers"] == 0:
        return Step("consent", "Consent", False, "No customers yet.", ORDERS_FIX)
    return Step(
        "consent",
        "Consent",
        True,
        f"{personal:,} agreed to personalization, {marketing:,} to marketing ({c['reachable']:,} of them "
        "with a birthday or anniversary).",
    )


def _model_step(settings: Settings) -> Step:
    version = Registry(settings.model_dir).current_version()
    if version is None:
        return Step("model", "Model", False, "No model is live: customers see bestsellers.", TRAIN_FIX)
    return Step("model", "Model", True, "A model is live.")


def _campaign_step(c: dict[str, int]) -> Step:
    if c["offers"] == 0:
        return Step(
            "campaign",
            "First campaign",
            False,
            "No campaign has run yet.",
            CAMPAIGN_FIX,
            CAMPAIGN_PAGE,
            "the Campaigns page: preview, then run",
        )
    return Step("campaign", "First campaign", True, f"{_n(c['offers'], 'offer')} made.")


def _measure_step(settings: Settings) -> Step:
    if not settings.privacy.decision_log:
        return Step(
            "measure",
            "Measurement on",
            False,
            "The decision log is off (privacy.decision_log): no list is recorded, so none can be measured.",
            "set [privacy] decision_log = true in recommender.toml and restart the server",
        )
    if settings.online.control_share <= 0:
        return Step(
            "measure",
            "Measurement on",
            False,
            "Nobody is held back for comparison, so whether it earns cannot be measured.",
            MEASURE_FIX,
        )
    return Step(
        "measure",
        "Measurement on",
        True,
        f"{settings.online.control_share * 100:.0f} % of customers get bestsellers for comparison.",
    )
