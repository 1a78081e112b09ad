"""Serving: what a storefront's request runs through.

:mod:`.service` answers a request (the live model, fallbacks, decision log);
:mod:`.ranking` is the one path from scores to a list (consent, exclusions,
filters, diversity); :mod:`.catalogue` holds the product catalogue as arrays and
the one definition of which products a list may hold; :mod:`.keys` manages the
API keys every request is checked against.
"""
