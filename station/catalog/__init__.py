"""The catalog: SQLite through sqlite-utils, WAL, numbered transactional migrations."""

from station.catalog.db import open_catalog, write_txn

__all__ = ["open_catalog", "write_txn"]
