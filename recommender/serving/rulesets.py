"""The rules at serve time: a worker's rule set, compiled into bits per product, and which rules apply to a list.

:class:`Rulebook` follows ``meta.rules_version`` (one indexed read per request), so a
rule created, paused or deleted by any worker, the CLI or the console applies from the
next request everywhere. The active rules are compiled once per rule-set version and
catalogue generation (:attr:`Catalogue.generation`: products changed, or the day turned)
into one bit matrix over the catalogue — bit ``r`` of row ``j`` says whether rule ``r``'s
condition matches product ``j`` — packed in whole 64-bit words (100 rules over a million
products: 16 MB), and the same aligned with the model's items; the compiled set is written
once as a rule set (``rule_sets``), which the decision log names rules by. Which rules apply
to a request (surface, audience, schedule) is worked out once per audience and schedule
window and kept (:class:`ActiveSet`). A request then reads only the bits of its few
candidates, in :func:`recommender.serving.arrange.arrange`, the rules' step of the one
ranking path.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import math
import sqlite3
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import sqlite_utils

from recommender import store
from recommender.online.assignment import bucket, derive_key
from recommender.serving.catalogue import Catalogue, day_number
from recommender.serving.context import Context, utc_now
from recommender.serving.rules import (
    Condition,
    Rule,
    RuleError,
    attribute_reader,
    parse_rule,
)

log = logging.getLogger("recommender.serving.rules")
REMOVING = ("bury", "rotate", "exclude", "include_only")  # the actions that can take a product off a list
UNITS = 10**9  # amounts are counted in billionths of the rank-normalised score (a tie written down is a tie)
# --- compiling ---------------------------------------------------------------------------------


def _column(bits: np.ndarray, r: int) -> np.ndarray:
    return ((bits[:, r >> 3] >> (r & 7)) & 1).astype(bool)


def condition_mask(
    condition: Condition, catalogue: Catalogue, columns: dict[str, Any], arrivals: set[str] | None, today: int
) -> np.ndarray:
    """The catalogue rows a condition matches (every field it gives)."""
    rows = len(catalogue.ids)
    mask = np.ones(rows, dtype=bool)
    index = catalogue.index
    if condition.products:
        wanted = np.zeros(rows, dtype=bool)
        for pid in condition.products:
            j = index.get(pid)
            if j is not None:
                wanted[j] = True
        mask &= wanted
    if condition.categories:
        codes = [columns["category_codes"][c] for c in condition.categories if c in columns["category_codes"]]
        mask &= np.isin(columns["category_code"], codes)
    with np.errstate(invalid="ignore"):
        if condition.min_price is not None:
            mask &= columns["price"] >= condition.min_price
        if condition.max_price is not None:
            mask &= columns["price"] <= condition.max_price
        if condition.min_stock is not None:
            mask &= columns["stock"] >= condition.min_stock
        if condition.max_stock is not None:
            mask &= columns["stock"] <= condition.max_stock
        a = condition.attribute
        if a is not None:
            reader = attribute_reader(a.name)
            if reader is not None:
                values = np.asarray(reader(catalogue), dtype=object)
            elif a.name == "name":
                values = np.asarray(columns["names"], dtype=object)
            elif a.name == "category":
                values = columns["category"]
            elif a.name == "price":
                values = columns["price"]
            elif a.name == "in_stock":
                values = columns["stock"]
            else:  # available_until: compared as dates
                values = columns["until"]
            if a.name == "available_until":
                target = [day_number(v, -1) for v in (a.value if a.op == "one_of" else (a.value,))]
                mask &= np.isin(values, target) if a.op != "contains" else np.zeros(rows, bool)
            elif a.op == "equals":
                mask &= values == a.value
            elif a.op == "one_of":
                mask &= np.isin(values, list(a.value))
            else:
                needle = a.value.casefold()
                mask &= np.fromiter((v is not None and needle in str(v).casefold() for v in values), bool, rows)
    if condition.new_within_days is not None:
        new = np.zeros(rows, dtype=bool)
        for pid in arrivals or ():
            j = index.get(pid)
            if j is not None:
                new[j] = True
        mask &= new
    return mask


class Compiled:
    """Active-status rules compiled against one catalogue generation: condition bits per row and per model item."""

    def __init__(
        self,
        rules: Sequence[Rule],
        catalogue: Catalogue,
        db: sqlite_utils.Database | None,
        now: dt.datetime,
        *,
        register: bool = False,
    ) -> None:
        self.rules = list(rules)
        self.names = [rule.name for rule in self.rules]
        # the id the decision log names these rules by (register: a worker's saved rules, not a preview or a check)
        self.rule_set: int | None = None
        if register and db is not None:
            try:
                self.rule_set = store.rule_set_id(db, self.names)
            except sqlite3.OperationalError as exc:  # the database busy past its timeout: log these lists by name
                log.warning("rule set not recorded (%s); lists name their rules in full", exc)
        self.catalogue = catalogue
        self.now = now
        rows = len(catalogue.ids)
        width = 8 * max(1, (len(self.rules) + 63) // 64)  # whole 64-bit words: a row reads as ints at once
        self.row_bits = np.zeros((rows, width), dtype=np.uint8)
        self.matches: list[int] = []
        columns = catalogue.row_columns()
        days = [r.condition.new_within_days for r in self.rules if r.condition.new_within_days]
        arrivals = None
        if days and db is not None:
            since = (now - dt.timedelta(days=max(days))).strftime("%Y-%m-%dT%H:%M:%SZ")
            arrivals_at = set(store.arrivals_since(db, since))
            arrivals = arrivals_at
        today = int((now.date() - dt.date(1970, 1, 1)).days)
        self._arrival_cache: dict[int, set[str]] = {}
        for r, rule in enumerate(self.rules):
            if rule.action.type == "pin":
                mask = np.zeros(rows, bool)
                j = catalogue.index.get(rule.action.product or "")
                if j is not None:
                    mask[j] = True
            elif rule.condition.empty():
                mask = np.ones(rows, bool)
            else:
                got = arrivals
                if rule.condition.new_within_days and db is not None:
                    got = self._arrivals(db, rule.condition.new_within_days)
                mask = condition_mask(rule.condition, catalogue, columns, got, today)
            self.matches.append(int(mask.sum()))
            self.row_bits[:, r >> 3] |= mask.astype(np.uint8) << np.uint8(r & 7)
        # rule r's bit in a row read as one little-endian int (see _codes); the decision log's bit too
        self.bit = [1 << r for r in range(len(self.rules))]
        self._holdout_keys: dict[str, bytes] = {}
        known = catalogue.rows_of_items >= 0
        self.item_bits = np.zeros((len(catalogue.item_ids), width), dtype=np.uint8)
        self.item_bits[known] = self.row_bits[catalogue.rows_of_items[known]]
        self._active: dict[tuple, ActiveSet] = {}
        self._held: dict[tuple, tuple[ActiveSet, ActiveSet]] = {}
        self._tables: dict[str, list[int]] = {}
        self._needs: dict[str, tuple[bool, bool]] = {}

    def code_table(self, space: str) -> list[int]:
        """Every product's rule bits as one Python int (rule ``r``: ``1 << r``), by position in ``space``: its packed
        row read as little-endian 64-bit words and joined. Made once per rule set and catalogue generation; equal
        codes are one object, so the table costs a pointer per product (most products share a few codes), and a
        request reads its candidates' codes without touching numpy."""
        table = self._tables.get(space)
        if table is None:
            words = (self.item_bits if space == "items" else self.row_bits).view("<u8")
            columns = words.T.tolist()  # the first word holds rules 0-63
            joined = columns[-1]
            for column in reversed(columns[:-1]):
                joined = [(high << 64) | low for high, low in zip(joined, column)]
            same: dict[int, int] = {}
            table = self._tables[space] = [same.setdefault(c, c) for c in joined]
        return table

    def column(self, r: int) -> np.ndarray:
        """The catalogue rows rule ``r``'s condition matches."""
        return _column(self.row_bits, r)

    def _arrivals(self, db: sqlite_utils.Database, days: int) -> set[str]:
        hit = self._arrival_cache.get(days)
        if hit is None:
            since = (self.now - dt.timedelta(days=days)).strftime("%Y-%m-%dT%H:%M:%SZ")
            hit = self._arrival_cache[days] = set(store.arrivals_since(db, since))
        return hit

    def _window(self, now: dt.datetime) -> tuple[dt.datetime | None, dt.datetime | None]:
        """The schedule boundaries around ``now``: the active set cannot change between them."""
        before, after = None, None
        for rule in self.rules:
            for edge in (rule.schedule.start_utc, rule.schedule.end_utc):
                if edge is None:
                    continue
                if edge <= now and (before is None or edge > before):
                    before = edge
                if edge > now and (after is None or edge < after):
                    after = edge
        return before, after

    def active(self, ctx: Context) -> ActiveSet:
        """The rules that apply to this request, kept per surface, arm, visitor kind, segment and schedule window."""
        needs = self._needs.get(ctx.surface)
        if needs is None:
            on = [r for r in self.rules if r.applies_to(ctx.surface)]
            needs = self._needs[ctx.surface] = (
                any(r.audience.visitors for r in on),
                any(r.audience.segments for r in on),
            )
        visitor = ctx.visitor() if needs[0] else None
        segment = ctx.segment() if needs[1] else None
        key = (ctx.surface, ctx.arm, visitor, segment)
        hit = self._active.get(key)
        if hit is not None and hit.since <= ctx.epoch < hit.until:
            return hit
        now = ctx.at
        chosen = []
        for r, rule in enumerate(self.rules):
            if not rule.applies_to(ctx.surface) or not rule.schedule.active(now):
                continue
            aud = rule.audience
            if aud.arms and ctx.arm not in aud.arms:
                continue
            if aud.visitors and (visitor or ctx.visitor()) not in aud.visitors:
                continue
            if aud.segments and (segment or ctx.segment()) not in aud.segments:
                continue
            chosen.append(r)
        since, until = self._window(now)
        if len(self._active) > 256:
            self._active.clear()
        self._active[key] = out = ActiveSet(self, chosen, since, until)
        return out

    def holdout_key(self, db: sqlite_utils.Database, rule: Rule) -> bytes:
        """The keyed hash of a rule's holdout: the database's arm key mixed with the rule's name (kept per process)."""
        got = self._holdout_keys.get(rule.name)
        if got is None:
            got = self._holdout_keys[rule.name] = derive_key(db, "rule-holdout|" + rule.name)
        return got

    def with_holdouts(self, active: ActiveSet, ctx: Context) -> ActiveSet:
        """``active`` less the rules whose holdout share this customer falls in (recorded as held out)."""
        if not active.holdouts or ctx.customer_id is None or ctx.db is None:
            return active
        held = tuple(
            r
            for r, rule in active.holdouts
            if bucket(self.holdout_key(ctx.db, rule), ctx.customer_id) < rule.holdout_share
        )
        if not held:
            return active
        key = (id(active), held)
        hit = self._held.get(key)
        if hit is None or hit[0] is not active:
            if len(self._held) > 256:
                self._held.clear()
            out = ActiveSet(self, [r for r in active.columns if r not in held], *active._window)
            out.held_out = [self.rules[r].name for r in held]
            out.held_bits = _mask(self.bit[r] for r in held)
            hit = self._held[key] = (active, out)
        return hit[1]


class ActiveSet:
    """The rules of one request kind, by action; the masks they need, made on first use and kept."""

    def __init__(self, compiled: Compiled, chosen: Sequence[int], since, until) -> None:
        self.compiled = compiled
        # the schedule window it holds for, in Unix seconds (compared on every request without a datetime)
        self.since = -math.inf if since is None else since.timestamp()
        self.until = math.inf if until is None else until.timestamp()
        self._window = (since, until)
        rules = compiled.rules
        self.columns = list(chosen)
        self.filters = [(r, rules[r]) for r in chosen if rules[r].action.type in ("exclude", "include_only")]
        self.boosts = [(r, rules[r]) for r in chosen if rules[r].action.type in ("boost", "bury")]
        # each boost's amount (a bury's negative) in billionths of the rank-normalised score: whole numbers add up
        # and compare exactly (see arrange)
        self.units = {
            compiled.bit[r]: round(rule.action.amount * UNITS) * (1 if rule.action.type == "boost" else -1)
            for r, rule in self.boosts
        }
        self.rotates = [(r, rules[r]) for r in chosen if rules[r].action.type == "rotate"]
        order = sorted(chosen, key=lambda r: (-rules[r].priority, rules[r].name))
        self.promotes = [(r, rules[r]) for r in order if rules[r].action.type == "promote"]
        # what arrange reads of each promotion, in the order they act: (bit, of, slots, r)
        self.promote_plan = [(compiled.bit[r], rule.action.of, rule.action.slots, r) for r, rule in self.promotes]
        self.pins = [(r, rules[r]) for r in order if rules[r].action.type == "pin"]
        self.holdouts = [(r, rules[r]) for r in chosen if rules[r].holdout_share]
        self.held_out: list[str] = []  # rules this customer is held out of (set by Compiled.with_holdouts)
        self.held_bits = 0
        self._pinned: dict[tuple[str, bool], list[tuple[int, int, int, int]]] = {}
        self._allow: dict[str, np.ndarray | None] = {}
        self._cond: dict[tuple[str, int], np.ndarray] = {}
        self._boost: dict[int, int] = {}  # a product's boost bits -> their amounts (see boost_table)
        self._boost_table: dict[str, list[int]] = {}
        # for arrange: the rules as bits of a product's code (see _codes), so a step tests a candidate
        # against a whole group of rules at once and names only the rules whose bits are set
        bit = compiled.bit
        self.boost_bits = _mask(bit[r] for r, _ in self.boosts)
        self.up_bits = _mask(bit[r] for r, rule in self.boosts if rule.action.type == "boost")
        self.down_bits = self.boost_bits & ~self.up_bits  # the buries
        self.removing_bits = _mask(bit[r] for r in chosen if rules[r].action.type in REMOVING)
        self.exclude_bits = _mask(bit[r] for r, rule in self.filters if rule.action.type == "exclude")
        self.include_bits = _mask(bit[r] for r, rule in self.filters if rule.action.type == "include_only")
        # per window of days: the fewest showings any of its rotations acts after, and its rotations grouped by
        # (showings, demotion in UNITS) as the bits of their rules: a product matching k rules of a group it was
        # shown often enough for is demoted k times the group's amount
        windows: dict[int, dict[tuple[int, int], int]] = {}
        for r, rule in self.rotates:
            group = windows.setdefault(rule.action.days, {})
            key = (rule.action.after, round(rule.action.amount * UNITS))
            group[key] = group.get(key, 0) | bit[r]
        self.rotate_windows = [
            (days, min(after for after, _ in groups), sorted((a, u, b) for (a, u), b in groups.items()))
            for days, groups in windows.items()
        ]

    def __bool__(self) -> bool:
        return bool(self.columns) or bool(self.held_bits)

    def boost_table(self, space: str) -> list[int]:
        """Every product's boost amounts minus bury amounts in :data:`UNITS` (whole numbers, so sums are exact), by
        position in ``space``: worked out once per combination of boosts and rule set (a pointer per product)."""
        table = self._boost_table.get(space)
        if table is None:
            amounts, mask = self._boost, self.boost_bits
            table = []
            for code in self.compiled.code_table(space):
                bits = code & mask
                got = amounts.get(bits)
                if got is None:
                    got, rest = 0, bits
                    while rest:
                        low = rest & -rest
                        got += self.units[low]
                        rest ^= low
                    amounts[bits] = got
                table.append(got)
            self._boost_table[space] = table
        return table

    def pinned(self, space: Space, reorder_only: bool) -> list[tuple[int, int, int, int]]:
        """The pins, in the order they are placed, as ``(bit, position, product, its rule bits)``: those whose product
        is in ``space`` and (unless re-ranking) not excluded by the rules; the same for every list, so kept."""
        key = (space.name, reorder_only)
        got = self._pinned.get(key)
        if got is None:
            rule_allow = self.allow(space.name)
            codes = self.compiled.code_table(space.name)
            got = []
            for r, rule in self.pins:
                i = space.index_of(rule.action.product or "")
                if i is not None and (rule_allow is None or reorder_only or rule_allow[i]):
                    got.append((self.compiled.bit[r], rule.action.position, i, codes[i]))
            self._pinned[key] = got
        return got

    @property
    def extra(self) -> int:
        """Candidates beyond ``n`` that promotions and pins may need."""
        return sum(rule.action.slots for _, rule in self.promotes) + len(self.pins)

    def bits(self, space: str) -> np.ndarray:
        return self.compiled.item_bits if space == "items" else self.compiled.row_bits

    def allow(self, space: str) -> np.ndarray | None:
        """What ``exclude`` / ``include_only`` leave in ``space`` (``items`` or ``rows``); None when none apply."""
        if not self.filters:
            return None
        if space not in self._allow:
            bits = self.bits(space)
            keep = np.ones(len(bits), dtype=bool)
            for r, rule in self.filters:
                col = _column(bits, r)
                keep &= col if rule.action.type == "include_only" else ~col
            keep.flags.writeable = False
            self._allow[space] = keep
        return self._allow[space]

    def matching(self, space: str, r: int) -> np.ndarray:
        """Rule ``r``'s condition in ``space``, less what exclusions remove (for a promotion's own search)."""
        key = (space, r)
        if key not in self._cond:
            mask = _column(self.bits(space), r)
            allow = self.allow(space)
            if allow is not None:
                mask &= allow
            mask.flags.writeable = False
            self._cond[key] = mask
        return self._cond[key]


# --- a worker's rules --------------------------------------------------------------------------


class Rulebook:
    """The rules a worker applies: re-read when ``meta.rules_version`` moves, compiled per catalogue generation.

    ``Rulebook(rules)`` holds a fixed list instead (a preview, a test) and reads no version.
    """

    def __init__(self, rules: Sequence[Rule] | None = None) -> None:
        self.fixed = rules is not None
        self.rules: tuple[Rule, ...] = tuple(rules or ())
        self.version: int | None = None
        self._compiled: dict[int, tuple[tuple, Compiled]] = {}
        self._live: tuple[tuple[Rule, ...], list[Rule]] | None = None
        self._rotation: tuple[int, int] | None = None  # the longest window and fewest showings of the rotations

    def refresh(self, db: sqlite_utils.Database, ctx: Context | None = None) -> None:
        """Re-read the rules when their version moved. For a customer's list while rules rotate, the same read
        counts the customer's lists in the longest rotation window: most have too few for any rotation to act,
        and ``ctx`` is told so (their lists are then never read)."""
        if self.fixed:
            return
        window = self._rotation
        counting = window is not None and ctx is not None and ctx.customer_id is not None and ctx.db is not None
        if counting:
            version, lists = store.rules_version_and_lists(db, ctx.customer_id, ctx.since(window[0]))
        else:
            version = store.rules_version(db)
        if version != self.version:
            rules = []
            for row in store.rule_rows(db):
                try:
                    rules.append(parse_rule(json.loads(row["body"])).with_status(row["status"]))
                except (RuleError, ValueError):
                    log.warning("rule %r cannot be read and is skipped", row["name"])
            self.rules, self.version = tuple(rules), version
            self._compiled.clear()
            rotations = [r.action for r in rules if r.status == "active" and r.action.type == "rotate"]
            self._rotation = (max(a.days for a in rotations), min(a.after for a in rotations)) if rotations else None
        if counting:  # (trusted only for a window as long or shorter: see Context.read_impressions)
            ctx.lists_counted(window[0], lists)

    def compiled(
        self,
        db: sqlite_utils.Database | None,
        catalogue: Catalogue,
        now: dt.datetime | None = None,
        ctx: Context | None = None,
    ) -> Compiled | None:
        """The active-status rules compiled for ``catalogue`` now; None when no rule is active (costs nothing)."""
        if db is not None:
            self.refresh(db, ctx)
        if self._live is None or self._live[0] is not self.rules:
            self._live = (self.rules, [r for r in self.rules if r.status == "active"])
        live = self._live[1]
        if not live:
            return None
        seconds = ctx.epoch if ctx is not None else now.timestamp() if now is not None else time.time()
        key = (catalogue.generation, int(seconds // 86400))  # (the UTC day)
        hit = self._compiled.get(id(catalogue))
        if hit is not None and hit[0][0] is key[0] and hit[0][1] == key[1] and hit[1].catalogue is catalogue:
            return hit[1]
        now = ctx.at if ctx is not None else now or utc_now()
        compiled = Compiled(live, catalogue, db, now, register=not self.fixed)
        if len(self._compiled) > 8:
            self._compiled.clear()
        self._compiled[id(catalogue)] = (key, compiled)
        return compiled

    def active(self, db: sqlite_utils.Database | None, catalogue: Catalogue, ctx: Context) -> ActiveSet | None:
        """The rules that apply to this list (None when none do)."""
        compiled = self.compiled(db, catalogue, ctx.now, ctx)
        if compiled is None:
            return None
        active = compiled.with_holdouts(compiled.active(ctx), ctx)
        return active if active else None


# --- where a list's candidates live ------------------------------------------------------------


@dataclass
class Space:
    """Where a list's candidates live: ``items`` (a model's rows) or ``rows`` (the catalogue's)."""

    name: str
    product_id: Callable[[int], str]
    index_of: Callable[[str], int | None]


def items_space(catalogue: Catalogue) -> Space:
    return Space("items", catalogue.item_ids.__getitem__, catalogue.item_index.get)


def rows_space(catalogue: Catalogue) -> Space:
    ids = catalogue.ids
    return Space("rows", ids.__getitem__, catalogue.index.get)


def _mask(bits: Iterable[int]) -> int:
    out = 0
    for b in bits:
        out |= b
    return out
