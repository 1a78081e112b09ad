#!/usr/bin/env python
"""Cron entry point for occasion campaigns: the same job as `recommender campaign run`.

Exit status: 0 done (also when there was nobody to offer to), 1 error. One JSON
line (the run's summary) on stdout for logs. Running it daily with a window of
a week is safe: the offers ledger never sends a customer a second offer for the
same occasion and year, so each customer is offered once, on the first run that
sees their occasion.

    # every morning at 06:00 UTC: occasions in the next 7 days
    0 6 * * *  cd /srv/shop && RECOMMENDER_DB=/srv/shop/shop.db python scripts/run_campaign.py \\
               --occasion all --days-ahead 7 --out /srv/shop/offers/$(date +\\%F).csv >> campaign.log 2>&1
"""

from __future__ import annotations

import argparse
import json
import sys

from recommender import campaigns, store
from recommender.config import load_settings
from recommender.errors import RecommenderError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", help="SQLite database [default: $RECOMMENDER_DB or ./recommender.db]")
    parser.add_argument("--config", help="TOML settings file")
    parser.add_argument(
        "--occasion",
        choices=["birthday", "anniversary", "winback", "second_purchase", "thank_you", "all", "lifecycle", "every"],
        default="all",
    )
    parser.add_argument("--date", help="Run date YYYY-MM-DD, read as 12:00 UTC [default: now]")
    parser.add_argument("--at", help="Run at this ISO 8601 instant instead")
    parser.add_argument("--days-ahead", type=int, default=7)
    parser.add_argument("--items", type=int, default=None)
    parser.add_argument("--max-per-product", type=int, default=None)
    parser.add_argument("--dry-run", action="store_true", help="Write nothing to the ledger.")
    parser.add_argument("--out", help="Export offers to this .csv or .jsonl file (its folder must exist)")
    parser.add_argument("--force", action="store_true", help="Replace an existing --out file")
    args = parser.parse_args(argv)
    try:
        settings = load_settings(args.config, overrides={"db": args.db} if args.db else None)
        request = campaigns.CampaignRequest(
            occasion=args.occasion,
            date=args.date,
            at=args.at,
            days_ahead=args.days_ahead,
            items=args.items,
            max_per_product=args.max_per_product,
        )
        result = campaigns.run(
            store.connect(settings.db), settings, request, dry_run=args.dry_run, out=args.out, force=args.force
        )
    except RecommenderError as exc:
        print(json.dumps({"status": "error", "reason": str(exc)}))
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(json.dumps({"status": "done", **result.summary()}, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
