"""The batch store: the only package that writes SQL or imports a database driver.

:func:`open_store` opens a workspace's store; callers type against :class:`Store`. Inside,
the concern modules (products, batches, units, refusals, manifests, QA) build on one core
(core.py) in SQL both engines share; each engine (sqlite.py) brings its connection,
its transactions and its schema.
"""

from .api import ConstraintError, DatabaseError, DatabaseUnreachable, ReplayError, Store
from .common import check_station_name, utc_now
from .factory import open_store
from .journal import StepJournal

__all__ = ["ConstraintError", "DatabaseError", "DatabaseUnreachable", "ReplayError", "StepJournal", "Store", "check_station_name",
           "open_store", "utc_now"]
