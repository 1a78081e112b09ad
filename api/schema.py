"""Request and response schemas, declared once with pydantic.

The :func:`endpoint` decorator validates a view's query string and JSON body
against its models and records the same models in the OpenAPI document, so
what the API accepts and what it documents cannot drift apart.
"""

from __future__ import annotations

import functools
import inspect
import json
import re
import typing
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from flask import current_app, has_app_context, request
from pydantic import BaseModel, ConfigDict, Discriminator, Field, RootModel, Tag, ValidationError as PydanticError

from recommender.errors import ValidationError
from recommender.online.ids import LIST_ID_PATTERN
from recommender.values import MAX_ID_LENGTH, MAX_PRICE, MAX_QUANTITY, TIME_PATTERN


class BadRequest(ValidationError):
    """Malformed request (bad JSON, unknown parameter): HTTP 400."""

    code = "bad_request"


class Unprocessable(ValidationError):
    """Well-formed but invalid values: HTTP 422."""

    code = "invalid_input"


DATE = {"format": "date"}
DATE_TIME = {"format": "date-time"}


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
    in_stock_only: bool = Field(
        True, description="Leave out products with zero stock (untracked stock counts as available)."
    )
    exclude: list[str] = Field(default_factory=list, description="Product ids to leave out (repeatable).")


class RecommendationQuery(ListQuery):
    exclude_purchased: bool = Field(True, description="Leave out products the customer already bought.")
    diversity: float = Field(0.0, ge=0, le=1, description="0 = pure ranking; 1 = at most one product per category.")
    explain: bool = Field(False, description="Add, per item, the customer's own products that contributed most.")


class PopularQuery(ListQuery):
    days: int | None = Field(None, ge=1, le=3650, description="Trending: count only the last N days.")


Id = Annotated[str, Field(min_length=1, max_length=MAX_ID_LENGTH)]


class RerankBody(Body):
    products: list[Id] = Field(min_length=1, max_length=1000)


class Event(Body):
    customer_id: str = Field(min_length=1, max_length=MAX_ID_LENGTH)
    product_id: str = Field(min_length=1, max_length=MAX_ID_LENGTH)
    event_type: str = Field(
        min_length=1,
        max_length=50,
        description="One of the configured event types (`view`, `add_to_cart`, `purchase` by default).",
    )
    quantity: float | None = Field(None, gt=0, le=MAX_QUANTITY, description="Default 1.")
    occurred_at: str | None = Field(
        None,
        min_length=1,
        pattern=TIME_PATTERN,
        description="ISO 8601 date-time (no offset = UTC), 1970 to 2100 and not ahead "
        "of the server's clock by more than `time.max_future_seconds`; "
        "leave it out (or null) for now. An empty string is refused.",
        json_schema_extra=DATE_TIME,
    )
    event_id: str | None = Field(
        None,
        min_length=1,
        max_length=100,
        description="Your id for this event, unique per event: a repeat is acknowledged "
        "and not stored again, so a retry is safe.",
    )
    list_id: str | None = Field(
        None,
        pattern=LIST_ID_PATTERN,
        description="The `list_id` of the served list (or offer) this event came from; "
        "without it the event is attributed to the latest list that showed "
        "this customer this product within `online.window_hours`.",
    )
    price: float | None = Field(
        None,
        ge=0,
        le=MAX_PRICE,
        description="Unit price paid (revenue = quantity x price); default the product's current price.",
    )


class EventBatch(Body):
    events: list[Event] = Field(min_length=1, max_length=1000)


def _event_shape(value: Any) -> str:
    return "batch" if isinstance(value, dict) and "events" in value else "event"


class EventsBody(
    RootModel[
        Annotated[Annotated[EventBatch, Tag("batch")] | Annotated[Event, Tag("event")], Discriminator(_event_shape)]
    ]
):
    """One event, or ``{"events": [...]}`` with up to 1,000."""

    def events(self) -> list[Event]:
        return self.root.events if isinstance(self.root, EventBatch) else [self.root]


# --- responses -------------------------------------------------------------------------

Mode = Literal["personalized", "non_personalized", "model", "cooccurrence"]
Reason = Literal[
    "no_consent",
    "unknown_customer",
    "no_history",
    "no_model",
    "not_in_model",
    "popular",
    "trending",
    "model_stale",
    "control",
]
Arm = Literal["model", "control", "challenger"]


def _list_id() -> Any:
    return Field(
        description="This list's id: send it back with the events it leads to (`list_id`).",
        json_schema_extra={"pattern": LIST_ID_PATTERN},
    )


def _arm() -> Any:
    return Field(
        None,
        description="The A/B arm the customer is in (`control` gets the non-personalized list); "
        "null when nobody was assigned (unknown or non-consenting visitors, product "
        "pages).",
    )


RuleEffects = dict[str, dict[Literal["placed", "moved", "removed"], list[str]]]


def _rules() -> Any:
    return Field(
        None,
        description="Admin keys only: what each merchandising rule did to this list, "
        "`{rule: {placed|moved|removed: [product ids]}}` (`{}` when no rule changed it; "
        "docs/rules.md).",
    )


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


# What removed the candidates of a short list, in the order a list is made: where they come from
# ran out (the list's source), then the catalogue rules, the caller's exclusions, purchases, diversity.
# Where the candidates ran out (the list's own reason among them), then each step that removed some.
ShortStep = Literal[
    "catalogue",
    "model",
    "cooccurrence",
    Reason,
    "category",
    "min_price",
    "max_price",
    "in_stock",
    "hidden",
    "expired",
    "exclude",
    "purchased",
    "rules",
    "diversity",
]


class Short(BaseModel):
    """Why a list holds fewer items than asked."""

    asked: int = Field(description="The `n` asked for.")
    returned: int = Field(description="How many items the list holds (fewer than `asked`).")
    because: list[ShortStep] = Field(
        description="Each step that removed candidates which would otherwise have filled the list, in the order "
        "a list is made (a candidate refused by several steps counts against the first). Where the "
        "candidates come from ran out: `catalogue` (the model knows fewer products), `cooccurrence` "
        "(too few products bought with this one), or a non-personalized list's `reason` "
        "(`no_history`, `popular`, ...: only popular products could fill it). Then the filters "
        "`category`, `min_price`, `max_price`, `in_stock`, the shop's `hidden` and `expired` "
        "products, the caller's `exclude`, `purchased` (what the customer already bought), `model` "
        "(the model proposed fewer products than the filters allow), `rules` (a merchandising rule's "
        "exclusion or include-only) and the `diversity` cap."
    )


class ItemList(BaseModel):
    mode: Mode
    reason: Reason | None
    model_version: str | None
    items: list[Item]
    short: Short | None = Field(None, description="Why the list holds fewer than `n` items; null when it is full.")
    days: int | None = None
    list_id: str = _list_id()
    arm: Arm | None = _arm()
    rules: RuleEffects | None = _rules()


class Reranked(BaseModel):
    mode: Mode
    reason: Reason | None
    model_version: str | None
    products: list[str]
    list_id: str = _list_id()
    arm: Arm | None = _arm()
    rules: RuleEffects | None = _rules()


class OnlineQuery(Query):
    since: str | None = Field(
        None,
        min_length=1,
        pattern=TIME_PATTERN,
        description="Only lists served (and events) from this ISO 8601 date or date-time "
        "on (1970 to 2100); leave it out for every list the decision log holds "
        "(an empty value is refused).",
    )


class ArmRow(BaseModel):
    arm: str = Field(description="`model`, `control`, `challenger`, or `unassigned` (nobody was assigned).")
    surface: str = Field(
        description="`recommendations`, `rerank`, `similar`, `bought_together`, `popular`, `trending` or `offers`."
    )
    model_version: str | None
    lists: int
    customers: int
    clicks: int = Field(description="Lists with at least one attributed click.")
    ctr: float
    add_to_cart: int = Field(description="Lists with at least one attributed add-to-cart.")
    add_to_cart_rate: float
    purchases: int = Field(description="Lists with at least one attributed purchase.")
    conversion: float
    revenue: float = Field(description="Quantity x price of the attributed purchases.")
    revenue_per_list: float
    events: int
    flagged: int = Field(
        description="Attributed purchases whose price was implausible against the catalogue price "
        "(`online.max_price_factor`) or whose quantity was above `online.max_quantity`: "
        "revenue counts them at the catalogue price and the capped quantity."
    )
    flagged_share: float = Field(description="flagged / events.")


class Uplift(BaseModel):
    surface: str
    metric: Literal["conversion", "ctr", "revenue_per_list"]
    treatment: str
    control: str
    treatment_value: float
    control_value: float
    difference: float = Field(description="Treatment minus control.")
    relative: float | None = Field(description="Difference / control value (null when the control value is 0).")
    ci95: list[float] = Field(
        description="95 % interval of the difference (normal approximation, customers as clusters).",
        min_length=2,
        max_length=2,
    )
    n_treatment: int = Field(description="Lists in the treatment arm.")
    n_control: int = Field(description="Lists in the control arm.")
    customers_treatment: int
    customers_control: int


class OnlineEvents(BaseModel):
    attributed_by_list_id: int
    attributed_by_window: int
    unattributed: int
    flagged: int = Field(
        description="Purchases flagged by the revenue rule (`flagged` of the arms, and those attributed to no list)."
    )
    list_id_of_another_customer: int = Field(
        description="Events naming a list served to another customer: the "
        "`list_id` is ignored and the event attributed by window."
    )


class RuleSide(BaseModel):
    lists: int
    customers: int
    clicks: int = Field(description="Lists with at least one attributed click.")
    ctr: float
    purchases: int = Field(description="Lists with at least one attributed purchase.")
    conversion: float
    revenue: float = Field(description="Quantity x price of the attributed purchases.")
    revenue_per_list: float


class RuleRow(BaseModel):
    rule: str = Field(description="The rule's name (as logged: a rule deleted since still has its line).")
    arm: str
    surface: str
    placed: int = Field(description="Products the rule placed on its touched lists (not there without rules).")
    moved: int = Field(description="Products it moved to another position.")
    removed: int = Field(description="Products it took out (an exclusion, a bury or a rotation).")
    touched: RuleSide = Field(description="Lists of this arm and surface that the rule changed.")
    untouched: RuleSide = Field(description="Lists of the same arm and surface that it did not change.")


class OnlineReport(BaseModel):
    since: str | None
    window_hours: float
    generated_at: str
    control_share: float
    challenger: str | None
    challenger_share: float
    arms: list[ArmRow]
    uplift: list[Uplift]
    rules: list[RuleRow] = Field(
        default_factory=list,
        description="Per merchandising rule, arm and surface: the lists it touched against those it did not.",
    )
    events: OnlineEvents


class Accepted(BaseModel):
    accepted: int = Field(description="Events stored by this request.")
    duplicates: int = Field(
        0,
        description="Events whose `event_id` was already stored (or repeated in the batch): "
        "acknowledged, not stored again.",
    )


class Health(BaseModel):
    status: Literal["ok"]


class Staleness(BaseModel):
    stale: bool
    stale_since: str | None = Field(json_schema_extra={"format": "date-time"})
    hours: float | None
    max_stale_hours: float
    serving_factors: bool = Field(
        description="False once the stale-model window is over: lists fall back to "
        "non-personalized (reason model_stale) until a clean model is published."
    )


class Readiness(BaseModel):
    status: Literal["ready", "not_ready"]
    model_version: str | None
    problems: list[str] = Field(description="What is missing; empty when ready.")
    model_stale: Staleness | None = Field(
        None, description="Whether the served model still carries someone erased or withdrawn since it was trained."
    )


class Reloaded(BaseModel):
    model_version: str | None


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
    # Statuses beyond the automatic ones: what they mean (and their body's model, if not ErrorBody).
    responses: dict[int, Any]
    media: str  # the success response's media type


OPERATIONS: list[Operation] = []


# Errors of shape rather than of a field: an unknown field, a body that is not an object. A 400, like
# malformed JSON. A field whose value is wrong (a wrong JSON type, a bound, a pattern) is a 422 naming
# the field, as it always was: clients branch on that status.
_SHAPE_ERRORS = {"extra_forbidden", "model_type", "model_attributes_type", "union_tag_invalid", "union_tag_not_found"}
_JSON_TYPES = {
    str: "a string",
    bool: "a boolean",
    int: "a number",
    float: "a number",
    list: "an array",
    dict: "an object",
    type(None): "null",
}


def _is_shape_error(error: dict[str, Any]) -> bool:
    return error["type"] in _SHAPE_ERRORS


def _message(exc: PydanticError, where: str, *, tagged: bool = False) -> str:
    """``where.field: what is wrong`` for the first error (``tagged``: the first step of the path is a union tag)."""
    first = exc.errors()[0]
    path = list(first["loc"])[1:] if tagged else list(first["loc"])
    loc = ".".join(str(p) for p in path)
    message = first["msg"]
    if first["type"] == "string_pattern_mismatch" and first.get("ctx", {}).get("pattern") == TIME_PATTERN:
        message = f"bad timestamp {first.get('input')!r}: an ISO 8601 date-time from 1970 to 2100"
    text = f"{where}{'.' + loc if loc else ''}: {message}"
    if first["type"].endswith("_type") and type(first.get("input")) in _JSON_TYPES:
        text += f" (got {_JSON_TYPES[type(first['input'])]})"
    return text


class _DuplicateKey(Exception):
    pass


def _object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """A JSON object, refusing a key given twice (which one should win is the client's mistake, not ours)."""
    out = dict(pairs)
    if len(out) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise _DuplicateKey(key)
            seen.add(key)
    return out


def _not_json(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def load_json(data: bytes) -> Any:
    """Strict JSON: no duplicate keys, no ``NaN``/``Infinity``; :class:`BadRequest` naming what is wrong."""
    try:
        return json.loads(data, object_pairs_hook=_object, parse_constant=_not_json)
    except _DuplicateKey as exc:
        raise BadRequest(f"malformed JSON body: key {str(exc.args[0])!r} given twice in one object") from None
    except RecursionError:  # json.loads gives up on 100,000 nested brackets
        raise BadRequest("malformed JSON body: nested too deeply") from None
    except ValueError as exc:  # UnicodeDecodeError and JSONDecodeError included
        raise BadRequest(f"malformed JSON body ({str(exc)[:100]})") from None


def parse_query(model: type[Query]) -> Query:
    data: dict[str, Any] = {}
    fields = model.model_fields
    for key in request.args:
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
    payload = load_json(request.get_data(cache=True))
    if payload is None:
        raise BadRequest("malformed JSON body: null")
    try:
        # Strict: a number is a JSON number (not "12", not true), a boolean is true or false.
        return model.model_validate(payload, strict=True)
    except PydanticError as exc:
        kind = BadRequest if _is_shape_error(exc.errors()[0]) else Unprocessable
        raise kind(_message(exc, "body")) from None


def endpoint(
    path: str,
    method: str = "GET",
    *,
    role: str | None = "read",
    query: type[Query] | None = None,
    body: type[BaseModel] | None = None,
    response: type[BaseModel] | None = None,
    status: int = 200,
    responses: dict[int, Any] | None = None,
    media: str = "application/json",
) -> Callable:
    """Declare a view's contract; the view receives ``query=`` and/or ``body=`` already validated.

    ``responses`` adds statuses the view itself returns (``{503: "no model"}``);
    the ones every operation of its kind can return are added by :func:`openapi`.
    """

    def wrap(view: Callable) -> Callable:
        doc = inspect.cleandoc(view.__doc__ or "").split("\n\n")
        OPERATIONS.append(
            Operation(
                path,
                method,
                doc[0].strip(),
                "\n\n".join(doc[1:]).strip(),
                role,
                query,
                body,
                response,
                status,
                dict(responses or {}),
                media,
            )
        )

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


def statuses(op: Operation) -> dict[int, Any]:
    """Every status ``op`` can answer with, and why: the contract the fuzz test holds the app to."""
    out: dict[int, Any] = {op.status: "OK" if op.status == 200 else "Created"}
    out[400] = (
        "Malformed request: bad JSON (a key given twice in one object, `NaN`, nested too deeply), a JSON "
        'value of the wrong type (`"12"` or `true` for a number), an unknown field or query parameter'
    )
    if op.role:
        out[401] = "Missing, unknown or revoked API key (`Authorization: Bearer <key>`)"
        if op.role != "read":
            out[403] = (
                f"The key's role is below `{op.role}`"
                if op.role != "marketer"
                else "The key's role is neither `marketer` nor `admin`"
            )
    if "<" in op.path:
        out[404] = "Not found: the path matches no resource (or, per operation, an unknown id)"
    if op.body is not None:
        out[413] = "Request body larger than 1 MiB"
    if op.role or op.query or op.body:
        out[422] = "Invalid values; the message names the field"
    out[503] = "Temporarily unavailable (database busy): retry after `Retry-After` seconds"
    out.update(op.responses)
    return dict(sorted(out.items()))


def _with_event_types(components: dict[str, Any]) -> dict[str, Any]:
    """The configured event types as the enum of ``Event.event_type`` (the events door refuses any other)."""
    event = components.get("Event", {}).get("properties", {}).get("event_type")
    if event is not None and has_app_context():
        event["enum"] = list(current_app.config["SETTINGS"].event_types)
    return components


def openapi(title: str, version: str) -> dict[str, Any]:
    """The OpenAPI 3.1 document of every declared endpoint, with its statuses and examples."""
    from .examples import EXAMPLES

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
        example = EXAMPLES.get(f"{op.method} {openapi_path}", {})
        params = [
            {
                "name": name,
                "in": "path",
                "required": True,
                "schema": {"type": "string"},
                **({"example": example["path"][name]} if name in example.get("path", {}) else {}),
            }
            for name in re.findall(r"<(?:\w+:)?(\w+)>", op.path)
        ]
        if op.query is not None:
            schema = op.query.model_json_schema()
            for name, prop in schema["properties"].items():
                params.append(
                    {
                        "name": name,
                        "in": "query",
                        "required": name in schema.get("required", []),
                        "description": prop.get("description", ""),
                        "schema": prop,
                        **({"explode": True} if prop.get("type") == "array" else {}),
                    }
                )
        responses: dict[str, Any] = {}
        for status, why in statuses(op).items():
            if status == op.status:
                entry_ok: dict[str, Any] = {"description": why}
                if op.response is not None or op.media != "application/json":
                    media: dict[str, Any] = {"schema": ref(op.response) if op.response else {"type": "string"}}
                    if "response" in example:
                        media["example"] = example["response"]
                    entry_ok["content"] = {op.media: media}
                responses[str(status)] = entry_ok
            else:
                why, model = why if isinstance(why, tuple) else (why, None)
                responses[str(status)] = {
                    "description": why,
                    "content": {"application/json": {"schema": ref(model) if model is not None else error}},
                }
        entry: dict[str, Any] = {
            "operationId": f"{op.method.lower()}_{re.sub(r'[^a-z0-9]+', '_', openapi_path.lower()).strip('_')}",
            "summary": op.summary,
            "description": op.description,
            "parameters": params,
            "responses": responses,
        }
        if op.role:
            entry["security"] = [{"bearer": []}]
            needs = "`marketer` or `admin`" if op.role == "marketer" else f"`{op.role}` or higher"
            entry["description"] = (entry["description"] + f"\n\nRole: {needs}.").strip()
        else:
            entry["security"] = []
        if op.body is not None:
            body_media: dict[str, Any] = {"schema": ref(op.body)}
            if "request" in example:
                body_media["example"] = example["request"]
            entry["requestBody"] = {"required": True, "content": {"application/json": body_media}}
        if "query" in example:
            entry["x-example-query"] = example["query"]
        paths.setdefault(openapi_path, {})[op.method.lower()] = entry
    return {
        "openapi": "3.1.0",
        "info": {
            "title": title,
            "version": version,
            "description": 'Every error is `{"error": {"code", "message"}}` with a trailing newline. '
            "A method a path does not have answers 405 with an `Allow` header. "
            "Request lines over 8,190 bytes get 414 and more than 100 headers 431 "
            "(from the server, as JSON).",
        },
        "paths": paths,
        "components": {
            "schemas": _with_event_types(components),
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
    }
