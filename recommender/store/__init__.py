"""SQLite schema, connections and queries: the only package that writes SQL.

The database is a plain file so a shop can run the engine with nothing else
installed. WAL lets the API read while a retrain or an import writes; foreign
keys and CHECK constraints keep bad rows out even when a caller forgets to
validate. Every public write runs inside :func:`transaction`, so a failure
rolls back completely.

Times: ``interactions.occurred_at`` is Unix seconds (UTC) as an INTEGER because
it is the one column read in bulk (millions of rows per retrain) and compared
numerically; every other timestamp is ISO 8601 UTC text, dates are
``YYYY-MM-DD``.

One module per table family (:mod:`.schema`, :mod:`.connection`,
:mod:`.events`, :mod:`.consents`, :mod:`.access`, :mod:`.privacy`,
:mod:`.offers`, :mod:`.models`) or per reader of many tables (:mod:`.bulk`:
training's and the export's bulk reads; :mod:`.catalogue`: a serving worker's
products; :mod:`.content`: products' texts and arrivals for new products' content features; :mod:`.online`: the measurement report; :mod:`.value`: purchase days for customer value; :mod:`.rules`: merchandising rules and their audit); callers use the flat names
re-exported here (``store.connect``, ``store.apply_consents``...). The rows the doors hand
to the store (customers, products, events, consent decisions, decision-log
entries) are the named tuples of :mod:`.rows`.

The rule "this customer granted purpose P" is written once, in
:mod:`.consents` (:func:`granted_sql`, :func:`granted_join`,
:func:`consenting_sql`); every query that applies it takes its SQL from there.
"""

from __future__ import annotations

from recommender.store.access import *  # noqa: F403
from recommender.store.bulk import *  # noqa: F403
from recommender.store.catalogue import *  # noqa: F403
from recommender.store.connection import *  # noqa: F403
from recommender.store.consents import *  # noqa: F403
from recommender.store.content import *  # noqa: F403
from recommender.store.events import *  # noqa: F403
from recommender.store.firstweek import *  # noqa: F403
from recommender.store.models import *  # noqa: F403
from recommender.store.offers import *  # noqa: F403
from recommender.store.online import *  # noqa: F403
from recommender.store.privacy import *  # noqa: F403
from recommender.store.rows import *  # noqa: F403
from recommender.store.rules import *  # noqa: F403
from recommender.store.schema import *  # noqa: F403
from recommender.store.searches import *  # noqa: F403
from recommender.store.value import *  # noqa: F403
