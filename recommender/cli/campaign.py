"""``recommender campaign``: occasion offers from the command line, a thin face over :mod:`recommender.campaigns`."""

from __future__ import annotations

from pathlib import Path

import click

from recommender import campaigns
from recommender.campaigns import kinds
from recommender.cli.common import EngineGroup, emit, json_option, open_db, with_settings
from recommender.config import Settings


@click.group(cls=EngineGroup)
def campaign() -> None:
    """Birthday, anniversary and lifecycle offers (win-back, second purchase, thank-you).

    Only customers with marketing consent get offers; the ledger never holds two offers for
    the same customer, occasion and year (lifecycle kinds: one per configured period), and a
    customer holding a live offer of any kind gets no other, so reruns and overlapping
    windows are harmless.
    """


@campaign.command("run")
@with_settings
@click.option(
    "--occasion",
    type=click.Choice(list(kinds.CHOICES)),
    required=True,
    help="Which kind: birthday, anniversary, winback, second_purchase, thank_you; all = birthday and "
    "anniversary; lifecycle = the three lifecycle kinds; every = all five.",
)
@click.option(
    "--date",
    "date",
    default=None,
    metavar="YYYY-MM-DD",
    help="Run date, read as 12:00 UTC that day [default: now]. Each customer's window starts at "
    "their local date at that instant.",
)
@click.option(
    "--at", "at", default=None, metavar="TIMESTAMP", help="Run at this exact ISO 8601 instant instead of --date."
)
@click.option(
    "--days-ahead",
    type=click.IntRange(0, 366),
    default=7,
    show_default=True,
    help="Window length: occasions from the local run date to this many days later, both included.",
)
@click.option(
    "--items",
    type=click.IntRange(1, campaigns.MAX_ITEMS),
    default=None,
    help="Products per offer [default: campaigns.items, 3].",
)
@click.option(
    "--max-per-product",
    type=click.IntRange(min=1),
    default=None,
    help="Offer no product to more customers than this, counting earlier offers still valid "
    "[default: its stock; untracked = no limit].",
)
@click.option(
    "--dry-run",
    is_flag=True,
    help="Compute and report (and export) but write nothing to the ledger. An export is marked as a "
    "preview: column preview=true and codes PREVIEW-... that no checkout accepts.",
)
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Export one row per offer to this .csv or .jsonl file (CSV cells are made safe to open in a "
    "spreadsheet). Its folder must exist; an existing file is kept unless --force.",
)
@click.option("--force", is_flag=True, help="Replace an existing --out file.")
@json_option
def run_command(
    settings: Settings,
    occasion: str,
    date: str | None,
    at: str | None,
    days_ahead: int,
    items: int | None,
    max_per_product: int | None,
    dry_run: bool,
    out: Path | None,
    force: bool,
    as_json: bool,
) -> None:
    """Make the offers for occasions in the coming days, as one all-or-nothing transaction.

    Stock caps count the offers already made and still valid, so daily runs never promise more
    units than exist; the summary says how many customers got a lower choice because of a cap.
    """
    request = campaigns.CampaignRequest(
        occasion=occasion, date=date, at=at, days_ahead=days_ahead, items=items, max_per_product=max_per_product
    )
    result = campaigns.run(open_db(settings), settings, request, dry_run=dry_run, out=out, force=force)
    emit(as_json, result.summary(), result.human())
