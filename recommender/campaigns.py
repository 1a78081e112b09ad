"""Occasion campaigns: who gets an offer, which products, and the ledger that makes reruns harmless.

One call of :func:`run` is one campaign, whichever face starts it (``recommender
campaign run``, ``scripts/run_campaign.py``, the admin preview endpoint):

1. **Occasions** — customers whose birthday or anniversary falls in the window,
   in their own time zone (:mod:`recommender.occasions`).
2. **Eligibility**, read at run time: ``marketing`` consent granted, and no
   offer yet in the ledger for (customer, occasion, occasion_year).
3. **Products** — the customer's top items from the current model when they
   have ``personalization`` consent and trained factors; popular products
   otherwise, and after their personal picks run out. Never hidden, expired on
   the occasion date, out of stock, or already bought by them. Configured gift
   categories for the occasion come first; other products in the price band
   only fill what the gift categories cannot.
4. **Allocation** — no product goes to more customers than its cap
   (``max_per_product``, default its stock; untracked stock is unlimited;
   both given = the smaller). Customers are put in a seeded random order (the
   seed is the run instant, occasions and window, so a preview allocates
   exactly like the real run with the same data) and served in rounds: each
   round, every customer in that order takes their best product that still has
   room. Round-robin spreads a scarce bestseller over as many customers as it
   has room for, instead of the first few taking it with their second and
   third picks; a full product is skipped for the customer's next best.
5. **Ledger** — in one transaction: eligibility is checked again (consent may
   have changed while products were chosen), offers and their decision-log
   rows are inserted, and the export file is written. Any failure rolls all of
   it back and removes the file, so a crash never leaves half a campaign. A
   dry run computes the same offers and writes nothing to the database.
"""

from __future__ import annotations

import base64
import contextlib
import csv
import dataclasses
import datetime as dt
import hashlib
import json
import os
import secrets
import time
import zoneinfo
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp
import sqlite_utils

from . import occasions, registry, store
from .config import CampaignSettings, Settings
from .consent import MARKETING, PERSONALIZATION
from .errors import ConfigError, ModelError, ValidationError
from .model import FactorModel, batch_top_k
from .values import parse_date

EXPORT_COLUMNS = ("customer_id", "email", "name", "occasion", "date", "code", "discount", "valid_from",
                  "valid_until", "product_ids", "product_names")
EXPORT_FORMATS = (".csv", ".jsonl")
MAX_ITEMS = 20
CODE_PREFIX = {"birthday": "BDAY", "anniversary": "ANNV"}


@dataclass(frozen=True)
class CampaignRequest:
    """What a marketer asks for; ``None`` means the configured default."""

    occasion: str = "all"
    date: str | None = None
    at: str | None = None
    days_ahead: int = 7
    items: int | None = None
    max_per_product: int | None = None


@dataclass
class Offer:
    customer_id: str
    email: str | None
    name: str | None
    occasion: str
    date: str
    occasion_year: int
    code: str
    discount: float
    valid_from: str
    valid_until: str
    product_ids: list[str]
    product_names: list[str]
    mode: str
    reason: str | None

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
    skipped: dict[str, dict[str, int]] = field(default_factory=dict)
    out: str | None = None
    seconds: float = 0.0

    def made(self) -> dict[str, int]:
        return {o: sum(1 for x in self.offers if x.occasion == o) for o in self.occasions}

    def summary(self) -> dict[str, Any]:
        """The run in numbers: offers per occasion, skips per reason (total and per occasion)."""
        totals: dict[str, int] = {}
        for reasons in self.skipped.values():
            for reason, n in reasons.items():
                totals[reason] = totals.get(reason, 0) + n
        modes: dict[str, int] = {}
        for o in self.offers:
            modes[o.mode] = modes.get(o.mode, 0) + 1
        return {
            "campaign_id": self.campaign_id, "dry_run": self.dry_run, "written": not self.dry_run,
            "run_at": self.run_at, "days_ahead": self.days_ahead, "items": self.items,
            "model_version": self.model_version, "offers": self.made(), "offers_total": len(self.offers),
            "short_offers": sum(1 for o in self.offers if len(o.product_ids) < self.items),
            "modes": modes, "skipped": totals, "skipped_by_occasion": self.skipped, "out": self.out,
            "seconds": round(self.seconds, 3),
        }

    def human(self) -> str:
        s = self.summary()
        head = f"campaign {self.campaign_id}" + (" (dry run: nothing written to the ledger)" if self.dry_run else "")
        lines = [head, f"run at {self.run_at}, window: each customer's local date + {self.days_ahead} days",
                 "offers: " + ", ".join(f"{k} {v:,}" for k, v in s["offers"].items())
                 + f" (total {len(self.offers):,})"]
        skipped = {k: v for k, v in s["skipped"].items() if v}
        lines.append("skipped: " + (", ".join(f"{k} {v:,}" for k, v in sorted(skipped.items())) or "none"))
        if self.out:
            lines.append(f"export: {self.out} ({len(self.offers):,} rows)")
        lines.append(f"{self.seconds:.1f} s")
        return "\n".join(lines)


# --- inputs ---------------------------------------------------------------------------


def _check(request: CampaignRequest, conf: CampaignSettings) -> tuple[tuple[str, ...], int]:
    if request.occasion == "all":
        chosen = occasions.OCCASIONS
    elif request.occasion in occasions.OCCASIONS:
        chosen = (request.occasion,)
    else:
        raise ValidationError(f"occasion must be birthday, anniversary or all, got {request.occasion!r}")
    items = conf.items if request.items is None else request.items
    if not 1 <= items <= MAX_ITEMS:
        raise ValidationError(f"items must be between 1 and {MAX_ITEMS}, got {items}")
    if request.max_per_product is not None and request.max_per_product < 1:
        raise ValidationError(f"max per product must be >= 1, got {request.max_per_product}")
    if conf.feb29_rule not in occasions.FEB29_RULES:
        raise ConfigError(f"campaigns.feb29_rule must be one of {', '.join(occasions.FEB29_RULES)}")
    for o in chosen:
        if not 0 < conf.discounts.get(o, 0) < 100:
            raise ConfigError(f"campaigns.discounts needs a {o} discount between 0 and 100 (percent)")
    if conf.valid_days_before < 0 or conf.valid_days_after < 0:
        raise ConfigError("campaigns.valid_days_before and valid_days_after must be >= 0")
    if conf.min_price < 0 or conf.max_price < 0 or (conf.max_price and conf.max_price < conf.min_price):
        raise ConfigError("campaigns price band: need 0 <= min_price <= max_price (0 = no bound)")
    return chosen, items


class _Products:
    """The catalogue as arrays (ordered by id) with the masks and caps of one campaign."""

    def __init__(self, db: sqlite_utils.Database) -> None:
        rows = sorted(store.all_products(db), key=lambda r: r["id"])
        self.ids = [r["id"] for r in rows]
        self.index = {p: i for i, p in enumerate(self.ids)}
        self.names = [r["name"] for r in rows]
        self.category = np.array([r["category"] or "" for r in rows], dtype=object)
        self.price = np.array([np.nan if r["price"] is None else r["price"] for r in rows], dtype=np.float64)
        self.stock = np.array([np.nan if r["in_stock"] is None else r["in_stock"] for r in rows], dtype=np.float64)
        self.hidden = np.array([bool(r["hidden"]) for r in rows], dtype=bool)
        never = np.datetime64("9999-12-31").astype(np.int64)
        self.until = np.array([never if r["available_until"] is None else _day(r["available_until"], never)
                               for r in rows], dtype=np.int64)

    def mask(self, conf: CampaignSettings, categories: tuple[str, ...], earliest: int) -> np.ndarray:
        """Offerable products: visible, in stock, not expired before the earliest occasion, in band and categories."""
        allow = ~self.hidden & ~(self.stock <= 0) & (self.until >= earliest)
        with np.errstate(invalid="ignore"):
            if conf.min_price:
                allow &= self.price >= conf.min_price
            if conf.max_price:
                allow &= self.price <= conf.max_price
        if categories:
            allow &= np.isin(self.category, list(categories))
        return allow

    def caps(self, max_per_product: int | None) -> np.ndarray:
        cap = np.where(np.isnan(self.stock), np.inf, self.stock)
        return cap if max_per_product is None else np.minimum(cap, max_per_product)


def _day(text: str, fallback: int) -> int:
    try:
        return int(np.datetime64(text[:10], "D").astype(np.int64))
    except ValueError:
        return fallback


def _load_model(settings: Settings) -> FactorModel | None:
    try:
        return registry.Registry(settings.model_dir).load()
    except ModelError:
        return None


def _popularity(db: sqlite_utils.Database, model: FactorModel | None, products: _Products) -> np.ndarray:
    """Popularity per catalogue product: the model's signal, else distinct consenting buyers by SQL."""
    score = np.zeros(len(products.ids), dtype=np.float64)
    if model is not None and "popularity" in model.signals:
        pop = np.asarray(model.signals["popularity"], dtype=np.float64)
        for j, pid in enumerate(model.item_ids):
            i = products.index.get(pid)
            if i is not None:
                score[i] = pop[j]
        return score
    for pid, n in store.popular_since(db, 0, -1):
        i = products.index.get(pid)
        if i is not None:
            score[i] = n
    return score


def _new_codes(kinds: list[str]) -> list[str]:
    """One ``BDAY-XXXX-XXXX-XXXX-XXXX`` code per offer: 80 random bits each from ``secrets``, in base32.

    Guessing one valid code takes ~2⁸⁰ / (offers live) tries. All bits come
    from one call, as a campaign needs tens of thousands of codes.
    """
    raw = base64.b32encode(secrets.token_bytes(10 * len(kinds))).decode()  # 10 bytes = exactly 16 characters
    codes = [f"{CODE_PREFIX[kind]}-{raw[i * 16:i * 16 + 4]}-{raw[i * 16 + 4:i * 16 + 8]}-"
             f"{raw[i * 16 + 8:i * 16 + 12]}-{raw[i * 16 + 12:i * 16 + 16]}" for i, kind in enumerate(kinds)]
    if len(set(codes)) != len(codes):  # never in practice; the ledger's UNIQUE would refuse it anyway
        return _new_codes(kinds)
    return codes


# --- the run ----------------------------------------------------------------------------


@dataclass
class _Candidate:
    customer_id: str
    occasion: str
    date: int  # day number (days since 1970-01-01) of the occurrence
    year: int
    today: int
    user: int = -1  # row in the model's user factors, -1 = not personalized
    reason: str | None = None
    personal: list[int] = field(default_factory=list)
    chosen: list[int] = field(default_factory=list)
    from_model: int = 0


def run(db: sqlite_utils.Database, settings: Settings, request: CampaignRequest, *, dry_run: bool = False,
        out: str | Path | None = None, model: FactorModel | None = None) -> CampaignResult:
    """Run (or with ``dry_run`` preview) one campaign; see the module docstring for the rules.

    ``model`` defaults to the published model; without one every offer uses
    popular products (``reason: no_model``). ``out`` (``.csv`` or ``.jsonl``)
    receives one row per offer, also in a dry run.
    """
    started = time.perf_counter()
    conf = settings.campaigns
    chosen_occasions, k = _check(request, conf)
    out_path = _check_out(out)
    instant = occasions.run_instant(request.date, request.at)
    if not 0 <= request.days_ahead <= occasions.MAX_DAYS_AHEAD:
        raise ValidationError(f"days ahead must be between 0 and {occasions.MAX_DAYS_AHEAD}, got {request.days_ahead}")
    model = model if model is not None else _load_model(settings)
    run_at = instant.strftime("%Y-%m-%dT%H:%M:%SZ")
    result = CampaignResult(f"{instant:%Y%m%d}-{request.occasion}-{secrets.token_hex(4)}", dry_run, run_at,
                            request.days_ahead, chosen_occasions, k, model.version if model else None)

    # 1. occasions in each customer's window
    near = occasions.month_days_near(instant, request.days_ahead)
    found: list[_Candidate] = []
    for occasion in chosen_occasions:
        column = occasions.DATE_COLUMNS[occasion]
        ids, zones, dates = store.occasion_candidates(db, column, near)
        up = occasions.upcoming(dates, zones, instant, request.days_ahead, conf.feb29_rule)
        missing, malformed = store.occasion_date_quality(db, column)  # over all customers, not only those near
        result.skipped[occasion] = {"missing_date": missing, "malformed_date": malformed,
                                    "unknown_timezone": up.skipped["unknown_timezone"],
                                    "no_marketing_consent": 0, "already_offered": 0, "no_products": 0}
        found += [_Candidate(ids[r], occasion, d, y, t) for r, d, y, t in zip(
            up.rows.tolist(), up.dates.astype(np.int64).tolist(), up.years.tolist(),
            up.today.astype(np.int64).tolist())]

    # 2. eligibility, as of now
    eligible = _eligible(db, found, result.skipped)

    # 3. products for each customer and 4. allocation under the caps
    if eligible:
        seed = f"{run_at}|{','.join(chosen_occasions)}|{request.days_ahead}"
        served, products = _choose(db, settings, model, eligible, k, request.max_per_product, seed)
        for c in eligible:
            if not c.chosen:
                result.skipped[c.occasion]["no_products"] += 1
        contacts = store.customer_contacts(db, sorted({c.customer_id for c in served}))
        codes = _new_codes([c.occasion for c in served])
        result.offers = [_offer(c, contacts.get(c.customer_id, (None, None)), conf, products, code)
                         for c, code in zip(served, codes)]

    # 5. the ledger (or, in a dry run, only the file)
    if dry_run:
        if out_path is not None:
            _export(out_path, result.offers)
    else:
        _record(db, result, out_path)
    result.out = str(out_path) if out_path else None
    result.seconds = time.perf_counter() - started
    return result


def _eligible(db: sqlite_utils.Database, found: list[_Candidate],
              skipped: dict[str, dict[str, int]]) -> list[_Candidate]:
    """Candidates with marketing consent and no offer yet for this occasion-year; the rest counted."""
    who = sorted({c.customer_id for c in found})
    consenting = store.consented_among(db, who, MARKETING)
    offered = store.offered_keys(db, who)
    eligible = []
    for c in found:
        if c.customer_id not in consenting:
            skipped[c.occasion]["no_marketing_consent"] += 1
        elif (c.customer_id, c.occasion, c.year) in offered:
            skipped[c.occasion]["already_offered"] += 1
        else:
            eligible.append(c)
    return eligible


def _categories(conf: CampaignSettings, occasion: str) -> tuple[str, ...]:
    return tuple(getattr(conf, f"{occasion}_categories", ()))


def _choose(db: sqlite_utils.Database, settings: Settings, model: FactorModel | None, eligible: list[_Candidate],
            k: int, max_per_product: int | None, seed: str) -> tuple[list[_Candidate], _Products]:
    """Fill ``chosen`` of every candidate; returns those who got at least one product, in ledger order."""
    conf = settings.campaigns
    products = _Products(db)
    earliest = min(c.date for c in eligible)
    band = products.mask(conf, (), earliest)
    kinds = sorted({c.occasion for c in eligible})
    preferred = {o: products.mask(conf, _categories(conf, o), earliest) for o in kinds}
    popularity = _popularity(db, model, products)
    order = np.lexsort((np.arange(len(products.ids)), -popularity))  # most popular first, ties by id
    popular = {o: np.concatenate([order[preferred[o][order]], order[(band & ~preferred[o])[order]]]).tolist()
               for o in kinds}

    ids = sorted({c.customer_id for c in eligible})
    bought: dict[str, set[int]] = {}
    for cid, pid in store.purchased_pairs(db, ids):
        i = products.index.get(pid)
        if i is not None:
            bought.setdefault(cid, set()).add(i)
    if model is None:
        for c in eligible:
            c.reason = "no_model"
    else:
        consent = store.consented_among(db, ids, PERSONALIZATION)
        for c in eligible:
            user = model.user_index.get(c.customer_id)
            if c.customer_id not in consent:
                c.reason = "no_consent"
            elif user is None:
                c.reason = "not_in_model"
            else:
                c.user = user
        _personal(model, products, [c for c in eligible if c.user >= 0], preferred, bought, k)

    # A seeded random order: reproducible for the same run, favouring no one (ids follow sign-up time).
    base = sorted(eligible, key=lambda c: (c.customer_id, c.occasion))
    rng = np.random.default_rng(int.from_bytes(hashlib.sha256(seed.encode()).digest()[:8], "little"))
    fair = [base[i] for i in rng.permutation(len(base))]
    _allocate(fair, k, products.caps(max_per_product).tolist(), products.until.tolist(), popular, bought)
    served = [c for c in base if c.chosen]
    return served, products


def _personal(model: FactorModel, products: _Products, group: list[_Candidate], preferred: dict[str, np.ndarray],
              bought: dict[str, set[int]], k: int) -> None:
    """Each customer's top items from their trained factors, best first, bought items left out.

    All customers of one occasion are scored in one call of implicit's
    threaded top-k; the depth (4k + 8) leaves room for full products.
    """
    if not group:
        return
    to_model = np.array([model.item_index.get(p, -1) for p in products.ids], dtype=np.int64)
    known = to_model >= 0
    from_model = np.full(len(model.item_ids), -1, dtype=np.int64)
    from_model[to_model[known]] = np.flatnonzero(known)
    depth = min(len(model.item_ids), 4 * k + 8)
    for occasion in sorted({c.occasion for c in group}):
        members = [c for c in group if c.occasion == occasion]
        allow = np.zeros(len(model.item_ids), dtype=bool)
        allow[to_model[known]] = preferred[occasion][known]
        if not allow.any() or depth <= 0:
            continue
        rows, cols = [], []
        for r, c in enumerate(members):
            for i in bought.get(c.customer_id, ()):
                if to_model[i] >= 0:
                    rows.append(r)
                    cols.append(to_model[i])
        seen = sp.csr_matrix((np.ones(len(rows), np.float32), (rows, cols)), shape=(len(members), len(model.item_ids)))
        users = np.array([c.user for c in members], dtype=np.int64)
        top = batch_top_k(np.asarray(model.user_factors[users]), model.item_factors, seen, depth, allow)
        for c, row in zip(members, top):
            c.personal = from_model[row[row >= 0]].tolist()


def _allocate(order: list[_Candidate], k: int, caps: list[float], until: list[int], popular: dict[str, list[int]],
              bought: dict[str, set[int]]) -> None:
    """Round-robin greedy: in each of k rounds every customer, in ``order``, takes their best product with room.

    A customer's ranking is their personal list, then the occasion's popular
    list. Products only ever fill up, so each customer keeps a cursor into
    both lists and each popular list a cursor to its first product with
    room: the whole allocation is linear in what is scanned, not quadratic.
    """
    count = [0] * len(caps)
    first_open = {o: 0 for o in popular}
    cursor = {id(c): [0, 0] for c in order}
    done: set[int] = set()
    for _ in range(k):
        for c in order:
            if id(c) in done:
                continue
            pos = cursor[id(c)]
            pick = None
            while pos[0] < len(c.personal):
                p = c.personal[pos[0]]
                pos[0] += 1
                if count[p] < caps[p] and until[p] >= c.date:
                    pick = p
                    c.from_model += 1
                    break
            if pick is None:
                ranked = popular[c.occasion]
                start = first_open[c.occasion]
                while start < len(ranked) and count[ranked[start]] >= caps[ranked[start]]:
                    start += 1
                first_open[c.occasion] = start
                i, own = max(pos[1], start), bought.get(c.customer_id, ())
                while i < len(ranked):
                    p = ranked[i]
                    i += 1
                    if count[p] < caps[p] and until[p] >= c.date and p not in c.chosen and p not in own:
                        pick = p
                        break
                pos[1] = i
            if pick is None:
                done.add(id(c))
                continue
            c.chosen.append(pick)
            count[pick] += 1


_EPOCH = dt.date(1970, 1, 1).toordinal()


def _iso(day: int) -> str:
    return dt.date.fromordinal(_EPOCH + day).isoformat()


def _offer(c: _Candidate, contact: tuple[str | None, str | None], conf: CampaignSettings, products: _Products,
           code: str) -> Offer:
    personalized = c.from_model > 0
    reason = None if personalized else (c.reason or "capped")
    return Offer(
        customer_id=c.customer_id, email=contact[0], name=contact[1], occasion=c.occasion, date=_iso(c.date),
        occasion_year=c.year, code=code, discount=float(conf.discounts[c.occasion]),
        valid_from=_iso(max(c.date - conf.valid_days_before, c.today)),
        valid_until=_iso(c.date + conf.valid_days_after),
        product_ids=[products.ids[p] for p in c.chosen], product_names=[products.names[p] for p in c.chosen],
        mode="personalized" if personalized else "non_personalized", reason=reason)


# --- ledger and export ---------------------------------------------------------------------


def _record(db: sqlite_utils.Database, result: CampaignResult, out_path: Path | None) -> None:
    """Re-check eligibility, insert offers and decisions, write the export: all or nothing."""
    written = False
    try:
        with store.transaction(db):
            kept = _eligible(db, [_Candidate(o.customer_id, o.occasion, 0, o.occasion_year, 0) for o in result.offers],
                             result.skipped)
            keep = {(c.customer_id, c.occasion) for c in kept}
            result.offers = [o for o in result.offers if (o.customer_id, o.occasion) in keep]
            now = store.utcnow()
            store.insert_offers(db, [
                (o.customer_id, o.occasion, o.occasion_year, o.code, json.dumps(o.product_ids), o.discount,
                 o.valid_from, o.valid_until, result.campaign_id, now) for o in result.offers])
            store.insert_decisions(db, [
                (o.customer_id, now, f"campaign:{o.occasion}", result.model_version, o.mode, o.reason,
                 json.dumps(o.product_ids)) for o in result.offers])
            if out_path is not None:
                _export(out_path, result.offers)
                written = True
    except BaseException:
        if written and out_path is not None:
            out_path.unlink(missing_ok=True)
        raise


def _check_out(out: str | Path | None) -> Path | None:
    if out is None:
        return None
    path = Path(out)
    if path.suffix.lower() not in EXPORT_FORMATS:
        raise ValidationError(f"export file must end in {' or '.join(EXPORT_FORMATS)}, got {path.name!r}")
    return path


def _export(path: Path, offers: list[Offer]) -> None:
    """One row per offer, written to a temporary file and renamed, so a reader never sees half a file."""
    tmp = path.with_name(f".{path.name}.tmp-{secrets.token_hex(4)}")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(tmp, "w", newline="", encoding="utf-8") as fh:
            if path.suffix.lower() == ".csv":
                writer = csv.DictWriter(fh, EXPORT_COLUMNS)
                writer.writeheader()
                for o in offers:
                    row = o.export_row()
                    row["product_ids"] = "|".join(o.product_ids)
                    row["product_names"] = "|".join(n or "" for n in o.product_names)
                    writer.writerow(row)
            else:
                for o in offers:
                    fh.write(json.dumps(o.export_row(), ensure_ascii=False) + "\n")
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise ValidationError(f"cannot write {path}: {exc.strerror or exc}") from None


def offer_dict(offer: Offer) -> dict[str, Any]:
    """An offer as JSON-ready data (previews)."""
    return dataclasses.asdict(offer)


# --- what a storefront shows ---------------------------------------------------------------


def active_offers(db: sqlite_utils.Database, customer_id: str, on: str | None = None) -> dict[str, Any]:
    """The offers a storefront may show this customer: valid on their local today (or on ``on``).

    Only with marketing consent: a withdrawal hides every offer at once, even
    one already sent. An unknown customer simply has none, like one without
    offers, so a storefront never has to handle an error for a banner.
    """
    if on is not None:
        try:
            on = parse_date(on).isoformat()
        except ValueError as exc:
            raise ValidationError(f"date: {exc}") from None
    exists, tz = store.customer_timezone(db, customer_id)
    if not exists or not store.consented_among(db, [customer_id], MARKETING):
        return {"customer_id": customer_id, "on": on, "offers": []}
    if on is None:
        try:
            zone = zoneinfo.ZoneInfo(tz or "UTC")
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            zone = zoneinfo.ZoneInfo("UTC")
        on = dt.datetime.now(zone).date().isoformat()
    rows = store.active_offers(db, customer_id, on)
    ids = [json.loads(r["products"]) for r in rows]
    names = store.product_names(db, sorted({p for group in ids for p in group}))
    offers = [{"occasion": r["occasion"], "occasion_year": r["occasion_year"], "code": r["code"],
               "discount": r["discount"], "valid_from": r["valid_from"], "valid_until": r["valid_until"],
               "products": [{"product_id": p, "name": names.get(p)} for p in group]}
              for r, group in zip(rows, ids)]
    return {"customer_id": customer_id, "on": on, "offers": offers}
