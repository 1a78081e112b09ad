#!/usr/bin/env python
"""Cron entry point for retraining: the same job as `recommender train --publish`.

Exit status: 0 published (or trained, with --no-publish), 1 error,
3 the release gate kept the current model. One JSON line on stdout for logs.
Whatever the gate decides, the housekeeping runs after it (decision-log and
model retention, registry repair, WAL checkpoint) and its JSON says what it removed.

    # every night at 03:15
    15 3 * * *  cd /srv/shop && RECOMMENDER_DB=/srv/shop/shop.db python scripts/retrain.py >> retrain.log 2>&1
"""

from __future__ import annotations

import argparse
import json
import sys

from recommender import store
from recommender.config import load_settings
from recommender.data import bulk
from recommender.errors import GateRefused, RecommenderError
from recommender.training import run as training

EXIT_REFUSED = 3


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", help="SQLite database [default: $RECOMMENDER_DB or ./recommender.db]")
    parser.add_argument("--config", help="TOML settings file")
    parser.add_argument("--engine", default="implicit", choices=["implicit", "spark"])
    parser.add_argument("--no-publish", action="store_true", help="Train and evaluate only.")
    parser.add_argument("--force", action="store_true", help="Publish even if the release gate refuses.")
    args = parser.parse_args(argv)
    try:
        settings = load_settings(args.config, overrides={"db": args.db} if args.db else None)
        db = store.connect(settings.db)
    except RecommenderError as exc:
        print(json.dumps({"status": "error", "reason": str(exc)}))
        print(f"error: {exc}", file=sys.stderr)
        return 1
    outcome: dict = {}
    code = 0
    with bulk.terminate_cleanly():
        try:
            result = training.train(db, settings, engine=args.engine, publish=not args.no_publish, force=args.force)
            outcome = {"status": "published" if result.published else "trained", **result.to_dict()}
        except GateRefused as exc:
            outcome, code = {"status": "refused", "reason": str(exc)}, EXIT_REFUSED
            outcome["maintenance"] = getattr(exc, "maintenance", None)
        except RecommenderError as exc:
            outcome, code = {"status": "error", "reason": str(exc)}, 1
            outcome["maintenance"] = getattr(exc, "maintenance", None)
            print(f"error: {exc}", file=sys.stderr)
    print(json.dumps(outcome, sort_keys=True, default=str))
    return code


if __name__ == "__main__":
    sys.exit(main())
