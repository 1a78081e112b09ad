"""Which validation design predicts the test period? A fixed panel of candidates under several designs.

    python scripts/selection_study.py --db shop.db [--json out.json] [--quick]

Selection (``recommender/selection.py``) must choose a recipe without reading
the test period, so everything depends on how well the validation split stands
in for it. This study fits one fixed *panel* (each family at a few settings,
relative to the data as selection's grids are, plus blends that reuse the fits)
on the test split of the project protocol and on the splits of several
validation designs, all carved from the training period:

* ``a``   today's: one cut at the 0.8 time quantile of the training period;
* ``b``   three folds, cuts at the 0.7 / 0.8 / 0.9 quantiles of the training
  period, each scored up to the test cut; the design's score is the mean;
* ``c``   one cut placed so that the validation window lasts as long (in time)
  as the test window;
* ``d``   the single latest fold (0.9): the most training data, the nearest
  future, closest to what the published model is fitted on;
* ``b+tie`` design ``b`` with the tie rule: among the candidates within one
  paired standard error of the best (per-customer NDCG differences, averaged
  over the folds), the one with the most parts (a blend) wins.

For each design it prints every candidate's validation and test NDCG@k, the
Spearman rank correlation between validation and test across the panel, and
what the design's choice (best validation) scores on test, beside the best
test score of the panel (an oracle no design may reach). Then diagnostics for
"why does an item graph gain on test what ALS does not": customers scored per
split and their history lengths, the share of list slots an item graph fills
with popular products (nothing reached), and each item model fitted on the
*validation past only* but asked on the test split (is the test gain the
refit on more data, or an easier period?).

Everything is fitted with BLAS at one thread. ``--quick`` drops the largest K
and the 30-day rows (a smaller panel for a first look). Not a test: numbers to
decide a rule with; the rule itself lives in selection.py.
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from threadpoolctl import threadpool_limits  # noqa: E402

from recommender import store
from recommender.config import Settings, load_settings  # noqa: E402
from recommender.data import interactions
from recommender.models.engines import get_engine  # noqa: E402
from recommender.models.families.blend import Blend  # noqa: E402
from recommender.training import (
    evaluation,
    recipes,  # noqa: E402
)


def per_user_ndcg(top: np.ndarray, split: evaluation.Split, k: int) -> np.ndarray:
    """NDCG@k of each evaluated customer of ``split`` (its mean is the reported NDCG@k)."""
    discounts = 1.0 / np.log2(np.arange(2, k + 2))
    rel = split.relevant
    out = np.zeros(len(split.users))
    for row, user in enumerate(split.users):
        items = rel.indices[rel.indptr[user] : rel.indptr[user + 1]]
        hits = np.isin(top[row, :k], items) & (top[row, :k] >= 0)
        out[row] = discounts[hits].sum() / discounts[: min(len(items), k)].sum()
    return out


def spearman(x: list[float], y: list[float]) -> float:
    rx = np.argsort(np.argsort(x)).astype(float)
    ry = np.argsort(np.argsort(y)).astype(float)
    return float(np.corrcoef(rx, ry)[0, 1]) if len(x) > 2 else float("nan")


def variant(base: Settings, **changes: Any) -> Settings:
    out = copy.deepcopy(base)
    for name, value in changes.items():
        section, attr = name.split(".", 1)
        setattr(getattr(out, section), attr, value)
    return out


def panel(base: Settings, quick: bool) -> tuple[list[tuple[str, str, Settings]], list[tuple[str, list[str]]]]:
    """(label, family, settings) singles and (label, part labels) blends. λ is set per split (relative)."""
    singles: list[tuple[str, str, Settings]] = []
    hls = (7.0, 14.0) if quick else (7.0, 14.0, 30.0)
    for hl in (0.0, *hls):
        singles.append((f"als hl{hl:g}", "als", variant(base, **{"als.half_life_days": hl})))
    for hl in (7.0, 14.0):
        for scale in (3.0, 10.0, 30.0):
            singles.append((f"ease {scale:g}x hl{hl:g}", "ease", _ease(base, hl, scale)))
    singles.append(("ease 10x hl0", "ease", _ease(base, 0.0, 10.0)))
    ks = (50, 200, 800) if quick else (50, 200, 800, 1600)
    for hl in (7.0, 14.0):
        for k in ks:
            singles.append(
                (
                    f"rp3 K{k} a.5 b.6 hl{hl:g}",
                    "rp3beta",
                    variant(
                        base,
                        **{
                            "als.half_life_days": hl,
                            "itemgraph.method": "rp3beta",
                            "itemgraph.neighbours": k,
                            "itemgraph.alpha": 0.5,
                            "itemgraph.beta": 0.6,
                        },
                    ),
                )
            )
    for k, hl in ((200, 7.0), (200, 0.0), (800, 0.0)):
        singles.append(
            (
                f"rp3 K{k} a1 b.3 hl{hl:g}",
                "rp3beta",
                variant(
                    base,
                    **{
                        "als.half_life_days": hl,
                        "itemgraph.method": "rp3beta",
                        "itemgraph.neighbours": k,
                        "itemgraph.alpha": 1.0,
                        "itemgraph.beta": 0.3,
                    },
                ),
            )
        )
    for k, hl in ((12, 30.0), (200, 14.0)):
        singles.append(
            (
                f"knn K{k} hl{hl:g}",
                "itemknn",
                variant(base, **{"als.half_life_days": hl, "itemgraph.method": "itemknn", "itemgraph.neighbours": k}),
            )
        )
    blends = [
        ("blend als+ease hl7", ["als hl7", "ease 10x hl7"]),
        ("blend als+rp3 K50 hl7", ["als hl7", "rp3 K50 a.5 b.6 hl7"]),
        ("blend als+rp3 K800 hl7", ["als hl7", "rp3 K800 a.5 b.6 hl7"]),
        ("blend ease+rp3 K800 hl7", ["ease 10x hl7", "rp3 K800 a.5 b.6 hl7"]),
        ("blend als+ease+rp3 K800 hl7", ["als hl7", "ease 10x hl7", "rp3 K800 a.5 b.6 hl7"]),
        ("blend als+ease hl14", ["als hl14", "ease 10x hl14"]),
        ("blend als+ease hl0", ["als hl0", "ease 10x hl0"]),
        ("blend als+rp3 K800 hl0", ["als hl0", "rp3 K800 a1 b.3 hl0"]),
        ("blend als+ease+rp3 K800 hl0", ["als hl0", "ease 10x hl0", "rp3 K800 a1 b.3 hl0"]),
        ("blend als+ease+rp3 K800 hl14", ["als hl14", "ease 10x hl14", "rp3 K800 a.5 b.6 hl14"]),
    ]
    return singles, blends


def _ease(base: Settings, hl: float, scale: float) -> Settings:
    s = variant(base, **{"als.half_life_days": hl})
    s.selection = dataclasses.replace(s.selection, ease_scales=(scale,))  # carries the relative λ to fit time
    return s


def splits(data: interactions.Interactions, settings: Settings, als: Any) -> dict[str, evaluation.Split]:
    """The test split and every validation fold, for one set of confidence rules."""
    ev = settings.evaluation
    test_cut = evaluation.cut_time(data.time, ev)
    period = data.time < test_cut
    out = {"test": evaluation.temporal_split(data, als, ev)}
    for q in (0.7, 0.8, 0.9):
        out[f"q{q:g}"] = evaluation.temporal_split(data, als, dataclasses.replace(ev, cut_quantile=q), base_mask=period)
    window = int(data.time.max()) - test_cut
    share = float(np.mean(data.time[period] < test_cut - window))
    out["window"] = evaluation.temporal_split(
        data, als, dataclasses.replace(ev, cut_quantile=max(share, 0.05)), base_mask=period
    )
    return out


def fill_share(model: Any, split: evaluation.Split, k: int) -> float:
    """Share of top-k slots an item graph fills with popular products (its reached products are fewer)."""
    if not hasattr(model, "_reached"):
        return float("nan")
    short = 0
    for u in split.users:
        row = split.train[u]
        state = model.fold_in(row.indices, row.data)
        reached = 0 if state is None else int(np.setdiff1d(model._reached(state)[0], row.indices).size)
        short += max(0, k - reached)
    return short / max(k * len(split.users), 1)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", required=True)
    parser.add_argument("--json", help="write every number here")
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    settings = load_settings(overrides={"db": args.db})
    db = store.connect(settings.db)
    data = interactions.load(db, settings).reweighted(settings.event_weights)
    k = settings.evaluation.k
    fitter = get_engine("implicit")
    singles, blends = panel(settings, args.quick)
    by_hl: dict[float, dict[str, evaluation.Split]] = {}
    scores: dict[str, dict[str, np.ndarray]] = {}  # label -> split name -> per-customer NDCG
    diag: dict[str, Any] = {"fill": {}, "no_refit": {}}
    fitted: dict[tuple[str, str], Any] = {}
    started = time.perf_counter()
    with threadpool_limits(1):
        for label, family, s in singles:
            hl = s.als.half_life_days
            if hl not in by_hl:
                by_hl[hl] = splits(data, settings, s.als)
            scores[label] = {}
            for name, split in by_hl[hl].items():
                fs = s
                if family == "ease":
                    lam = s.selection.ease_scales[0] * recipes.mean_gram_diagonal(split.train)
                    fs = variant(s, **{"ease.regularization": float(lam)})
                model = recipes.fit(
                    recipes.Recipe(family, fs), split.train, list(data.user_ids), list(data.item_ids), fitter=fitter
                )
                top = model.batch_recommend(split.users, split.train[split.users], k)
                scores[label][name] = per_user_ndcg(top, split, k)
                if any(label in parts for _, parts in blends):
                    fitted[(label, name)] = model
                if family in ("rp3beta", "itemknn") and name in ("test", "q0.8"):
                    diag["fill"][f"{label} @ {name}"] = round(fill_share(model, split, k), 4)
                if family != "als" and name == "q0.8":
                    test = by_hl[hl]["test"]
                    top = model.batch_recommend(test.users, test.train[test.users], k)
                    diag["no_refit"][label] = round(float(per_user_ndcg(top, test, k).mean()), 4)
            print(
                f"  {label}: " + " ".join(f"{n} {v.mean():.4f}" for n, v in scores[label].items()),
                f"({time.perf_counter() - started:.0f} s)",
                flush=True,
            )
        for label, parts in blends:
            scores[label] = {}
            for name in scores[parts[0]]:
                model = Blend([fitted[(p, name)] for p in parts], [1.0 / len(parts)] * len(parts))
                split = by_hl[float(label.split("hl")[-1])][name]
                top = model.batch_recommend(split.users, split.train[split.users], k)
                scores[label][name] = per_user_ndcg(top, split, k)
            print(f"  {label}: " + " ".join(f"{n} {v.mean():.4f}" for n, v in scores[label].items()), flush=True)
    any_hl = next(iter(by_hl.values()))
    diag["splits"] = {
        name: {
            "users": len(sp_.users),
            "cut_time": int(sp_.cut_time),
            "mean_history": round(float(np.diff(sp_.train.indptr)[sp_.users].mean()), 2),
            "mean_relevant": round(float(np.diff(sp_.relevant.indptr)[sp_.users].mean()), 2),
        }
        for name, sp_ in any_hl.items()
    }
    report = summarise(scores, [lab for lab, _ in blends])
    report["diagnostics"] = diag
    report["seconds"] = round(time.perf_counter() - started, 1)
    print_report(report)
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=1))
    return 0


DESIGNS = {"a": ["q0.8"], "b": ["q0.7", "q0.8", "q0.9"], "c": ["window"], "d": ["q0.9"]}


def parts_of(label: str) -> int:
    return label.count("+") + 1 if label.startswith("blend") else 1


def summarise(scores: dict[str, dict[str, np.ndarray]], blend_labels: list[str]) -> dict[str, Any]:
    labels = list(scores)
    test = {lab: float(scores[lab]["test"].mean()) for lab in labels}
    out: dict[str, Any] = {"test": test, "designs": {}}
    for design, folds in DESIGNS.items():
        val = {lab: float(np.mean([scores[lab][f].mean() for f in folds])) for lab in labels}
        best = max(labels, key=lambda lab: val[lab])
        entry = {
            "validation": val,
            "spearman": spearman([val[x] for x in labels], [test[x] for x in labels]),
            "choice": best,
            "choice_test": test[best],
        }
        # Tie rule: paired SE of the fold-averaged per-customer difference (folds' SEs combined).
        tied = []
        for lab in labels:
            var = sum(np.var(scores[best][f] - scores[lab][f], ddof=1) / len(scores[lab][f]) for f in folds)
            se = float(np.sqrt(var)) / len(folds)
            if val[best] - val[lab] <= se:
                tied.append(lab)
        tie_choice = max(tied, key=lambda lab: (parts_of(lab), val[lab]))
        entry.update({"tied": tied, "tie_choice": tie_choice, "tie_choice_test": test[tie_choice]})
        out["designs"][design] = entry
        # best per family on this design (what the done-when compares)
        fams: dict[str, str] = {}
        for lab in labels:
            f = lab.split()[0] if not lab.startswith("blend") else "blend"
            if f not in fams or val[lab] > val[fams[f]]:
                fams[f] = lab
        entry["family_best"] = {f: {"label": lab, "validation": val[lab], "test": test[lab]} for f, lab in fams.items()}
    out["oracle"] = max(labels, key=lambda lab: test[lab])
    return out


def print_report(r: dict[str, Any]) -> None:
    labels = list(r["test"])
    print("\n" + "candidate".ljust(32) + "".join(d.rjust(9) for d in r["designs"]) + "test".rjust(9))
    for lab in labels:
        print(
            lab.ljust(32)
            + "".join(f"{r['designs'][d]['validation'][lab]:9.4f}" for d in r["designs"])
            + f"{r['test'][lab]:9.4f}"
        )
    print(f"\noracle (best on test): {r['oracle']} {r['test'][r['oracle']]:.4f}")
    for d, e in r["designs"].items():
        fb = ", ".join(f"{f} {v['label']} {v['validation']:.4f}/{v['test']:.4f}" for f, v in e["family_best"].items())
        print(
            f"design {d}: spearman {e['spearman']:.3f}; choice {e['choice']} -> test {e['choice_test']:.4f}; "
            f"tie rule -> {e['tie_choice']} test {e['tie_choice_test']:.4f} (tied: {len(e['tied'])})\n"
            f"   family best val/test: {fb}"
        )
    print("\ndiagnostics:", json.dumps(r["diagnostics"], indent=1))
    print(f"{r['seconds']} s")


if __name__ == "__main__":
    raise SystemExit(main())
