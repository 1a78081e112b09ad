"""Merchandising rules: list, create, read, change, pause, resume, delete and preview (marketer or admin).

Views parse, call one function of :mod:`recommender.serving.merchandising` and return
its result. The body models document the shape (OpenAPI); the meaning — a pin beyond
the list size, a schedule that ends before it starts, an unknown attribute, surface or
time zone — is checked by :func:`recommender.serving.rules.parse_rule`, whose 422 names
the field. See docs/rules.md.
"""

from __future__ import annotations

from typing import Any, Literal

from flask import Blueprint, g
from pydantic import BaseModel, Field

from recommender.serving import merchandising
from recommender.serving.rules import MAX_POSITION, SURFACES

from .db import get_db, get_service
from .schema import Body, endpoint

bp = Blueprint("rules", __name__, url_prefix="/v1/admin/rules")

Surface = Literal[SURFACES]  # type: ignore[valid-type]
NAME = r"^[A-Za-z0-9][A-Za-z0-9 _.:-]{0,99}$"


class AttributeCondition(Body):
    name: str = Field(
        min_length=1,
        max_length=200,
        description="A product attribute: `name`, `category`, `price`, `in_stock`, `available_until`.",
    )
    equals: str | float | None = None
    one_of: list[str | float] | None = Field(None, max_length=1000)
    contains: str | None = Field(None, max_length=200, description="Case-insensitive substring (text attributes).")


class Condition(Body):
    """Products matching every field given."""

    products: list[str] | None = Field(None, max_length=10000)
    categories: list[str] | None = Field(None, max_length=1000)
    attribute: AttributeCondition | None = None
    min_price: float | None = Field(None, ge=0)
    max_price: float | None = Field(None, ge=0)
    new_within_days: int | None = Field(
        None, ge=1, le=3650, description="First seen by the engine this many days ago or less."
    )
    min_stock: float | None = Field(None, ge=0)
    max_stock: float | None = Field(None, ge=0)


class Action(Body):
    type: Literal["boost", "bury", "pin", "promote", "exclude", "include_only", "rotate"]
    condition: Condition | None = None
    amount: float | None = Field(
        None,
        gt=0,
        le=10,
        description="boost/bury: share of the candidate list "
        "(0.1 = 5 places of 50), above 0 and at most 1; "
        "rotate: the demotion (default 1).",
    )
    product: str | None = Field(None, min_length=1, max_length=200, description="pin: the product.")
    position: int | None = Field(None, ge=1, description=f"pin: 1-based position, at most {MAX_POSITION}.")
    slots: int | None = Field(None, ge=1, description="promote: at least this many matching products ...")
    of: int | None = Field(
        None, ge=1, description=f"promote: ... in the first `of` positions (at most {MAX_POSITION})."
    )
    after: int | None = Field(None, ge=1, le=1000, description="rotate: shown this many times ...")
    days: int | None = Field(None, ge=1, le=365, description="rotate: ... in this many days, without a click.")


class Audience(Body):
    arms: list[Literal["model", "control", "challenger"]] = Field(default_factory=list)
    visitors: list[Literal["new", "returning", "anonymous"]] = Field(default_factory=list)
    segments: list[str] = Field(default_factory=list, max_length=100)


class Schedule(Body):
    start: str | None = Field(
        None, max_length=40, description="ISO 8601 local date-time in `timezone` (or with an offset); active from here."
    )
    end: str | None = Field(None, max_length=40, description="Active up to, not including, this moment.")
    timezone: str = Field("UTC", min_length=1, max_length=64, description="IANA time zone, e.g. Pacific/Auckland.")


class RuleBody(Body):
    name: str = Field(pattern=NAME, description="Unique; letters, digits, space and `_ . : -`.")
    owner: str = Field("", max_length=200)
    description: str = Field("", max_length=1000)
    surfaces: list[Surface] | None = Field(None, min_length=1, description="Where it acts [default: every surface].")
    audience: Audience | None = None
    schedule: Schedule | None = None
    status: Literal["active", "paused"] = "active"
    priority: int = Field(0, ge=-1000, le=1000, description="Higher first; settles overlapping pins.")
    action: Action


class RuleOut(BaseModel):
    name: str
    owner: str
    description: str
    surfaces: list[str]
    audience: dict[str, list[str]] | None = None
    schedule: dict[str, str] | None = None
    status: Literal["active", "paused"]
    priority: int
    action: dict[str, Any]
    created_at: str | None = Field(None, json_schema_extra={"format": "date-time"})
    updated_at: str | None = Field(None, json_schema_extra={"format": "date-time"})


class RuleList(BaseModel):
    rules: list[RuleOut]


class RuleSaved(BaseModel):
    rule: RuleOut
    warnings: list[str] = Field(description="What the rule will not do now (e.g. its condition matches no product).")


class RuleDeleted(BaseModel):
    deleted: str


class PreviewRules(Body):
    rule: RuleBody | None = Field(
        None, description="A rule to add (or to replace the one of its name), previewed as active."
    )
    remove: str | None = Field(None, max_length=100, description="A rule to preview without.")
    sample: int = Field(
        merchandising.PREVIEW_SAMPLE,
        ge=1,
        le=merchandising.MAX_PREVIEW_SAMPLE,
        description="How many real customers (most recently active, with consent).",
    )
    n: int = Field(10, ge=1, le=100)


class PreviewCustomer(BaseModel):
    customer_id: str
    before: list[str]
    after: list[str]
    changed: bool
    rules: dict[str, dict[str, list[str]]]


class RulePreview(BaseModel):
    rule: dict[str, Any] | None
    removed: str | None
    lists: int = Field(description="Customers previewed (one list each).")
    touched: int = Field(description="Lists the change alters.")
    emptied: int = Field(description="Lists left empty after the change.")
    share_touched: float
    n: int
    customers: list[PreviewCustomer]


def actor() -> str:
    key = g.get("api_key")
    return f"key:{key['id']}:{key['name']}" if key else "open-mode"


def _body(body: BaseModel) -> dict[str, Any]:
    return body.model_dump(exclude_none=True)


@bp.get("")
@endpoint("/v1/admin/rules", role="marketer", response=RuleList)
def list_rules():
    """Every merchandising rule, active and paused, by name."""
    return {"rules": merchandising.list_rules(get_db())}


@bp.post("")
@endpoint("/v1/admin/rules", "POST", role="marketer", body=RuleBody, response=RuleSaved, status=201)
def create_rule(body: RuleBody):
    """Create a rule; it applies from every worker's next request.

    Refused with 422 naming the field: an unknown surface, attribute or time zone, a
    pin or promotion beyond the list size (100), a schedule that ends before it
    starts, a pin of an unknown product, exclusions that would leave a surface with no
    product, a name already taken. A condition that matches no product now is
    accepted with a warning.
    """
    rule, warnings = merchandising.create_rule(get_db(), _body(body), actor())
    return {"rule": rule, "warnings": warnings}, 201


@bp.post("/preview")
@endpoint("/v1/admin/rules/preview", "POST", role="marketer", body=PreviewRules, response=RulePreview)
def preview(body: PreviewRules):
    """Before and after lists for a sample of real customers, and how many lists a change touches.

    Nothing is saved or logged. A rule set that would empty every list of the
    sample is refused with 422.
    """
    rule = _body(body.rule) if body.rule is not None else None
    return merchandising.preview(get_service(), get_db(), rule, remove=body.remove, sample=body.sample, n=body.n)


@bp.get("/<name>")
@endpoint("/v1/admin/rules/<name>", role="marketer", response=RuleOut)
def get_rule(name: str):
    """One rule; 404 when there is none of that name."""
    return merchandising.get_rule(get_db(), name)


@bp.put("/<name>")
@endpoint("/v1/admin/rules/<name>", "PUT", role="marketer", body=RuleBody, response=RuleSaved)
def update_rule(name: str, body: RuleBody):
    """Replace a rule's definition (the body's name must be the path's); audited with the rule before and after."""
    rule, warnings = merchandising.update_rule(get_db(), name, _body(body), actor())
    return {"rule": rule, "warnings": warnings}


@bp.post("/<name>/pause")
@endpoint("/v1/admin/rules/<name>/pause", "POST", role="marketer", response=RuleOut)
def pause_rule(name: str):
    """Pause a rule: it stops applying from every worker's next request."""
    return merchandising.set_status(get_db(), name, "paused", actor())


@bp.post("/<name>/resume")
@endpoint("/v1/admin/rules/<name>/resume", "POST", role="marketer", response=RuleOut)
def resume_rule(name: str):
    """Resume a paused rule (checked again, as when it was created)."""
    return merchandising.set_status(get_db(), name, "active", actor())


@bp.delete("/<name>")
@endpoint("/v1/admin/rules/<name>", "DELETE", role="marketer", response=RuleDeleted)
def delete_rule(name: str):
    """Delete a rule; the audit keeps what it was."""
    merchandising.delete_rule(get_db(), name, actor())
    return {"deleted": name}
