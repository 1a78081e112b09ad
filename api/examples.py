"""One example request and response per operation, for the OpenAPI document and ``/docs``.

Written by hand from the demo shop (``recommender load-sample``), trimmed to
a few items. tests/test_openapi.py validates every request against the
operation's body model and every response against its response model, so an
example cannot drift from the contract it illustrates.
"""

from __future__ import annotations

from typing import Any

VERSION = "20261201T083032Z-fb12f8"
_MUG = {
    "product_id": "P0004",
    "name": "Vintage Trinket Dish — Teal",
    "category": "home-decor",
    "price": 14.49,
    "in_stock": 6,
}
_TRAIN = {
    "product_id": "P0088",
    "name": "Botanical Wooden Train — Sage",
    "category": "toys",
    "price": 18.49,
    "in_stock": 50,
}
_CONSENTS = {
    "marketing": {
        "granted": False,
        "recorded": True,
        "source": "preference_centre",
        "updated_at": "2026-12-01T08:31:03Z",
    },
    "personalization": {"granted": True, "recorded": True, "source": "signup", "updated_at": "2023-01-07T18:50:36Z"},
}
_HISTORY = [
    {
        "purpose": "personalization",
        "old": None,
        "new": True,
        "source": "signup",
        "changed_at": "2023-01-07T18:50:36Z",
        "decided_at": "2023-01-07T18:50:36Z",
        "actor": "import:consents.csv",
    },
    {
        "purpose": "marketing",
        "old": True,
        "new": False,
        "source": "preference_centre",
        "changed_at": "2026-12-01T08:31:03Z",
        "decided_at": "2026-12-01T08:31:03Z",
        "actor": "key:2:storefront-admin",
    },
]
_SKIPPED = {
    "already_offered": 0,
    "malformed_date": 0,
    "missing_date": 164,
    "no_marketing_consent": 12,
    "no_products": 0,
    "unknown_timezone": 0,
}

_LIST = "3f9c2a7d41e84b0c9a6e5d2f1b7c8e90"  # a list id, as served
# a merchandising rule (docs/rules.md): two of the first ten slots go to candles, for one week in Auckland
_RULE = {
    "name": "candles-week",
    "owner": "marketing@shop.example",
    "surfaces": ["recommendations", "offers"],
    "schedule": {"start": "2026-12-01T00:00", "end": "2026-12-08T00:00", "timezone": "Pacific/Auckland"},
    "action": {"type": "promote", "condition": {"categories": ["candles"]}, "slots": 2, "of": 10},
}
_RULE_OUT = {
    "name": "candles-week",
    "owner": "marketing@shop.example",
    "description": "",
    "surfaces": ["recommendations", "offers"],
    "status": "active",
    "priority": 0,
    "schedule": {"start": "2026-12-01T00:00", "end": "2026-12-08T00:00", "timezone": "Pacific/Auckland"},
    "action": {"type": "promote", "condition": {"categories": ["candles"]}, "slots": 2, "of": 10},
    "created_at": "2026-11-28T09:12:40Z",
    "updated_at": "2026-11-28T09:12:40Z",
}

# "METHOD /openapi/path" -> {"path": {...}, "query": "...", "request": {...}, "response": {...}}
# one kind of the campaign report (recommender/campaigns/report.py), trimmed to the 90-day window
_ARM_90 = {
    "offers": 50,
    "customers": 50,
    "pending": 0,
    "revenue_per_customer": 27.76,
    "revenue_ci95": [14.11, 41.41],
    "repeat_rate": 0.38,
    "repeat_ci95": [0.245, 0.515],
    "revenue": 1388.0,
}
_HELD_90 = {
    "offers": 13,
    "customers": 13,
    "pending": 0,
    "revenue_per_customer": 14.65,
    "revenue_ci95": [-2.12, 31.41],
    "repeat_rate": 0.231,
    "repeat_ci95": [0.002, 0.46],
    "revenue": 190.45,
}
_CAMPAIGN_GROUP = {
    "kind": "second_purchase",
    "arms": {
        "sent": {"offers": 50, "customers": 50, "windows": {"90": _ARM_90}},
        "held_out": {"offers": 13, "customers": 13, "windows": {"90": _HELD_90}},
    },
    "uplift": {
        "90": {
            "n_sent": 50,
            "n_held_out": 13,
            "customers_sent": 50,
            "customers_held_out": 13,
            "revenue_per_customer": {"difference": 13.11, "relative": 0.895, "ci95": [-8.51, 34.73]},
            "repeat_rate": {"difference": 0.149, "relative": 0.646, "ci95": [-0.12, 0.42]},
            "incremental_revenue": 655.64,
            "incremental_ci95": [-425.43, 1736.7],
        }
    },
}

EXAMPLES: dict[str, dict[str, Any]] = {
    "GET /v1/customers/{customer_id}/recommendations": {
        "path": {"customer_id": "C0005"},
        "query": "n=2&explain=true",
        "response": {
            "mode": "personalized",
            "reason": None,
            "model_version": VERSION,
            "items": [
                {
                    **_MUG,
                    "score": 0.335151,
                    "because": [{"product_id": "P0058", "name": "Scandi Lip Balm — Charcoal", "weight": 0.047375}],
                },
                {
                    **_TRAIN,
                    "score": 0.223347,
                    "because": [{"product_id": "P0058", "name": "Scandi Lip Balm — Charcoal", "weight": 0.030778}],
                },
            ],
            "short": None,
            "list_id": _LIST,
            "arm": "model",
        },
    },
    "POST /v1/recommendations": {
        "request": {
            "products": [
                {"product_id": "P0058", "event_type": "view", "at": "2026-12-01T08:29:10Z"},
                {"product_id": "P0002", "event_type": "add_to_cart", "at": "2026-12-01T08:30:02Z"},
            ],
            "visitor_id": "v-5f1c0e7a",
            "n": 2,
            "diversity": 0.5,
        },
        "response": {
            "mode": "session",
            "reason": None,
            "model_version": VERSION,
            "items": [{**_MUG, "score": 0.812004}, {**_TRAIN, "score": 0.540117}],
            "short": None,
            "list_id": "9a1e4c7b2d0f48e6b3c5a7d9e1f20b64",
            "arm": None,
        },
    },
    "POST /v1/customers/{customer_id}/rerank": {
        "path": {"customer_id": "C0005"},
        "request": {"products": ["P0001", "P0002", "P0003"]},
        "response": {
            "mode": "personalized",
            "reason": None,
            "model_version": VERSION,
            "products": ["P0002", "P0003", "P0001"],
            "list_id": "b41d7e2a9c0f43e8a1d26b5f7e3c9a04",
            "arm": "model",
        },
    },
    "GET /v1/products/popular": {
        "query": "n=5&category=home-decor&max_price=12",
        "response": {
            "mode": "non_personalized",
            "reason": "popular",
            "model_version": VERSION,
            "days": None,
            "items": [
                {
                    "product_id": "P0288",
                    "name": "Recycled Wall Print — Ivory",
                    "category": "home-decor",
                    "price": 11.99,
                    "in_stock": 2,
                    "score": 66.0,
                },
                {
                    "product_id": "P0048",
                    "name": "Mini Trinket Dish — Slate",
                    "category": "home-decor",
                    "price": 10.49,
                    "in_stock": 40,
                    "score": 59.0,
                },
                {
                    "product_id": "P0069",
                    "name": "Vintage Doorstop — Mustard",
                    "category": "home-decor",
                    "price": 10.99,
                    "in_stock": 17,
                    "score": 48.0,
                },
            ],
            # fewer than n: products nobody interacted with, other categories and dearer ones were out
            "short": {"asked": 5, "returned": 3, "because": ["popular", "category", "max_price"]},
            "list_id": "5e0a9b3c7d2f4e61b8a4c0d9e2f7a135",
            "arm": None,
        },
    },
    "GET /v1/products/{product_id}/similar": {
        "path": {"product_id": "P0002"},
        "query": "n=1",
        "response": {
            "mode": "model",
            "reason": None,
            "model_version": VERSION,
            "items": [
                {
                    "product_id": "P0257",
                    "name": "Rustic Bath Salts — Forest",
                    "category": "beauty",
                    "price": 32.49,
                    "in_stock": 12,
                    "score": 0.999893,
                }
            ],
            "short": None,
            "list_id": "c7e21f0a5b9d4c38a6f3e1d0b9a2c457",
            "arm": None,
        },
    },
    "GET /v1/products/{product_id}/bought-together": {
        "path": {"product_id": "P0002"},
        "query": "n=1&in_stock_only=false",
        "response": {
            "mode": "cooccurrence",
            "reason": None,
            "model_version": VERSION,
            "items": [
                {
                    "product_id": "P0300",
                    "name": "Ceramic Bath Bomb — Blush",
                    "category": "beauty",
                    "price": 14.49,
                    "in_stock": 86,
                    "lift": 13.0072,
                }
            ],
            "short": None,
            "list_id": "0d8b6c4e2a1f47b3958e7c6d5a4b3f21",
            "arm": None,
        },
    },
    "POST /v1/events": {
        "request": {
            "events": [
                {
                    "customer_id": "C0005",
                    "product_id": "P0042",
                    "event_type": "purchase",
                    "quantity": 1,
                    "occurred_at": "2026-12-01T08:30:00Z",
                    "event_id": "order-1001-line-1",
                    "price": 12.99,
                },
                {
                    "customer_id": "C0005",
                    "product_id": "P0004",
                    "event_type": "view",
                    "event_id": "view-7f3a9c",
                    "list_id": _LIST,
                },
            ]
        },
        "response": {"accepted": 2, "duplicates": 0},
    },
    "GET /v1/customers/{customer_id}/offers": {
        "path": {"customer_id": "C0301"},
        "query": "date=2026-06-05",
        "response": {
            "customer_id": "C0301",
            "on": "2026-06-05",
            "offers": [
                {
                    "occasion": "birthday",
                    "occasion_year": 2026,
                    "code": "BDAY-QNPB-R36M-YSGI-BFP5",
                    "discount": 15.0,
                    "valid_from": "2026-06-01",
                    "valid_until": "2026-06-21",
                    "products": [{"product_id": "P0004", "name": "Vintage Trinket Dish — Teal"}],
                }
            ],
        },
    },
    "POST /v1/admin/campaigns/preview": {
        "request": {"occasion": "birthday", "date": "2026-06-01", "days_ahead": 7, "items": 2, "limit": 1},
        "response": {
            "summary": {
                "campaign_id": "20260601-birthday-8bcdd01e",
                "dry_run": True,
                "written": False,
                "run_at": "2026-06-01T12:00:00Z",
                "days_ahead": 7,
                "items": 2,
                "model_version": VERSION,
                "offers": {"birthday": 30},
                "offers_total": 30,
                "short_offers": 0,
                "modes": {"non_personalized": 5, "personalized": 25},
                "skipped": _SKIPPED,
                "skipped_by_occasion": {"birthday": _SKIPPED},
                "out": None,
                "seconds": 0.158,
            },
            "offers": [
                {
                    "customer_id": "C0301",
                    "email": "ethan.wright.301@example.com",
                    "name": "Ethan Wright",
                    "occasion": "birthday",
                    "date": "2026-06-07",
                    "occasion_year": 2026,
                    "code": "BDAY-QNPB-R36M-YSGI-BFP5",
                    "discount": 15.0,
                    "valid_from": "2026-06-01",
                    "valid_until": "2026-06-21",
                    "product_ids": ["P0004", "P0379"],
                    "product_names": ["Vintage Trinket Dish — Teal", "Scandi Notecard Set — Lilac"],
                    "mode": "personalized",
                    "reason": None,
                }
            ],
        },
    },
    "GET /v1/customers/{customer_id}/consents": {
        "path": {"customer_id": "C0005"},
        "response": {"customer_id": "C0005", "consents": _CONSENTS},
    },
    "PUT /v1/customers/{customer_id}/consents": {
        "path": {"customer_id": "C0005"},
        "request": {"consents": {"marketing": False}, "source": "preference_centre"},
        "response": {
            "customer_id": "C0005",
            "consents": _CONSENTS,
            "decided_at": "2026-12-01T08:31:03Z",
            "changed": 1,
            "stale": [],
        },
    },
    "GET /v1/customers/{customer_id}/consents/history": {
        "path": {"customer_id": "C0005"},
        "response": {"customer_id": "C0005", "history": _HISTORY},
    },
    "DELETE /v1/customers/{customer_id}": {
        "path": {"customer_id": "C0009"},
        "response": {
            "erased": True,
            "erased_at": "2026-12-01",
            "tombstone": "c93d15c71e16fd3cd3ad0803e7dba554eacbbaab7da4f28cd3ba9ea1cef134d9",
            "deleted_rows": {
                "consent_log": 2,
                "consents": 2,
                "customers": 1,
                "decisions": 0,
                "interactions": 23,
                "offers": 0,
            },
            "models_scrubbed": [VERSION],
            "copies": {"rows_removed": {}, "dropped": []},
            "wal_checkpoint": {"truncated": True, "attempts": 1},
            "seconds": {"tables": 0.004, "artifacts": 0.7, "copies": 0.0, "wal": 0.01, "total": 0.72},
        },
    },
    "GET /v1/customers/{customer_id}/export": {
        "path": {"customer_id": "C0005"},
        "response": {
            "exported_at": "2026-12-01T08:31:03Z",
            "profile": {
                "id": "C0005",
                "email": "oliver.bennett.9@example.com",
                "name": "Oliver Bennett",
                "birth_date": "1970-09-08",
                "anniversary_date": None,
                "timezone": "Europe/Paris",
                "created_at": "2023-01-18T11:15:37Z",
            },
            "consents": _CONSENTS,
            "consent_history": _HISTORY,
            "interactions": [
                {
                    "id": 951,
                    "customer_id": "C0005",
                    "product_id": "P0352",
                    "event_type": "view",
                    "quantity": 1.0,
                    "occurred_at": "2025-05-21T11:02:04Z",
                }
            ],
            "offers": [],
            "decisions": [],
            "value": {
                "customer_id": "C0005",
                "segment": "loyal",
                "p_active": 0.6154,
                "purchases": {"90": 0.8261, "180": 1.6219, "365": 3.2117},
                "spend": {"90": 41.7302, "180": 81.9285, "365": 162.2311},
                "recency_days": 64,
                "purchase_days": 9,
                "spend_to_date": 412.35,
                "computed_at": "2026-12-01T03:16:40Z",
                "as_of": "2026-10-31",
                "estimator": "BG/NBD + Gamma-Gamma (penalizer 0.001); purchases: BG/NBD + "
                "Gamma-Gamma (penalizer 0.001)",
            },
            "models_trained_on": [VERSION],
        },
    },
    "GET /v1/customers/{customer_id}/value": {
        "path": {"customer_id": "C0005"},
        "response": {
            "customer_id": "C0005",
            "profiled": True,
            "reason": None,
            "purpose": "personalization",
            "segment": "loyal",
            "segment_rule": "buys often, but not lately",
            "p_active": 0.6154,
            "expected": [
                {"days": 90, "purchases": 0.8261, "spend": 41.7302},
                {"days": 180, "purchases": 1.6219, "spend": 81.9285},
                {"days": 365, "purchases": 3.2117, "spend": 162.2311},
            ],
            "recency_days": 64,
            "purchase_days": 9,
            "spend_to_date": 412.35,
            "as_of": "2026-10-31",
            "computed_at": "2026-12-01T03:16:40Z",
            "estimator": "BG/NBD + Gamma-Gamma (penalizer 0.001); purchases: BG/NBD + Gamma-Gamma (penalizer 0.001)",
        },
    },
    "POST /v1/admin/reload": {"response": {"model_version": VERSION}},
    "GET /v1/admin/metrics/campaigns": {
        "query": "kind=second_purchase",
        "response": {
            "since": None,
            "kind": "second_purchase",
            "as_of": "2026-12-01T08:31:03Z",
            "windows": [30, 90],
            "holdout_share": 0.1,
            "method": "per offer, customers as clusters: delta-method ratio, 95 % normal",
            "kinds": [_CAMPAIGN_GROUP],
            "total": _CAMPAIGN_GROUP,
            "measured_kinds": ["second_purchase"],
            "summary": "In the 90 days after a second-purchase offer, the 50 customers who got one spent 13.11 more "
            "each than the 13 held out (95 % interval −8.51 to 34.73): about 656 extra revenue in all "
            "(−425 to 1,737), not yet distinguishable from no effect.",
        },
    },
    "GET /v1/admin/metrics/online": {
        "query": "since=2026-11-24",
        "response": {
            "since": "2026-11-24T00:00:00Z",
            "window_hours": 24.0,
            "generated_at": "2026-12-01T08:31:03Z",
            "control_share": 0.2,
            "challenger": None,
            "challenger_share": 0.0,
            "arms": [
                {
                    "arm": "model",
                    "surface": "recommendations",
                    "model_version": VERSION,
                    "lists": 400,
                    "customers": 160,
                    "clicks": 88,
                    "ctr": 0.22,
                    "add_to_cart": 30,
                    "add_to_cart_rate": 0.075,
                    "purchases": 18,
                    "conversion": 0.045,
                    "revenue": 512.4,
                    "revenue_per_list": 1.281,
                    "events": 131,
                    "flagged": 1,
                    "flagged_share": 0.007634,
                },
                {
                    "arm": "control",
                    "surface": "recommendations",
                    "model_version": VERSION,
                    "lists": 100,
                    "customers": 40,
                    "clicks": 9,
                    "ctr": 0.09,
                    "add_to_cart": 3,
                    "add_to_cart_rate": 0.03,
                    "purchases": 2,
                    "conversion": 0.02,
                    "revenue": 41.0,
                    "revenue_per_list": 0.41,
                    "events": 12,
                    "flagged": 0,
                    "flagged_share": 0.0,
                },
            ],
            "uplift": [
                {
                    "surface": "recommendations",
                    "metric": "conversion",
                    "treatment": "model",
                    "control": "control",
                    "treatment_value": 0.045,
                    "control_value": 0.02,
                    "difference": 0.025,
                    "relative": 1.25,
                    "ci95": [-0.0069, 0.0569],
                    "n_treatment": 400,
                    "n_control": 100,
                    "customers_treatment": 160,
                    "customers_control": 40,
                }
            ],
            "rules": [
                {
                    "rule": "candles-week",
                    "arm": "model",
                    "surface": "recommendations",
                    "placed": 212,
                    "moved": 35,
                    "removed": 0,
                    "touched": {
                        "lists": 150,
                        "customers": 90,
                        "clicks": 39,
                        "ctr": 0.26,
                        "purchases": 9,
                        "conversion": 0.06,
                        "revenue": 240.5,
                        "revenue_per_list": 1.603333,
                    },
                    "untouched": {
                        "lists": 250,
                        "customers": 120,
                        "clicks": 49,
                        "ctr": 0.196,
                        "purchases": 9,
                        "conversion": 0.036,
                        "revenue": 271.9,
                        "revenue_per_list": 1.0876,
                    },
                }
            ],
            "events": {
                "attributed_by_list_id": 120,
                "attributed_by_window": 23,
                "unattributed": 5210,
                "flagged": 1,
                "list_id_of_another_customer": 0,
            },
        },
    },
    "GET /v1/admin/rules": {"response": {"rules": [_RULE_OUT]}},
    "POST /v1/admin/rules": {"request": _RULE, "response": {"rule": _RULE_OUT, "warnings": []}},
    "GET /v1/admin/rules/{name}": {"path": {"name": "candles-week"}, "response": _RULE_OUT},
    "PUT /v1/admin/rules/{name}": {
        "path": {"name": "candles-week"},
        "request": {**_RULE, "priority": 5},
        "response": {"rule": {**_RULE_OUT, "priority": 5}, "warnings": []},
    },
    "POST /v1/admin/rules/{name}/pause": {
        "path": {"name": "candles-week"},
        "response": {**_RULE_OUT, "status": "paused"},
    },
    "POST /v1/admin/rules/{name}/resume": {"path": {"name": "candles-week"}, "response": _RULE_OUT},
    "DELETE /v1/admin/rules/{name}": {"path": {"name": "candles-week"}, "response": {"deleted": "candles-week"}},
    "POST /v1/admin/rules/preview": {
        "request": {"rule": _RULE, "sample": 2, "n": 3},
        "response": {
            "rule": {k: v for k, v in _RULE_OUT.items() if k not in ("created_at", "updated_at")},
            "removed": None,
            "lists": 2,
            "touched": 1,
            "emptied": 0,
            "share_touched": 0.5,
            "n": 3,
            "customers": [
                {
                    "customer_id": "C0005",
                    "before": ["P0004", "P0088", "P0058"],
                    "after": ["P0004", "P0301", "P0088"],
                    "changed": True,
                    "rules": {"candles-week": {"placed": ["P0301"]}},
                },
                {
                    "customer_id": "C0011",
                    "before": ["P0301", "P0012", "P0090"],
                    "after": ["P0301", "P0012", "P0090"],
                    "changed": False,
                    "rules": {},
                },
            ],
        },
    },
    "GET /healthz": {"response": {"status": "ok"}},
    "GET /readyz": {
        "response": {
            "status": "ready",
            "model_version": VERSION,
            "problems": [],
            "model_stale": {
                "stale": False,
                "stale_since": None,
                "hours": None,
                "max_stale_hours": 36.0,
                "serving_factors": True,
            },
        }
    },
    "GET /metrics": {
        "response": "# HELP recommender_events_ingested_total Events stored through the API\n"
        "# TYPE recommender_events_ingested_total counter\n"
        "recommender_events_ingested_total 42.0\n"
    },
}
