"""Customer value: expected purchases and spend, the chance of buying again, and an RFM segment.

Value and segment are profiling: only customers who granted ``value.purpose``
(default ``personalization``) are read, scored or kept; the others are counted in
``not_profiled`` and nothing else. The nightly refresh stores every profiled
customer's score (``customer_values``); a withdrawal or an erasure deletes it at once.

The library API (everything a face or a job needs)::

    from recommender.value import transactions, model, evaluate, segments

    tx = transactions.load(db, settings)       # purchase days with spend, consent-filtered (Transactions)
    scores = model.score(tx, settings)         # Scores: every profiled customer, as of the last purchase day
    scores.customer_ids                        # aligned arrays:
    scores.purchases[90.0], scores.spend[90.0] #   expected purchase days / spend per horizon (value.horizons)
    scores.p_active                            #   chance of at least one purchase within the first horizon
    scores.segment                             #   RFM segment name (segments.SEGMENTS), segments.why(name)
    scores.recency_days, scores.purchase_days, scores.spend_to_date
    scores.not_profiled, scores.choice.payload()   # customers left out; which estimators and why
    list(scores.rows())                        # one dict per customer, for exports and pages

    payload = evaluate.evaluate(tx, settings, cut="2011-06-08", horizon=None)   # the protocol, JSON-ready
    print(evaluate.table(payload)); evaluate.write_report("out/", payload)

    from recommender.value import refresh, stored

    refresh.refresh(db, settings)              # the nightly refit: score and replace customer_values atomically
    stored.customer_value(db, settings, "C1")  # one stored score, or {"profiled": False, "reason": ...}
    stored.report(db, settings)                # segments: customers, revenue share, movement since last month
    stored.export_csv(db, settings, "v.csv")   # the CSV for the e-mail tool (csvsafe; registered copy)

Modules, bottom up: :mod:`.transactions` (the store read; ``Transactions.from_rows``
builds one from any rows), :mod:`.features` (the RFM summary at a cut),
:mod:`.bgnbd` (BG/NBD and Gamma-Gamma on scipy), :mod:`.estimators` (the anchors and
candidates), :mod:`.segments` (the RFM rules), :mod:`.metrics`, :mod:`.model`
(selection on a validation period cut from the past only; fit; score),
:mod:`.evaluate` (calibration/holdout protocol and report), :mod:`.refresh` (the nightly
refit into the stored table) and :mod:`.stored` (the stored scores as the faces show them).
See docs/value.md.
"""
