"""The doors: everything a shop sends in enters through one of these modules.

:mod:`.imports` (CSV files of customers, products, interactions, consents and raw
order exports), :mod:`.csvfiles` (strict CSV reading), :mod:`.door` (the checks
every import row passes: ids, tombstones), :mod:`.events` (the live events API),
:mod:`.consent` (consent decisions, ordered by when the customer decided) and
:mod:`.signup` (an erased person who really signs up again). Rules that must hold
for all data live behind these doors once, never in a face.
"""
