"""Privacy endpoints (admin role): consent, its history, erasure and data export."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, current_app, g
from pydantic import BaseModel, Field

from recommender import privacy, store
from recommender.ingest import consent

from .db import get_db
from .schema import Body, endpoint

bp = Blueprint("privacy", __name__, url_prefix="/v1/customers")


class ConsentChange(Body):
    consents: dict[str, bool] = Field(min_length=1, description="purpose -> granted")
    source: str = Field("api", min_length=1, max_length=100, description="Who or what made the change.")
    decided_at: str | None = Field(
        None,
        max_length=64,
        description=(
            "When the customer decided (ISO 8601; default now). A decision older than the current one is not "
            "applied and is listed under `stale`."
        ),
    )


class ConsentState(BaseModel):
    granted: bool
    recorded: bool
    updated_at: str | None
    source: str | None


class Consents(BaseModel):
    customer_id: str
    consents: dict[str, ConsentState]
    decided_at: str | None = None
    changed: int | None = None
    stale: list[str] | None = None


class ConsentEvent(BaseModel):
    purpose: str
    old: bool | None
    new: bool
    source: str
    changed_at: str
    decided_at: str
    actor: str | None


class ConsentHistory(BaseModel):
    customer_id: str
    history: list[ConsentEvent]


class Erasure(BaseModel):
    erased: bool
    tombstone: str
    erased_at: str = Field(json_schema_extra={"format": "date"})
    deleted_rows: dict[str, int]
    models_scrubbed: list[str]
    copies: dict[str, Any] = Field(default_factory=dict, description="Registered exports rewritten without them.")
    wal_checkpoint: dict[str, Any] = Field(default_factory=dict)
    seconds: dict[str, float] = Field(default_factory=dict, description="Time per step.")


class Export(BaseModel):
    exported_at: str
    profile: dict[str, Any]
    consents: dict[str, ConsentState]
    consent_history: list[ConsentEvent]
    interactions: list[dict[str, Any]]
    offers: list[dict[str, Any]]
    decisions: list[dict[str, Any]]
    value: dict[str, Any] | None = Field(
        None,
        description="The stored customer value and segment (profiling; "
        "held only while `value.purpose` is granted), or null.",
    )
    models_trained_on: list[str]


def settings():
    return current_app.config["SETTINGS"]


def actor() -> str:
    """Who makes this request's changes: ``key:<id>:<name>`` of its API key, or ``open-mode``."""
    key = g.get("api_key")
    return f"key:{key['id']}:{key['name']}" if key else "open-mode"


@bp.get("/<id:customer_id>/consents")
@endpoint("/v1/customers/<customer_id>/consents", role="admin", response=Consents)
def get_consents(customer_id: str):
    """Every configured purpose for the customer; unrecorded means not granted."""
    return store.consent_state(get_db(), settings(), customer_id)


@bp.put("/<id:customer_id>/consents")
@endpoint("/v1/customers/<customer_id>/consents", "PUT", role="admin", body=ConsentChange, response=Consents)
def put_consents(customer_id: str, body: ConsentChange):
    """Grant or withdraw purposes; takes effect on the customer's very next request in every worker.

    Ordered by `decided_at`: a decision older than the current one changes
    nothing and is listed in `stale`. An erased customer is a 422
    (`erased_customer`). The log records the API key that made the change.
    """
    return consent.set_consents(
        get_db(), settings(), customer_id, body.consents, body.source, decided_at=body.decided_at, actor=actor()
    )


@bp.get("/<id:customer_id>/consents/history")
@endpoint("/v1/customers/<customer_id>/consents/history", role="admin", response=ConsentHistory)
def consent_history(customer_id: str):
    """Every consent change of the customer in the order recorded: decided and recorded times, source, actor."""
    return store.consent_timeline(get_db(), settings(), customer_id)


@bp.delete("/<id:customer_id>")
@endpoint("/v1/customers/<customer_id>", "DELETE", role="admin", response=Erasure)
def forget(customer_id: str):
    """Erase the customer everywhere (right to be forgotten); keeps only a keyed-hash tombstone."""
    return privacy.forget(get_db(), settings(), customer_id)


@bp.get("/<id:customer_id>/export")
@endpoint("/v1/customers/<customer_id>/export", role="admin", response=Export)
def export(customer_id: str):
    """Everything held about the customer (access and portability); 404 once erased."""
    return privacy.export(get_db(), settings(), customer_id)
