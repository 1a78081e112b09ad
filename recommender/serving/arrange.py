"""The rules' step of the one ranking path: a list's candidates in, the list the active rules make out.

:func:`arrange` runs after the model scored and the hard filters ran, before diversity and the
list size (:mod:`recommender.serving.ranking`; the popular, similar and bought-together lists and
campaign offers call it on their own candidates). In order: ``exclude`` / ``include_only``, the
rank-normalised score plus ``boost`` / ``bury`` amounts and ``rotate`` demotions, then ``pin``,
then ``promote``; then the caller's diversity cap and length (pins keep their positions through
the cap). See :mod:`recommender.serving.rules` for what each does, and
:mod:`recommender.serving.rulesets` for the compiled rule set (:class:`ActiveSet`) it reads.

A request's work is on its few candidates only, in plain Python: each candidate's rule bits are
one Python int (rule ``r``: bit ``1 << r``) read from the rule set's table
(:meth:`~recommender.serving.rulesets.Compiled.code_table`), so a step tests a candidate against a
whole group of rules with one ``&``; boost amounts are whole numbers (so they add and compare
exactly), worked out once per combination of boosts. A request's few dozen candidates cost less
in the interpreter than in numpy, whose every call is slow when the request's other work has
pushed it out of the CPU's caches. What the rules did is recorded as those bits too
(:class:`~recommender.serving.rules.Effects`), named only when read.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field

import numpy as np

from recommender.serving.context import Context
from recommender.serving.rules import POOL, Effects
from recommender.serving.rulesets import UNITS, ActiveSet, Space

Fill = Callable[[np.ndarray | None, int, Collection[int]], Sequence[int]]


@dataclass
class Arranged:
    items: list[int]
    effects: Effects = field(default_factory=Effects)


def _first(order: list[int], k: int) -> list[int]:
    return order[:k]


def arrange(
    active: ActiveSet,
    space: Space,
    pool: Sequence[int],
    n: int,
    ctx: Context,
    *,
    fill: Fill | None = None,
    allowed: Callable[[int], bool] | None = None,
    finish: Callable[[list[int], int], list[int]] | None = None,
    reorder_only: bool = False,
) -> Arranged:
    """Apply the active rules to a candidate list (best first, hard filters already applied); top ``n`` and effects.

    ``fill(mask, k, taken)`` asks the list's source (the model, the popular list) for up
    to ``k`` more candidates that ``mask`` allows (None: any the hard filters allow),
    best first, none of ``taken``; ``allowed(i)`` says whether the hard filters let a
    pinned product in (it must also pass the rules' exclusions); ``finish(order, k)``
    is the caller's diversity cap and length (default: the first ``k``).
    ``reorder_only`` (a re-ranking) keeps every product: exclusions move products to the end.

    The work is on the candidates only: their rule bits read once as Python ints, so a step
    tests a candidate against a group of rules with one ``&``; never a loop over the catalogue,
    and a loop over rules only for the rules of one kind. Scores are whole numbers: the
    rank-normalised score ``-rank / scale`` plus the amounts, times ``scale * UNITS``, so
    they add and compare exactly and ties keep the model's order.
    """
    finish = finish or _first
    cand = list(pool)
    base = finish(cand, n)
    scale = max(POOL, n)
    effects = Effects(active.compiled.names, active.compiled.rule_set)
    name = space.name
    table = active.compiled.code_table(name)
    codes = [table[i] for i in cand]
    ranks: list[int] | range = range(len(cand))
    acting: dict[int, int] = {}  # candidate -> the bits of the rules that demoted it (rotation, re-ranking exclusion)
    penalty: list[int] | None = None  # per candidate, the exclusions that move it to the end (re-ranking)

    # 1. exclude / include_only: a candidate fails the exclusions whose bit it has and the include-onlys it lacks
    if active.filters and cand:
        ex, inc = active.exclude_bits, active.include_bits
        fails = [(c & ex) | (inc & ~c) for c in codes] if inc else [c & ex for c in codes]
        if reorder_only:
            penalty = [f.bit_count() for f in fails]
            for i, f in zip(cand, fails):
                if f:
                    acting[i] = f
        elif any(fails):
            on_list = set(base)
            kept: list[int] = []
            for k, f in enumerate(fails):
                if not f:
                    kept.append(k)
                elif cand[k] in on_list:  # the first exclusion that removes it says so
                    effects.mark("removed", space.product_id(cand[k]), f & -f)
            pool_len = len(cand)
            cand, codes, ranks = [cand[k] for k in kept], [codes[k] for k in kept], kept
            if len(cand) < n and fill is not None:
                more = list(fill(active.allow(name), n - len(cand), set(pool)))
                cand += more
                codes += [table[i] for i in more]
                ranks += range(pool_len, pool_len + len(more))

    # 2. boost / bury on the rank-normalised score, and rotation. Scores are whole numbers: the score times
    #    ``scale * UNITS``, negated (lower first), so amounts add and compare exactly
    key: list[int] | None = None
    if active.boosts and cand:
        boosts = active.boost_table(name)
        amounts = [boosts[i] for i in cand]
        if any(amounts):
            key = [r * UNITS - scale * a for r, a in zip(ranks, amounts)]
    if penalty is not None:
        key = key or [r * UNITS for r in ranks]
        for k, times in enumerate(penalty):
            key[k] += times * scale * 1000 * UNITS
    if active.rotate_windows and ctx.customer_id is not None and ctx.db is not None and cand:
        demoted = _rotate(active, space, cand, codes, acting, ctx)
        if demoted:
            key = key or [r * UNITS for r in ranks]
            for k, amount in demoted.items():
                key[k] += scale * amount
    # a stable sort: equal scores keep the model's order
    order = [cand[k] for k in sorted(range(len(cand)), key=key.__getitem__)] if key is not None else list(cand)
    code_of = dict(zip(cand, codes))  # the candidates' rule bits
    known = dict(code_of)  # and those of pinned and filled-in products

    def learn(items: Sequence[int]) -> None:
        known.update((i, table[i]) for i in items)

    # 3. pins, by priority then name; the hard filters and the exclusions still decide. Their positions are
    #    reserved first, so a promotion counts the slots left around them.
    placed_by: dict[int, int] = {}  # product -> the bit of the pin or promotion that placed it
    pins: dict[int, int] = {}
    for b, position, i, code in active.pinned(space, reorder_only):
        if i in placed_by or (allowed is not None and not allowed(i)):
            continue
        if reorder_only and i not in code_of:
            continue
        while position in pins:
            position += 1
        if position > n:
            continue
        pins[position] = i
        placed_by[i] = b
        known[i] = code
    if pins:
        order = [i for i in order if i not in placed_by]

    # 4. promote: K of the first N positions to matching products, the best of them (pinned ones count)
    if active.promotes:
        order = _promote(active, name, order, n, pins, placed_by, known, code_of, learn, fill)

    # 5. the caller's diversity cap and length; pins keep their positions
    final = finish(order, n - len(pins))
    if pins:
        for position in sorted(pins):
            if position <= len(final) + 1:
                final.insert(position - 1, pins[position])
            else:  # the list is shorter than the position: it ends with the pin
                final.append(pins[position])
        final = final[:n]

    # 6. what each rule did, read for the few products shown or dropped only, credited in the direction it acts:
    #    a product placed or moved up owes it to the pin or promotion that placed it and the boosts it carries; one
    #    moved down, to its pin and what demoted it (buries, rotations, a re-ranking's exclusions). A product that
    #    moved only because others came or went owes nothing to its own rules; one brought in by a pin or a
    #    promotion owes its place to that rule alone.
    before = {i: p for p, i in enumerate(base)}
    marks = effects.marks
    up_bits, down_bits = active.up_bits, active.down_bits
    product_id = space.product_id
    placed: dict[str, int] = {}
    moved: dict[str, int] = {}
    for p, i in enumerate(final):
        was = before.get(i)
        if was == p:
            continue
        c = code_of.get(i, 0)
        if was is None or p < was:
            bits = placed_by.get(i, 0) | (c & up_bits)
        else:
            bits = placed_by.get(i, 0) | acting.get(i, 0) | (c & down_bits)
        if bits:
            (placed if was is None else moved)[product_id(i)] = bits
    if placed:
        marks["placed"] = placed
    if moved:
        marks["moved"] = moved
    shown = set(final)
    removing = active.removing_bits
    for i in base:
        if i not in shown and i in code_of:
            bits = (acting.get(i, 0) | (code_of[i] & down_bits)) & removing
            if bits:
                effects.mark("removed", product_id(i), bits)
    effects.held = active.held_bits
    return Arranged(final, effects)


def _rotate(
    active: ActiveSet, space: Space, cand: list[int], codes: list[int], acting: dict, ctx: Context
) -> dict[int, int]:
    """The demotions (candidate position -> UNITS) of the candidates a rotation matches that this customer was
    shown ``after`` times in its window and did not touch (the rule's bit added to ``acting``)."""
    windows = active.rotate_windows
    if not ctx.read_impressions(max(w[0] for w in windows), min(w[1] for w in windows)):
        return {}
    product_id = space.product_id
    demoted: dict[int, int] = {}
    for days, least, groups in windows:
        shown = ctx.impressions(days, least)
        if not shown:
            continue
        hot = [(k, t) for k, t in enumerate(shown.get(product_id(i), 0) for i in cand) if t >= least]
        if not hot:
            continue
        engaged = ctx.engaged(days)
        for k, t in hot:
            if product_id(cand[k]) in engaged:
                continue
            for after, amount, bits in groups:
                if t >= after:
                    matched = codes[k] & bits
                    if matched:
                        demoted[k] = demoted.get(k, 0) + amount * matched.bit_count()
                        acting[cand[k]] = acting.get(cand[k], 0) | matched
    return demoted


def _promote(
    active: ActiveSet,
    name: str,
    order: list[int],
    n: int,
    pins: dict[int, int],
    placed_by: dict[int, int],
    known: dict[int, int],
    code_of: dict[int, int],
    learn: Callable[[Sequence[int]], None],
    fill: Fill | None,
) -> list[int]:
    """``order`` with each promotion's products moved into its first positions (by priority, then name).

    A promotion looks past its first positions only when it lacks products there and has a position
    it may take (not a matching product, not one an earlier rule placed).
    """
    held_in: dict[int, tuple[list[int], int]] = {}  # per top: the codes of the pinned products within it, or'd
    heads: dict[int, tuple[list[int], list[int], int, list[int]]] = {}  # per length: the first products, their
    # codes, or'd, and the positions no rule placed a product at (kept until a promotion changes the order)
    for b, of_rule, slots, r in active.promote_plan:
        top = of_rule if of_rule < n else n
        held = held_in.get(top)
        if held is None:
            got = [known[i] for p, i in pins.items() if p <= top]
            held = held_in[top] = (got, _union(got))
        of = top - len(held[0])
        if of <= 0:
            continue
        head = heads.get(of)
        if head is None:
            first = order[:of]
            got = [known[i] for i in first]
            head = heads[of] = (first, got, _union(got), [p for p, i in enumerate(first) if i not in placed_by])
        first, codes, any_code, unplaced = head
        if not unplaced:
            continue
        need = slots if slots < top else top
        if (any_code | held[1]) & b:  # some of its first positions hold matching products already
            if need == 1:
                continue
            need -= sum(1 for c in codes if c & b) + sum(1 for c in held[0] if c & b)
            if need <= 0:
                continue
        free = [p for p in unplaced if not codes[p] & b]
        if not free:
            continue
        outside: list[int] = []
        at: list[int] = []  # where in ``order`` they were
        for j in range(of, len(order)):
            if known[order[j]] & b:
                outside.append(order[j])
                at.append(j)
                if len(outside) == need:
                    break
        if len(outside) < need and fill is not None:
            taken = set(order) | set(pins.values())
            more = [int(i) for i in fill(active.matching(name, r), need - len(outside), taken) if i not in code_of]
            outside += more[: need - len(outside)]
            learn(outside)
        outside = outside[: len(free)]
        if not outside:
            continue
        take = list(zip(free[len(free) - len(outside) :], outside))
        first = list(first)
        displaced = [first[p] for p, _ in take]
        for p, i in take:
            first[p] = i
            placed_by[i] = b
        rest = order[of:]
        for j in reversed(at[: len(outside)]):
            del rest[j - of]
        order = first + displaced + rest
        heads.clear()
    return order


def _union(codes: Sequence[int]) -> int:
    out = 0
    for c in codes:
        out |= c
    return out


def pool_size(n: int, active: ActiveSet | None) -> int:
    """How many candidates to ask the model for: ``n``, or ``max(POOL, n)`` when rules apply (a promotion or an
    exclusion that needs more asks the source again)."""
    if not active or not active.columns:
        return n
    return max(POOL, n)
