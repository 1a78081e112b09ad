"""The rules' step of the one ranking path: a list's candidates in, the list the active rules make out.

:func:`arrange` runs after the model scored and the hard filters ran, before diversity and the
list size (:mod:`recommender.serving.ranking`; the popular, similar and bought-together lists and
campaign offers call it on their own candidates). In order: ``exclude`` / ``include_only``, the
rank-normalised score plus ``boost`` / ``bury`` amounts and ``rotate`` demotions, then ``pin``,
then ``promote``; then the caller's diversity cap and length (pins keep their positions through
the cap). See :mod:`recommender.serving.rules` for what each does, and
:mod:`recommender.serving.rulesets` for the compiled rule set (:class:`ActiveSet`) it reads.

A request's work is on its few candidates only: each candidate's rule bits read once as one
Python int (rule ``r``: bit ``1 << r``; kept per rule set for the products lists keep proposing),
so a step tests a candidate against a whole group of rules with one ``&``; the rule set's
combined boost vector and the exclusions' combined mask are made once per rule-set version.
What the rules did is recorded as those bits too (:class:`~recommender.serving.rules.Effects`),
named only when read.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field

import numpy as np

from recommender.serving.rules import POOL, Effects
from recommender.serving.rulesets import ActiveSet, Context, Space

CODES_KEPT = 50_000  # products whose rule bits a worker keeps read per rule set and space (a few MB at most)

Fill = Callable[[np.ndarray | None, int, Collection[int]], Sequence[int]]


@dataclass
class Arranged:
    items: list[int]
    effects: Effects = field(default_factory=Effects)


def _codes(active: ActiveSet, space: str, idx: Sequence[int]) -> list[int]:
    """Each product's rule bits as one Python int: read from the packed rows once per rule set and product, then
    kept (a shop's lists keep proposing the same popular products)."""
    known = active.compiled.codes[space]
    try:
        return [known[i] for i in idx]
    except KeyError:
        pass
    out = [known.get(i) for i in idx]
    missing = [k for k, c in enumerate(out) if c is None]
    if missing:
        words = active.bits(space)[np.asarray([idx[k] for k in missing], dtype=np.int64)].view("<u8")
        if words.shape[1] == 1:
            read = words[:, 0].tolist()
        else:
            columns = words.T.tolist()  # the first word holds rules 0-63
            read = columns[-1]
            for column in reversed(columns[:-1]):
                read = [(high << 64) | low for high, low in zip(read, column)]
        if len(known) > CODES_KEPT:
            known.clear()
        for k, c in zip(missing, read):
            out[k] = known[idx[k]] = c
    return out  # type: ignore[return-value]


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

    The work is on the candidates only: their rule bits read once as Python ints (one gather of
    the packed rows), so a step tests a candidate against a group of rules with one ``&``; the rule
    set's combined boost vector (made once per rule-set version) and the exclusions' combined mask;
    never a loop over the catalogue, and a loop over rules only for the rules of one kind.
    """
    finish = finish or (lambda order, k: list(order[:k]))
    cand = [int(i) for i in pool]
    base = finish(cand, n)
    scale = float(max(POOL, n))
    effects = Effects(active.compiled.names, active.compiled.rule_set)
    name = space.name
    bit = active.compiled.bit
    codes = _codes(active, name, cand)
    ranks = np.arange(len(cand), dtype=np.int64)
    pool_len = len(cand)
    acting: dict[int, int] = {}  # candidate -> the bits of the rules that demoted it (rotation, re-ranking exclusion)
    penalty: list[list[int]] | None = None

    # 1. exclude / include_only
    if active.filters and cand:
        if reorder_only:
            penalty = []  # per exclusion, the candidates it moves to the end (applied in order below)
            for r, rule in active.filters:
                b, only = bit[r], rule.action.type == "include_only"
                bad = [k for k, c in enumerate(codes) if bool(c & b) != only]
                penalty.append(bad)
                for k in bad:
                    acting[cand[k]] = acting.get(cand[k], 0) | b
        else:
            keep = active.allow(name)[np.asarray(cand, dtype=np.int64)]
            if not keep.all():
                base_set = set(base)
                for k in np.flatnonzero(~keep).tolist():
                    if cand[k] in base_set:  # the first exclusion that removes it says so
                        for r, rule in active.filters:
                            if bool(codes[k] & bit[r]) != (rule.action.type == "include_only"):
                                effects.mark("removed", space.product_id(cand[k]), bit[r])
                                break
                kept = np.flatnonzero(keep).tolist()
                cand, codes, ranks = [cand[k] for k in kept], [codes[k] for k in kept], ranks[keep]
                if len(cand) < n and fill is not None:
                    more = [int(i) for i in fill(active.allow(name), n - len(cand), set(pool))]
                    cand += more
                    codes += _codes(active, name, more)
                    ranks = np.concatenate([ranks, pool_len + np.arange(len(more), dtype=np.int64)])
    scores = -ranks / scale
    for bad in penalty or ():
        scores[bad] -= 1000.0

    # 2. boost / bury on the rank-normalised score (the rule set's combined amounts), and rotation
    if active.boosts and cand:
        scores = scores + active.boost_vector(name)[np.asarray(cand, dtype=np.int64)]
    if active.rotate_windows and ctx.customer_id is not None and ctx.db is not None and cand:
        _rotate(active, space, cand, codes, scores, acting, ctx)
    # rounded, so a tie written down (0.1 = five places) is a tie in floating point too: the model's order decides
    # (ranks ascend, so a stable sort keeps the model's order among equal scores)
    order_k = np.argsort(-np.round(scores, 9), kind="stable")  # candidate positions, best first
    code_of = dict(zip(cand, codes))  # the candidates' rule bits
    known = dict(code_of)  # and those of pinned and filled-in products

    def learn(items: Sequence[int]) -> None:
        new = [i for i in items if i not in known]
        known.update(zip(new, _codes(active, name, new)))

    # 3. pins, by priority then name; the hard filters and the exclusions still decide. Their positions are
    #    reserved first, so a promotion counts the slots left around them.
    placed_by: dict[int, int] = {}  # product -> the bit of the pin or promotion that placed it
    pins: dict[int, int] = {}
    for b, rule, i in active.pinned(space, reorder_only):
        if i in placed_by or (allowed is not None and not allowed(i)):
            continue
        if reorder_only and i not in code_of:
            continue
        position = rule.action.position
        while position in pins:
            position += 1
        if position > n:
            continue
        pins[position] = i
        placed_by[i] = b
    order = [cand[k] for k in order_k.tolist()]
    if pins:
        pinned = set(pins.values())
        order = [i for i in order if i not in pinned]
        learn(list(pinned))

    # 4. promote: K of the first N positions to matching products, the best of them (pinned ones count)
    if active.promotes:
        order = _promote(active, name, order, n, pins, placed_by, known, code_of, learn, fill)

    # 5. the caller's diversity cap and length; pins keep their positions
    chosen = finish(order, n - len(pins))
    final: list[int] = []
    rest = iter(chosen)
    for position in range(1, n + 1):
        if position in pins:
            final.append(pins[position])
        else:
            nxt = next(rest, None)
            if nxt is None:
                break
            final.append(nxt)
    final += [pins[p] for p in sorted(pins) if pins[p] not in final]
    final = final[:n]

    # 6. what each rule did, read for the few products shown or dropped only: the rule that placed a product,
    #    and, for a candidate the model proposed, every rule that demoted it or whose boost or bury amount its
    #    score carries (a product a pin or a promotion brought in owes its place to that rule alone)
    before = {i: p for p, i in enumerate(base)}
    marks = effects.marks
    boost_bits = active.boost_bits
    product_id = space.product_id
    for p, i in enumerate(final):
        if before.get(i) == p:
            continue
        c = code_of.get(i)
        bits = placed_by.get(i, 0) | acting.get(i, 0) | (c & boost_bits if c is not None else 0)
        if bits:
            marks.setdefault("placed" if i not in before else "moved", {})[product_id(i)] = bits
    shown = set(final)
    removing = active.removing_bits
    for i in base:
        if i not in shown and i in code_of:
            bits = (acting.get(i, 0) | (code_of[i] & boost_bits)) & removing
            if bits:
                removed = marks.setdefault("removed", {})
                removed[product_id(i)] = removed.get(product_id(i), 0) | bits
    effects.held = active.held_bits
    return Arranged(final, effects)


def _rotate(
    active: ActiveSet, space: Space, cand: list[int], codes: list[int], scores: np.ndarray, acting: dict, ctx: Context
) -> None:
    """Demote the candidates a rotation matches that this customer was shown ``after`` times in its window and
    did not touch (``scores`` in place; the rule's bit added to ``acting``)."""
    windows = active.rotate_windows
    if not ctx.read_impressions(max(days for days, _, _ in windows), min(least for _, _, least in windows)):
        return
    product_id = space.product_id
    for days, group, least in active.rotate_windows:
        shown = ctx.impressions(days, least)
        if not shown:
            continue
        hot = [(k, t) for k, t in enumerate(shown.get(product_id(i), 0) for i in cand) if t >= least]
        if not hot:
            continue
        engaged = ctx.engaged(days)
        hot = [(k, t) for k, t in hot if product_id(cand[k]) not in engaged]
        for b, rule in group:
            after, amount = rule.action.after, rule.action.amount
            for k, t in hot:
                if t >= after and codes[k] & b:
                    scores[k] -= amount
                    acting[cand[k]] = acting.get(cand[k], 0) | b


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
    bit = active.compiled.bit
    held_in: dict[int, list[int]] = {}  # the codes of the pinned products within the first ``top``, per top
    heads: dict[int, tuple[list[int], list[int], list[int]]] = {}  # per length: the first products, their codes,
    # and the positions no rule placed a product at (kept until a promotion changes the order)
    for r, rule in active.promotes:
        top = min(rule.action.of, n)
        held = held_in.get(top)
        if held is None:
            held = held_in[top] = [known[i] for p, i in pins.items() if p <= top]
        of = top - len(held)
        if of <= 0:
            continue
        head = heads.get(of)
        if head is None:
            first = order[:of]
            head = heads[of] = (
                first,
                [known[i] for i in first],
                [p for p, i in enumerate(first) if i not in placed_by],
            )
        first, codes, unplaced = head
        b = bit[r]
        free = [p for p in unplaced if not codes[p] & b]
        if not free:
            continue
        need = min(rule.action.slots, top) - len([c for c in codes if c & b]) - len([c for c in held if c & b])
        if need <= 0:
            continue
        outside: list[int] = []
        for i in order[of:]:
            if known[i] & b:
                outside.append(i)
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
        moved = set(outside)
        order = first + displaced + [i for i in order[of:] if i not in moved]
        heads.clear()
    return order


def pool_size(n: int, active: ActiveSet | None) -> int:
    """How many candidates to ask the model for: ``n``, or ``max(POOL, n)`` when rules apply (a promotion or an
    exclusion that needs more asks the source again)."""
    if not active or not active.columns:
        return n
    return max(POOL, n)
