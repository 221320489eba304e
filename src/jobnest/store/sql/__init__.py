"""The store on SQLAlchemy Core: SQLite today, PostgreSQL (psycopg 3) by URL.

``SQLStore`` is the one implementation of the ``Store`` contract, assembled from one mixin
per part of it, all working in the transactions of ``engine.SQLBase``:

- ``engine``: URLs, engines and SQLite's pragmas (WAL, ``BEGIN IMMEDIATE``), the lock held
  while a file is opened and migrated, the transactions, errors turned into StoreError;
- ``batch``: ``apply``, the hot path, on statements compiled once per dialect;
- ``runs``: starting a run (the rules kept by unique indexes too) and reading runs;
- ``controls``: retries, command fixes, marks and plan versions;
- ``leases``, ``schedules``, ``catalog``, ``auth``, ``notifications``, ``workers``,
  ``retention``: one part of the contract each;
- ``rows``: the row readers and inserts they share.
"""

from jobnest.store.base import Store
from jobnest.store.sql.auth import AuthMixin
from jobnest.store.sql.batch import BatchMixin
from jobnest.store.sql.catalog import CatalogMixin
from jobnest.store.sql.controls import ControlsMixin
from jobnest.store.sql.engine import BUSY_TIMEOUT_SECONDS, sqlite_url, upgrades_on_open
from jobnest.store.sql.leases import LeasesMixin
from jobnest.store.sql.notifications import NotificationsMixin
from jobnest.store.sql.retention import RetentionMixin
from jobnest.store.sql.runs import RunsMixin
from jobnest.store.sql.schedules import SchedulesMixin
from jobnest.store.sql.workers import WorkersMixin

__all__ = ["BUSY_TIMEOUT_SECONDS", "SQLStore", "sqlite_url", "upgrades_on_open"]


class SQLStore(
    BatchMixin,
    ControlsMixin,
    RunsMixin,
    LeasesMixin,
    SchedulesMixin,
    CatalogMixin,
    AuthMixin,
    NotificationsMixin,
    WorkersMixin,
    RetentionMixin,
    Store,
):
    """The store on one SQLAlchemy engine; open it with ``SQLStore.open(url)``."""
