"""The schema: forward migrations (append, never edit) and the tables they make."""

from __future__ import annotations

# The consent purposes the engine itself acts on, named once (a shop may configure more:
# ``consent_purposes``). Callers import them from :mod:`recommender.store.consents`.
PERSONALIZATION = "personalization"
MARKETING = "marketing"

# Each migration is a list of statements; ``MIGRATIONS[i]`` brings a database
# from version i to version i + 1. Append, never edit: a database made by this
# version must open in every later one.
MIGRATIONS: list[list[str]] = [
    # 1: the data model (docs/operations.md, "Data model")
    [
        """CREATE TABLE customers (
            id TEXT PRIMARY KEY CHECK (length(id) > 0),
            email TEXT,
            name TEXT,
            birth_date TEXT CHECK (birth_date IS NULL OR birth_date GLOB '[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]'),
            anniversary_date TEXT CHECK (anniversary_date IS NULL OR anniversary_date GLOB '[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]'),
            timezone TEXT NOT NULL DEFAULT 'UTC',
            created_at TEXT NOT NULL
        )""",
        """CREATE TABLE products (
            id TEXT PRIMARY KEY CHECK (length(id) > 0),
            name TEXT NOT NULL,
            category TEXT,
            price REAL CHECK (price IS NULL OR price >= 0),
            in_stock INTEGER CHECK (in_stock IS NULL OR in_stock >= 0),
            hidden INTEGER NOT NULL DEFAULT 0 CHECK (hidden IN (0, 1)),
            available_until TEXT
        )""",
        "CREATE INDEX products_category ON products(category)",
        """CREATE TABLE interactions (
            id INTEGER PRIMARY KEY,
            customer_id TEXT NOT NULL REFERENCES customers(id) ON DELETE CASCADE,
            product_id TEXT NOT NULL REFERENCES products(id) ON DELETE CASCADE,
            event_type TEXT NOT NULL CHECK (length(event_type) > 0),
            quantity REAL NOT NULL DEFAULT 1 CHECK (quantity > 0),
            occurred_at INTEGER NOT NULL
        )""",
        # The natural key makes re-imports idempotent and serves per-customer lookups.
        """CREATE UNIQUE INDEX interactions_natural_key
            ON interactions(customer_id, product_id, event_type, occurred_at)""",
        "CREATE INDEX interactions_product_time ON interactions(product_id, occurred_at)",
        "CREATE INDEX interactions_time ON interactions(occurred_at)",
        """CREATE TABLE consents (
            customer_id TEXT NOT NULL REFERENCES customers(id) ON DELETE CASCADE,
            purpose TEXT NOT NULL CHECK (length(purpose) > 0),
            granted INTEGER NOT NULL CHECK (granted IN (0, 1)),
            updated_at TEXT NOT NULL,
            source TEXT NOT NULL,
            PRIMARY KEY (customer_id, purpose)
        )""",
        "CREATE INDEX consents_purpose ON consents(purpose, granted)",
        """CREATE TABLE consent_log (
            id INTEGER PRIMARY KEY,
            customer_id TEXT NOT NULL REFERENCES customers(id) ON DELETE CASCADE,
            purpose TEXT NOT NULL,
            old_granted INTEGER CHECK (old_granted IS NULL OR old_granted IN (0, 1)),
            new_granted INTEGER NOT NULL CHECK (new_granted IN (0, 1)),
            source TEXT NOT NULL,
            changed_at TEXT NOT NULL
        )""",
        "CREATE INDEX consent_log_customer ON consent_log(customer_id, id)",
        # Append-only: history may be erased with its customer, never rewritten.
        """CREATE TRIGGER consent_log_append_only BEFORE UPDATE ON consent_log
            BEGIN SELECT RAISE(ABORT, 'consent_log is append-only'); END""",
        """CREATE TABLE offers (
            id INTEGER PRIMARY KEY,
            customer_id TEXT NOT NULL REFERENCES customers(id) ON DELETE CASCADE,
            occasion TEXT NOT NULL CHECK (occasion IN ('birthday', 'anniversary')),
            occasion_year INTEGER NOT NULL,
            code TEXT NOT NULL UNIQUE,
            products TEXT NOT NULL,
            discount REAL NOT NULL CHECK (discount > 0 AND discount < 100),
            valid_from TEXT NOT NULL,
            valid_until TEXT NOT NULL,
            campaign_id TEXT NOT NULL,
            created_at TEXT NOT NULL,
            UNIQUE (customer_id, occasion, occasion_year),
            CHECK (valid_from <= valid_until)
        )""",
        "CREATE INDEX offers_campaign ON offers(campaign_id)",
        """CREATE TABLE models (
            version TEXT PRIMARY KEY,
            created_at TEXT NOT NULL,
            path TEXT NOT NULL,
            engine TEXT NOT NULL DEFAULT 'implicit',
            params TEXT NOT NULL,
            metrics TEXT NOT NULL,
            consent_snapshot TEXT NOT NULL,
            status TEXT NOT NULL CHECK (status IN ('candidate', 'published', 'rejected', 'retired'))
        )""",
        # customer_id has no foreign key: unknown shoppers are served too.
        """CREATE TABLE decisions (
            id INTEGER PRIMARY KEY,
            customer_id TEXT,
            created_at TEXT NOT NULL,
            endpoint TEXT NOT NULL,
            model_version TEXT,
            mode TEXT NOT NULL,
            reason TEXT,
            product_ids TEXT NOT NULL
        )""",
        "CREATE INDEX decisions_customer ON decisions(customer_id, created_at)",
        "CREATE INDEX decisions_created ON decisions(created_at)",
    ],
    # 2: access control and proof of erasure
    [
        """CREATE TABLE api_keys (
            id INTEGER PRIMARY KEY,
            name TEXT NOT NULL,
            key_hash TEXT NOT NULL UNIQUE,
            role TEXT NOT NULL CHECK (role IN ('read', 'write', 'admin')),
            created_at TEXT NOT NULL,
            revoked_at TEXT
        )""",
        """CREATE TABLE erasures (
            subject_hash TEXT PRIMARY KEY,
            erased_at TEXT NOT NULL
        )""",
    ],
    # 3: installation facts; the salt of erasure tombstones is made here, once, at random
    [
        "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
        "INSERT INTO meta (key, value) VALUES ('erasure_salt', lower(hex(randomblob(16))))",
    ],
    # 4: two clocks for consent, an ordered log of privacy events (the data epoch that long
    #    jobs reconcile with), the copies erasure must reach, and idempotency keys of events
    [
        # When the customer decided (orders decisions) and who recorded it; changed_at stays
        # the time we recorded it. NULL decided_at in rows written before v4 = changed_at.
        "ALTER TABLE consent_log ADD COLUMN decided_at TEXT",
        "ALTER TABLE consent_log ADD COLUMN actor TEXT",
        # Every erasure and every withdrawal of a purpose, in the order recorded. A training
        # run, export or campaign notes max(id) before it reads (its data epoch) and, before it
        # publishes, reconciles with every row after it. Erasures carry only the tombstone.
        """CREATE TABLE privacy_events (
            id INTEGER PRIMARY KEY,
            kind TEXT NOT NULL CHECK (kind IN ('erasure', 'withdrawal')),
            subject_hash TEXT,
            customer_id TEXT,
            purpose TEXT,
            recorded_at TEXT NOT NULL,
            CHECK ((kind = 'erasure' AND subject_hash IS NOT NULL AND customer_id IS NULL)
                OR (kind = 'withdrawal' AND customer_id IS NOT NULL AND purpose IS NOT NULL))
        )""",
        "CREATE INDEX privacy_events_customer ON privacy_events(customer_id)",
        # Files the engine wrote that hold customer data (Parquet exports, campaign files),
        # so an erasure can find and scrub them.
        """CREATE TABLE copies (
            path TEXT PRIMARY KEY,
            kind TEXT NOT NULL,
            created_at TEXT NOT NULL
        )""",
        # A client-chosen id per event: a retried POST is acknowledged, not counted twice.
        """CREATE TABLE event_keys (
            event_id TEXT PRIMARY KEY,
            interaction_id INTEGER NOT NULL REFERENCES interactions(id) ON DELETE CASCADE,
            received_at TEXT NOT NULL
        )""",
        "CREATE INDEX event_keys_interaction ON event_keys(interaction_id)",
    ],
    # 5: the registry keeps the history of pruned models (status 'pruned', removed_at) and
    #    what the release gate compared for each one
    [
        """CREATE TABLE models_v5 (
            version TEXT PRIMARY KEY,
            created_at TEXT NOT NULL,
            path TEXT NOT NULL,
            engine TEXT NOT NULL DEFAULT 'implicit',
            params TEXT NOT NULL,
            metrics TEXT NOT NULL,
            consent_snapshot TEXT NOT NULL,
            status TEXT NOT NULL CHECK (status IN ('candidate', 'published', 'rejected', 'retired', 'pruned')),
            gate TEXT NOT NULL DEFAULT '{}',
            removed_at TEXT
        )""",
        """INSERT INTO models_v5 (version, created_at, path, engine, params, metrics, consent_snapshot, status)
            SELECT version, created_at, path, engine, params, metrics, consent_snapshot, status FROM models""",
        "DROP TABLE models",
        "ALTER TABLE models_v5 RENAME TO models",
    ],
    # api_keys: the console's `marketer` role (outside the read < write < admin chain). SQLite
    # cannot alter a CHECK, so the table is rebuilt with the same rows and ids.
    [
        """CREATE TABLE api_keys_marketer (
            id INTEGER PRIMARY KEY,
            name TEXT NOT NULL,
            key_hash TEXT NOT NULL UNIQUE,
            role TEXT NOT NULL CHECK (role IN ('read', 'write', 'admin', 'marketer')),
            created_at TEXT NOT NULL,
            revoked_at TEXT
        )""",
        """INSERT INTO api_keys_marketer (id, name, key_hash, role, created_at, revoked_at)
            SELECT id, name, key_hash, role, created_at, revoked_at FROM api_keys""",
        "DROP TABLE api_keys",
        "ALTER TABLE api_keys_marketer RENAME TO api_keys",
    ],
    # online measurement: every served list and offer has a random id, the A/B arm it was served
    #    under, and an event may name the list it came from and the unit price paid; the arm
    #    assignment key is made here, once, at random
    [
        "ALTER TABLE decisions ADD COLUMN list_id TEXT",
        "ALTER TABLE decisions ADD COLUMN arm TEXT",
        "CREATE UNIQUE INDEX decisions_list ON decisions(list_id) WHERE list_id IS NOT NULL",
        "ALTER TABLE offers ADD COLUMN list_id TEXT",
        "ALTER TABLE interactions ADD COLUMN list_id TEXT",
        "ALTER TABLE interactions ADD COLUMN price REAL CHECK (price IS NULL OR price >= 0)",
        "CREATE INDEX interactions_list ON interactions(list_id) WHERE list_id IS NOT NULL",
        "INSERT OR IGNORE INTO meta (key, value) VALUES ('online_arm_key', lower(hex(randomblob(16))))",
    ],
    # 8: an incremental export-interactions follows rows whose quantity changed after they were
    #    written (a repeated event adds to its row): the trigger logs each change in order
    [
        """CREATE TABLE interaction_updates (
            seq INTEGER PRIMARY KEY,
            interaction_id INTEGER NOT NULL REFERENCES interactions(id) ON DELETE CASCADE
        )""",
        "CREATE INDEX interaction_updates_interaction ON interaction_updates(interaction_id)",
        """CREATE TRIGGER interactions_quantity_updated AFTER UPDATE OF quantity ON interactions
            WHEN new.quantity IS NOT old.quantity
            BEGIN INSERT INTO interaction_updates (interaction_id) VALUES (new.id); END""",
    ],
    # 9: serving workers follow the catalogue by its changes, not by re-reading a million rows:
    #    every product added, changed (in a column lists depend on) or deleted is appended to a
    #    log in commit order; `store.compact_product_changes` keeps the newest row per product
    [
        """CREATE TABLE product_changes (
            seq INTEGER PRIMARY KEY AUTOINCREMENT,
            product_id TEXT NOT NULL
        )""",
        """CREATE TRIGGER products_added AFTER INSERT ON products
            BEGIN INSERT INTO product_changes (product_id) VALUES (new.id); END""",
        """CREATE TRIGGER products_changed AFTER UPDATE ON products
            WHEN new.id IS NOT old.id OR new.name IS NOT old.name OR new.category IS NOT old.category
              OR new.price IS NOT old.price OR new.in_stock IS NOT old.in_stock OR new.hidden IS NOT old.hidden
              OR new.available_until IS NOT old.available_until
            BEGIN INSERT INTO product_changes (product_id) VALUES (new.id);
                  INSERT INTO product_changes (product_id) SELECT old.id WHERE old.id IS NOT new.id; END""",
        """CREATE TRIGGER products_removed AFTER DELETE ON products
            BEGIN INSERT INTO product_changes (product_id) VALUES (old.id); END""",
    ],
    # 10: events are a log (docs/architecture.md; an event is never merged): a live event is a row of its own,
    #    never merged with another in the same second. Imports keep their rule: a file is a
    #    summary with one row per (customer, product, type, second), and importing it again
    #    replaces that row's quantity. `natural_key` = 1 marks such rows (the default, so every
    #    row stored before v10 - unique on that key until now - keeps it and nothing is
    #    rewritten); a live event is stored with 0 and is outside the unique index.
    [
        "ALTER TABLE interactions ADD COLUMN natural_key INTEGER NOT NULL DEFAULT 1 CHECK (natural_key IN (0, 1))",
        "DROP INDEX interactions_natural_key",
        """CREATE UNIQUE INDEX interactions_natural_key
            ON interactions(customer_id, product_id, event_type, occurred_at) WHERE natural_key = 1""",
        # Per-customer lookups (and the cascade from customers) over every row, live or imported.
        "CREATE INDEX interactions_customer ON interactions(customer_id, product_id, event_type, occurred_at)",
    ],
    # 11: e-mail tombstones. An erasure keeps, beside the id's tombstone, the keyed hash of the
    #    person's e-mail (the same formula, over a text no id can be), so a new id carrying it
    #    is refused at the import door. Nothing of the address is stored in the clear.
    [
        """CREATE TABLE erased_emails (
            subject_hash TEXT PRIMARY KEY,
            erased_at TEXT NOT NULL
        )""",
    ],
    # 12: merchandising rules (recommender/serving/rules.py; docs/rules.md): the rules as JSON, an
    #    append-only audit of every change (who, when, what, before/after), the rule-set version every
    #    worker follows (meta 'rules_version'), what the rules did to each served list
    #    (decisions.rules) and when the engine first saw each product (a rule's "new arrivals";
    #    products stored before this version have no row: not new)
    [
        """CREATE TABLE rules (
            name TEXT PRIMARY KEY CHECK (length(name) > 0),
            body TEXT NOT NULL,
            status TEXT NOT NULL CHECK (status IN ('active', 'paused')),
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL
        )""",
        """CREATE TABLE rule_audit (
            id INTEGER PRIMARY KEY,
            rule TEXT NOT NULL,
            actor TEXT NOT NULL,
            at TEXT NOT NULL,
            action TEXT NOT NULL CHECK (action IN ('create', 'update', 'pause', 'resume', 'delete')),
            before TEXT,
            after TEXT
        )""",
        "CREATE INDEX rule_audit_rule ON rule_audit(rule, id)",
        """CREATE TRIGGER rule_audit_append_only BEFORE UPDATE ON rule_audit
            BEGIN SELECT RAISE(ABORT, 'rule_audit is append-only'); END""",
        "INSERT OR IGNORE INTO meta (key, value) VALUES ('rules_version', '0')",
        "ALTER TABLE decisions ADD COLUMN rules TEXT",
        """CREATE TABLE product_arrivals (
            product_id TEXT PRIMARY KEY,
            first_seen TEXT NOT NULL
        )""",
        "CREATE INDEX product_arrivals_seen ON product_arrivals(first_seen)",
        """CREATE TRIGGER products_arrived AFTER INSERT ON products
            BEGIN INSERT OR IGNORE INTO product_arrivals (product_id, first_seen)
                  VALUES (new.id, strftime('%Y-%m-%dT%H:%M:%SZ', 'now')); END""",
    ],
    # 13: customer value (recommender/value/refresh.py; docs/value.md): the nightly scores of each
    #    profiled customer, replaced whole by each refresh (`value_runs`: the refresh that made them,
    #    its estimator, as-of day and aggregates), and one aggregate snapshot per month for "movement
    #    since last month" (segment counts and revenue shares, no customer id). Value is profiling: a
    #    row is deleted with its customer (foreign key; erase_customer names the table too) and, by
    #    the triggers, in the same transaction as a withdrawal of the purpose it was computed under
    [
        """CREATE TABLE value_runs (
            id INTEGER PRIMARY KEY,
            computed_at TEXT NOT NULL,
            as_of TEXT,
            purpose TEXT NOT NULL,
            estimator TEXT NOT NULL,
            horizons TEXT NOT NULL,
            summary TEXT NOT NULL,
            seconds REAL NOT NULL
        )""",
        """CREATE TABLE customer_values (
            customer_id TEXT PRIMARY KEY REFERENCES customers(id) ON DELETE CASCADE,
            run_id INTEGER NOT NULL REFERENCES value_runs(id),
            purpose TEXT NOT NULL,
            segment TEXT NOT NULL,
            p_active REAL NOT NULL CHECK (p_active >= 0 AND p_active <= 1),
            purchases TEXT NOT NULL,
            spend TEXT NOT NULL,
            recency_days INTEGER NOT NULL,
            purchase_days INTEGER NOT NULL,
            spend_to_date REAL NOT NULL
        )""",
        "CREATE INDEX customer_values_segment ON customer_values(segment)",
        """CREATE TABLE value_snapshots (
            month TEXT PRIMARY KEY,
            taken_at TEXT NOT NULL,
            summary TEXT NOT NULL
        )""",
        """CREATE TRIGGER consent_withdrawn_drops_value AFTER UPDATE OF granted ON consents
            WHEN new.granted = 0
            BEGIN DELETE FROM customer_values WHERE customer_id = new.customer_id AND purpose = new.purpose; END""",
        """CREATE TRIGGER consent_removed_drops_value AFTER DELETE ON consents
            BEGIN DELETE FROM customer_values WHERE customer_id = old.customer_id AND purpose = old.purpose; END""",
    ],
    # 14: lifecycle campaigns and the offers' holdout (recommender/campaigns/lifecycle.py;
    #    docs/campaigns.md). The ledger takes three more kinds (winback, second_purchase,
    #    thank_you); a held-out customer is a ledger row without a code (held_out = 1: chosen, not
    #    sent); offered_on is the customer's local run date, where the report's windows start (rows
    #    before this version: the UTC date they were made). Once-per-occasion-year stays a unique
    #    index for birthdays and anniversaries; the lifecycle kinds' period rule is checked in the
    #    recording transaction. decisions.why holds an offer decision's inputs (kind, rule, the
    #    threshold crossed). SQLite cannot alter a CHECK, so offers is rebuilt with the same rows and ids.
    [
        """CREATE TABLE offers_v14 (
            id INTEGER PRIMARY KEY,
            customer_id TEXT NOT NULL REFERENCES customers(id) ON DELETE CASCADE,
            occasion TEXT NOT NULL CHECK (occasion IN ('birthday', 'anniversary', 'winback', 'second_purchase',
                                                       'thank_you')),
            occasion_year INTEGER NOT NULL,
            code TEXT UNIQUE,
            products TEXT NOT NULL,
            discount REAL NOT NULL CHECK (discount > 0 AND discount < 100),
            valid_from TEXT NOT NULL,
            valid_until TEXT NOT NULL,
            campaign_id TEXT NOT NULL,
            created_at TEXT NOT NULL,
            list_id TEXT,
            held_out INTEGER NOT NULL DEFAULT 0 CHECK (held_out IN (0, 1)),
            offered_on TEXT,
            CHECK (valid_from <= valid_until),
            CHECK ((held_out = 1) = (code IS NULL))
        )""",
        """INSERT INTO offers_v14 (id, customer_id, occasion, occasion_year, code, products, discount, valid_from,
                                   valid_until, campaign_id, created_at, list_id, held_out, offered_on)
            SELECT id, customer_id, occasion, occasion_year, code, products, discount, valid_from, valid_until,
                   campaign_id, created_at, list_id, 0, substr(created_at, 1, 10) FROM offers""",
        "DROP TABLE offers",
        "ALTER TABLE offers_v14 RENAME TO offers",
        "CREATE INDEX offers_campaign ON offers(campaign_id)",
        """CREATE UNIQUE INDEX offers_occasion_once ON offers(customer_id, occasion, occasion_year)
            WHERE occasion IN ('birthday', 'anniversary')""",
        "CREATE INDEX offers_customer ON offers(customer_id, valid_until)",
        "ALTER TABLE decisions ADD COLUMN why TEXT",
    ],
    # 15: new products get a place on day one (recommender/models/content.py; docs/new-products.md): a
    #    product's description, read with its name, category and price as its content features
    [
        "ALTER TABLE products ADD COLUMN description TEXT",
    ],
    # 16: a list's rule record names its rules by position in a rule set written once here
    #    (recommender/online/rulelog.py), not by name on every row: a hundred rules would otherwise
    #    repeat their names on every list they touch
    [
        """CREATE TABLE rule_sets (
            id INTEGER PRIMARY KEY,
            names TEXT NOT NULL UNIQUE
        )""",
    ],
    # 17: a privacy event's id is never given twice (AUTOINCREMENT). An erasure deletes the person's
    #    withdrawal events and adds its own; without it, when the newest event was their withdrawal,
    #    the erasure took that event's id back, and a job that had read max(id) as its epoch before
    #    the erasure saw nothing newer and kept the erased customer (found by the privacy property test)
    [
        """CREATE TABLE privacy_events_monotonic (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            kind TEXT NOT NULL CHECK (kind IN ('erasure', 'withdrawal')),
            subject_hash TEXT,
            customer_id TEXT,
            purpose TEXT,
            recorded_at TEXT NOT NULL,
            CHECK ((kind = 'erasure' AND subject_hash IS NOT NULL AND customer_id IS NULL)
                OR (kind = 'withdrawal' AND customer_id IS NOT NULL AND purpose IS NOT NULL))
        )""",
        "INSERT INTO privacy_events_monotonic SELECT id, kind, subject_hash, customer_id, purpose, recorded_at "
        "FROM privacy_events",
        "DROP TABLE privacy_events",
        "ALTER TABLE privacy_events_monotonic RENAME TO privacy_events",
        "CREATE INDEX privacy_events_customer ON privacy_events(customer_id)",
    ],
    # 18: an event's id and a quantity change's seq are never given twice either (AUTOINCREMENT): an
    #    incremental Parquet export reads the rows above the id and seq it last read, and an erasure of
    #    the customer who owned the newest events (or a prune of the change log down to nothing) let
    #    the next rows take those numbers back, so the export never read them. Both tables are copied
    #    into new ones; event_keys and the change log are kept aside while the old table goes (its
    #    drop cascades to them) and put back.
    [
        "CREATE TEMP TABLE kept_event_keys AS SELECT event_id, interaction_id, received_at FROM event_keys",
        "CREATE TEMP TABLE kept_interaction_updates AS SELECT seq, interaction_id FROM interaction_updates",
        """CREATE TABLE interactions_monotonic (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            customer_id TEXT NOT NULL REFERENCES customers(id) ON DELETE CASCADE,
            product_id TEXT NOT NULL REFERENCES products(id) ON DELETE CASCADE,
            event_type TEXT NOT NULL CHECK (length(event_type) > 0),
            quantity REAL NOT NULL DEFAULT 1 CHECK (quantity > 0),
            occurred_at INTEGER NOT NULL,
            list_id TEXT,
            price REAL CHECK (price IS NULL OR price >= 0),
            natural_key INTEGER NOT NULL DEFAULT 1 CHECK (natural_key IN (0, 1))
        )""",
        "INSERT INTO interactions_monotonic "
        "(id, customer_id, product_id, event_type, quantity, occurred_at, list_id, price, natural_key) "
        "SELECT id, customer_id, product_id, event_type, quantity, occurred_at, list_id, price, natural_key "
        "FROM interactions",
        "DROP TABLE interaction_updates",
        "DROP TABLE interactions",
        "ALTER TABLE interactions_monotonic RENAME TO interactions",
        "CREATE INDEX interactions_product_time ON interactions(product_id, occurred_at)",
        "CREATE INDEX interactions_time ON interactions(occurred_at)",
        "CREATE INDEX interactions_list ON interactions(list_id) WHERE list_id IS NOT NULL",
        """CREATE UNIQUE INDEX interactions_natural_key
            ON interactions(customer_id, product_id, event_type, occurred_at) WHERE natural_key = 1""",
        "CREATE INDEX interactions_customer ON interactions(customer_id, product_id, event_type, occurred_at)",
        """CREATE TABLE interaction_updates (
            seq INTEGER PRIMARY KEY AUTOINCREMENT,
            interaction_id INTEGER NOT NULL REFERENCES interactions(id) ON DELETE CASCADE
        )""",
        "INSERT INTO interaction_updates (seq, interaction_id) SELECT seq, interaction_id FROM kept_interaction_updates",
        "CREATE INDEX interaction_updates_interaction ON interaction_updates(interaction_id)",
        """CREATE TRIGGER interactions_quantity_updated AFTER UPDATE OF quantity ON interactions
            WHEN new.quantity IS NOT old.quantity
            BEGIN INSERT INTO interaction_updates (interaction_id) VALUES (new.id); END""",
        "INSERT INTO event_keys (event_id, interaction_id, received_at) "
        "SELECT event_id, interaction_id, received_at FROM kept_event_keys",
        "DROP TABLE kept_event_keys",
        "DROP TABLE kept_interaction_updates",
    ],
]

SCHEMA_VERSION = len(MIGRATIONS)
TABLES = (
    "customers",
    "products",
    "interactions",
    "consents",
    "consent_log",
    "offers",
    "models",
    "decisions",
    "api_keys",
    "erasures",
    "erased_emails",
    "meta",
    "privacy_events",
    "copies",
    "event_keys",
    "interaction_updates",
    "product_changes",
    "rules",
    "rule_audit",
    "rule_sets",
    "product_arrivals",
    "value_runs",
    "customer_values",
    "value_snapshots",
)
