"""Request and response schemas, declared once with pydantic.

The :func:`endpoint` decorator validates a view's query string and JSON body
against its models and records the same models in the OpenAPI document, so
what the API accepts and what it documents cannot drift apart.
"""

from __future__ import annotations

import functools
import re
import typing
from dataclasses import dataclass
from typing import Annotated, Any, Callable, Literal, Union

from flask import request
from pydantic import BaseModel, ConfigDict, Discriminator, Field, RootModel, Tag
from pydantic import ValidationError as PydanticError

from recommender.errors import ValidationError


class BadRequest(ValidationError):
    """Malformed request (bad JSON, unknown parameter): HTTP 400."""

    code = "bad_request"


class Unprocessable(ValidationError):
    """Well-formed but invalid values: HTTP 422."""

    code = "invalid_input"


class Query(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


# --- requests ------------------------------------------------------------------------


class ListQuery(Query):
    n: int = Field(10, ge=1, le=100, description="How many items to return.")
    category: list[str] = Field(default_factory=list, description="Only these categories (repeatable).")
    min_price: float | None = Field(None, ge=0)
    max_price: float | None = Field(None, ge=0)
    in_stock_only: bool = Field(True, description="Leave out products with zero stock (untracked stock counts as available).")
    exclude: list[str] = Field(default_factory=list, description="Product ids to leave out (repeatable).")


class RecommendationQuery(ListQuery):
    exclude_purchased: bool = Field(True, description="Leave out products the customer already bought.")
    diversity: float = Field(0.0, ge=0, le=1, description="0 = pure ranking; 1 = at most one product per category.")
    explain: bool = Field(False, description="Add, per item, the customer's own products that contributed most.")


class PopularQuery(ListQuery):
    days: int | None = Field(None, ge=1, le=3650, description="Trending: count only the last N days.")


class RerankBody(Body):
    products: list[str] = Field(min_length=1, max_length=1000)


class Event(Body):
    customer_id: str = Field(min_length=1, max_length=200)
    product_id: str = Field(min_length=1, max_length=200)
    event_type: str = Field(min_length=1, max_length=50)
    quantity: float | None = Field(None, gt=0, le=1_000_000)
    occurred_at: str | None = Field(None, description="ISO 8601; default now.")


class EventBatch(Body):
    events: list[Event] = Field(min_length=1, max_length=1000)


def _event_shape(value: Any) -> str:
    return "batch" if isinstance(value, dict) and "events" in value else "event"


class EventsBody(RootModel[Annotated[Union[Annotated[EventBatch, Tag("batch")], Annotated[Event, Tag("event")]],
                                     Discriminator(_event_shape)]]):
    """One event, or ``{"events": [...]}`` with up to 1,000."""

    def events(self) -> list[Event]:
        return self.root.events if isinstance(self.root, EventBatch) else [self.root]


# --- responses -------------------------------------------------------------------------

Mode = Literal["personalized", "non_personalized", "model", "cooccurrence"]
Reason = Literal["no_consent", "unknown_customer", "no_history", "no_model", "not_in_model", "popular", "trending",
                 "model_stale"]


class Because(BaseModel):
    product_id: str
    name: str | None
    weight: float


class Item(BaseModel):
    product_id: str
    name: str | None
    category: str | None
    price: float | None
    in_stock: int | None
    score: float | None = None
    lift: float | None = None
    because: list[Because] | None = None


class ItemList(BaseModel):
    mode: Mode
    reason: Reason | None
    model_version: str | None
    items: list[Item]
    days: int | None = None


class Reranked(BaseModel):
    mode: Mode
    reason: Reason | None
    model_version: str | None
    products: list[str]


class Accepted(BaseModel):
    accepted: int


class ErrorDetail(BaseModel):
    code: str
    message: str


class ErrorBody(BaseModel):
    error: ErrorDetail


# --- the registry -------------------------------------------------------------------------


@dataclass
class Operation:
    path: str
    method: str
    summary: str
    description: str
    role: str | None
    query: type[Query] | None
    body: type[BaseModel] | None
    response: type[BaseModel] | None
    status: int


OPERATIONS: list[Operation] = []


def _message(exc: PydanticError, where: str) -> str:
    first = exc.errors()[0]
    loc = ".".join(str(p) for p in first["loc"])
    return f"{where}{'.' + loc if loc else ''}: {first['msg']}"


def parse_query(model: type[Query]) -> Query:
    data: dict[str, Any] = {}
    fields = model.model_fields
    for key in request.args.keys():
        if key not in fields:
            raise BadRequest(f"unknown query parameter {key!r} (known: {', '.join(fields)})")
        values = request.args.getlist(key)
        if typing.get_origin(fields[key].annotation) is list:
            data[key] = values
        elif len(values) > 1:
            raise BadRequest(f"query parameter {key!r} given more than once")
        else:
            data[key] = values[0]
    try:
        return model.model_validate(data)
    except PydanticError as exc:
        raise Unprocessable(_message(exc, "query")) from None


def parse_body(model: type[BaseModel]) -> BaseModel:
    if not request.is_json:
        raise BadRequest("expected a JSON body (Content-Type: application/json)")
    payload = request.get_json(silent=True)
    if payload is None:
        raise BadRequest("malformed JSON body")
    try:
        return model.model_validate(payload, strict=False)
    except PydanticError as exc:
        first = exc.errors()[0]
        kind = BadRequest if first["type"] in ("extra_forbidden", "model_type") else Unprocessable
        raise kind(_message(exc, "body")) from None


def endpoint(path: str, method: str = "GET", *, role: str | None = "read", query: type[Query] | None = None,
             body: type[BaseModel] | None = None, response: type[BaseModel] | None = None,
             status: int = 200) -> Callable:
    """Declare a view's contract; the view receives ``query=`` and/or ``body=`` already validated."""

    def wrap(view: Callable) -> Callable:
        doc = (view.__doc__ or "").strip().split("\n\n")
        OPERATIONS.append(Operation(path, method, doc[0].strip(), "\n\n".join(doc[1:]).strip(), role, query,
                                    body, response, status))

        @functools.wraps(view)
        def inner(**kwargs: Any) -> Any:
            if query is not None:
                kwargs["query"] = parse_query(query)
            elif request.args:
                raise BadRequest(f"unknown query parameter {next(iter(request.args))!r}")
            if body is not None:
                kwargs["body"] = parse_body(body)
            return view(**kwargs)

        inner.required_role = role  # type: ignore[attr-defined]
        return inner

    return wrap


def openapi(title: str, version: str) -> dict[str, Any]:
    """The OpenAPI 3.1 document of every declared endpoint."""
    components: dict[str, Any] = {}

    def ref(model: type[BaseModel]) -> dict[str, str]:
        schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
        components.update(schema.pop("$defs", {}))
        components[model.__name__] = schema
        return {"$ref": f"#/components/schemas/{model.__name__}"}

    paths: dict[str, Any] = {}
    error = ref(ErrorBody)
    for op in OPERATIONS:
        openapi_path = re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", op.path)
        params = [{"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
                  for name in re.findall(r"<(?:\w+:)?(\w+)>", op.path)]
        if op.query is not None:
            schema = op.query.model_json_schema()
            for name, prop in schema["properties"].items():
                params.append({"name": name, "in": "query", "required": name in schema.get("required", []),
                               "description": prop.get("description", ""), "schema": prop,
                               **({"explode": True} if prop.get("type") == "array" else {})})
        entry: dict[str, Any] = {
            "summary": op.summary,
            "description": op.description,
            "parameters": params,
            "responses": {
                str(op.status): {"description": "OK", **({"content": {"application/json": {"schema": ref(op.response)}}}
                                                         if op.response else {})},
                "400": {"description": "Malformed request", "content": {"application/json": {"schema": error}}},
                "422": {"description": "Invalid values", "content": {"application/json": {"schema": error}}},
            },
        }
        if op.role:
            entry["security"] = [{"bearer": []}]
            entry["description"] = (entry["description"] + f"\n\nRole: `{op.role}` or higher.").strip()
            entry["responses"]["401"] = {"description": "Missing or unknown API key", "content": {"application/json": {"schema": error}}}
            entry["responses"]["403"] = {"description": "Key lacks the role", "content": {"application/json": {"schema": error}}}
        if op.body is not None:
            entry["requestBody"] = {"required": True, "content": {"application/json": {"schema": ref(op.body)}}}
        paths.setdefault(openapi_path, {})[op.method.lower()] = entry
    return {
        "openapi": "3.1.0",
        "info": {"title": title, "version": version},
        "paths": paths,
        "components": {"schemas": components,
                       "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}},
    }
