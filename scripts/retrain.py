#!/usr/bin/env python
"""Cron entry point for retraining: the same job as `recommender train --publish`.

Exit status: 0 published (or trained, with --no-publish), 1 error,
3 the release gate kept the current model. One JSON line on stdout for logs.

    # every night at 03:15
    15 3 * * *  cd /srv/shop && RECOMMENDER_DB=/srv/shop/shop.db python scripts/retrain.py >> retrain.log 2>&1
"""

from __future__ import annotations

import argparse
import json
import sys

from recommender import store, training
from recommender.config import load_settings
from recommender.errors import GateRefused, RecommenderError

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
        result = training.train(db, settings, engine=args.engine, publish=not args.no_publish, force=args.force)
    except GateRefused as exc:
        print(json.dumps({"status": "refused", "reason": str(exc)}))
        return EXIT_REFUSED
    except RecommenderError as exc:
        print(json.dumps({"status": "error", "reason": str(exc)}))
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(json.dumps({"status": "published" if result.published else "trained", **result.to_dict()}, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
