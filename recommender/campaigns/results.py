"""What a campaign is asked for and what it answers: request, offers, the run's summary."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

EXPORT_COLUMNS = (
    "customer_id",
    "email",
    "name",
    "occasion",
    "date",
    "code",
    "discount",
    "valid_from",
    "valid_until",
    "product_ids",
    "product_names",
    "preview",
    "list_id",
)
EXPORT_FORMATS = (".csv", ".jsonl")
MAX_ITEMS = 20
CODE_PREFIX = {
    "birthday": "BDAY",
    "anniversary": "ANNV",
    "winback": "BACK",
    "second_purchase": "NEXT",
    "thank_you": "THNX",
}
# A dry run's codes start with this; the ledger refuses any code that does.
PREVIEW_PREFIX = "PREVIEW-"


@dataclass(frozen=True)
class CampaignRequest:
    """What a marketer asks for; ``None`` means the configured default."""

    occasion: str = "all"
    date: str | None = None
    at: str | None = None
    days_ahead: int = 7
    items: int | None = None
    max_per_product: int | None = None
    # Only customers whose stored value segment is one of these (empty: no filter); see eligibility.in_segments.
    segments: tuple[str, ...] = ()


@dataclass
class Offer:
    customer_id: str
    email: str | None
    name: str | None
    occasion: str
    date: str
    occasion_year: int
    code: str | None  # None for a held-out customer: recorded, never sent
    discount: float
    valid_from: str
    valid_until: str
    product_ids: list[str]
    product_names: list[str]
    mode: str
    reason: str | None
    # The offer's id for online measurement, given when the ledger records it (a preview has none).
    list_id: str | None = None
    # The customer's local run date: where the report's windows start.
    offered_on: str | None = None
    # A lifecycle kind's decision inputs (kind, rule, threshold crossed); None for occasions.
    why: str | None = None
    held_out: bool = False

    @property
    def preview(self) -> bool:
        return bool(self.code) and self.code.startswith(PREVIEW_PREFIX)

    def export_row(self) -> dict[str, Any]:
        return {c: getattr(self, c) for c in EXPORT_COLUMNS}


@dataclass
class CampaignResult:
    campaign_id: str
    dry_run: bool
    run_at: str
    days_ahead: int
    occasions: tuple[str, ...]
    items: int
    model_version: str | None
    offers: list[Offer] = field(default_factory=list)
    # Eligible customers in the offers' holdout (campaigns.holdout_share): in the ledger, no code, not exported.
    held_out: list[Offer] = field(default_factory=list)
    skipped: dict[str, dict[str, int]] = field(default_factory=dict)
    out: str | None = None
    seconds: float = 0.0
    # Customers whose offer holds a lower choice of theirs because a better one was full,
    # by the rank (in their own ranking) of the first product they got: "2nd", "3rd", "later".
    capped: dict[str, int] = field(default_factory=lambda: {"2nd": 0, "3rd": 0, "later": 0})
    capped_customers: int = 0
    # Units already promised by earlier offers still valid, per product id (caps subtract them).
    outstanding: dict[str, int] = field(default_factory=dict)
    product_cap: int | None = None  # the per-run cap from campaigns.max_product_share

    def made(self) -> dict[str, int]:
        return {o: sum(1 for x in self.offers if x.occasion == o) for o in self.occasions}

    def held(self) -> dict[str, int]:
        return {o: sum(1 for x in self.held_out if x.occasion == o) for o in self.occasions}

    def summary(self) -> dict[str, Any]:
        """The run in numbers: offers per occasion, skips per reason (total and per occasion), caps."""
        totals: dict[str, int] = {}
        for reasons in self.skipped.values():
            for reason, n in reasons.items():
                totals[reason] = totals.get(reason, 0) + n
        modes: dict[str, int] = {}
        for o in self.offers:
            modes[o.mode] = modes.get(o.mode, 0) + 1
        return {
            "campaign_id": self.campaign_id,
            "dry_run": self.dry_run,
            "written": not self.dry_run,
            "run_at": self.run_at,
            "days_ahead": self.days_ahead,
            "items": self.items,
            "model_version": self.model_version,
            "offers": self.made(),
            "offers_total": len(self.offers),
            "held_out": self.held(),
            "held_out_total": len(self.held_out),
            "short_offers": sum(1 for o in self.offers if len(o.product_ids) < self.items),
            "modes": modes,
            "skipped": totals,
            "skipped_by_occasion": self.skipped,
            "out": self.out,
            "capped_choices": self.capped_customers,
            "capped_first_pick": dict(self.capped),
            "outstanding_units": sum(self.outstanding.values()),
            "product_cap": self.product_cap,
            "seconds": round(self.seconds, 3),
        }

    def human(self) -> str:
        s = self.summary()
        head = f"campaign {self.campaign_id}" + (" (dry run: nothing written to the ledger)" if self.dry_run else "")
        lines = [
            head,
            f"run at {self.run_at}, window: each customer's local date + {self.days_ahead} days",
            "offers: " + ", ".join(f"{k} {v:,}" for k, v in s["offers"].items()) + f" (total {len(self.offers):,})",
        ]
        if self.held_out:
            lines.append(
                "held out (recorded, not sent, for measurement): "
                + ", ".join(f"{k} {v:,}" for k, v in s["held_out"].items() if v)
            )
        skipped = {k: v for k, v in s["skipped"].items() if v}
        lines.append("skipped: " + (", ".join(f"{k} {v:,}" for k, v in sorted(skipped.items())) or "none"))
        lines.append(
            f"capped: {self.capped_customers:,} customer(s) got a lower choice because a product was full"
            f" (first product their 2nd choice: {self.capped['2nd']:,}, 3rd: {self.capped['3rd']:,},"
            f" later: {self.capped['later']:,}); {s['outstanding_units']:,} unit(s) already promised"
            " by earlier offers still valid"
        )
        if self.out:
            lines.append(
                f"export: {self.out} ({len(self.offers):,} rows"
                + (", PREVIEW: codes not usable)" if self.dry_run else ")")
            )
        lines.append(f"{self.seconds:.1f} s")
        return "\n".join(lines)
