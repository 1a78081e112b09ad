"""A/B arms: which customers are held out (control), get a challenger model, or get the current model.

The arm is a keyed hash of the customer id, so it is stable (a customer stays
in their arm across requests, workers and restarts, with nothing stored per
customer) and cannot be predicted or chosen from outside: the key is a random
value made once per database (``meta.online_arm_key``), mixed with
``online.salt`` so an operator can reshuffle everyone by changing the salt.

    u = HMAC-SHA256(HMAC-SHA256(arm_key, salt), customer_id)[:8] / 2**64
    control     if u <  control_share
    challenger  if u <  control_share + challenger_share
    model       otherwise

Only known customers with personalization consent are assigned (the caller
decides, see :mod:`recommender.serving.service`): for anyone else the list is
non-personalized in every arm, so counting them in an arm would only dilute
the comparison, and their lists are logged anonymously anyway.
"""

from __future__ import annotations

import hashlib
import hmac
import threading

import sqlite_utils

from recommender import store
from recommender.config import OnlineSettings

CONTROL, MODEL, CHALLENGER = "control", "model", "challenger"
ARMS = (MODEL, CONTROL, CHALLENGER)
KEY_ROW = "online_arm_key"


def bucket(key: bytes, customer_id: str) -> float:
    """The customer's point in [0, 1) under ``key``."""
    digest = hmac.new(key, customer_id.encode("utf-8"), hashlib.sha256).digest()
    return int.from_bytes(digest[:8], "big") / 2.0**64


def arm_for(point: float, conf: OnlineSettings) -> str:
    if point < conf.control_share:
        return CONTROL
    if conf.challenger and point < conf.control_share + conf.challenger_share:
        return CHALLENGER
    return MODEL


class Assigner:
    """Arms of one database; the key is read from ``meta`` once per process."""

    def __init__(self, conf: OnlineSettings) -> None:
        self.conf = conf
        self._key: bytes | None = None
        self._lock = threading.Lock()

    def key(self, db: sqlite_utils.Database) -> bytes:
        if self._key is None:
            with self._lock:
                if self._key is None:
                    self._key = derive_key(db, self.conf.salt)
        return self._key

    def arm(self, db: sqlite_utils.Database, customer_id: str) -> str:
        """The customer's arm (``model`` for everyone when no holdout is configured)."""
        if self.conf.control_share <= 0 and (not self.conf.challenger or self.conf.challenger_share <= 0):
            return MODEL
        return arm_for(bucket(self.key(db), customer_id), self.conf)


def holdout(db: sqlite_utils.Database, customer_ids, share: float, salt: str = "") -> set[str]:
    """The customers among ``customer_ids`` held out of campaign offers: ``bucket < share``.

    The same keyed hash as the arms, under its own key (the database's arm key mixed
    with ``"offers-holdout|" + salt``), so who is held out of offers is stable across
    runs and independent of who is in the API's control arm.
    """
    if share <= 0:
        return set()
    key = derive_key(db, "offers-holdout|" + salt)
    return {cid for cid in customer_ids if bucket(key, cid) < share}


def derive_key(db: sqlite_utils.Database, salt: str) -> bytes:
    """The experiment key: the database's random arm key, mixed with the configured salt."""
    value = store.meta_value(db, KEY_ROW)
    if value is None:  # a database migrated by a writer that lost the race; make it now
        store.ensure_random_meta(db, KEY_ROW)
        value = store.meta_value(db, KEY_ROW)
    return hmac.new(bytes.fromhex(value), salt.encode("utf-8"), hashlib.sha256).digest()
