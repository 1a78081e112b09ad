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
:mod:`.offers`, :mod:`.models`); callers use the flat names re-exported here
(``store.connect``, ``store.apply_consents``...).
"""

from __future__ import annotations

from recommender.store.access import *  # noqa: F403
from recommender.store.connection import *  # noqa: F403
from recommender.store.consents import *  # noqa: F403
from recommender.store.events import *  # noqa: F403
from recommender.store.models import *  # noqa: F403
from recommender.store.offers import *  # noqa: F403
from recommender.store.privacy import *  # noqa: F403
from recommender.store.schema import *  # noqa: F403
