"""inlet from Python: ``inlet.write(data, …)`` lands a DataFrame (pandas,
Polars, pyarrow, DuckDB, or an iterator of record batches) in a data lake
as Parquet / CSV / JSONL files or a Delta table, with the same settings,
destinations and Delta modes as ``inlet load``.

The rows go to the ``inlet`` binary installed with this package as an Arrow
IPC stream (``inlet write``), one record batch at a time: the types are the
data's own Arrow types, and memory holds a batch, not the whole data.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version as _version

from ._binary import find_inlet
from ._write import InletError, WriteResult, write

try:
    __version__ = _version("inlet-lake")
except PackageNotFoundError:  # pragma: no cover - running from a checkout
    __version__ = "0+unknown"

__all__ = ["write", "WriteResult", "InletError", "find_inlet", "__version__"]
