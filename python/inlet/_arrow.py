"""Anything tabular → a pyarrow RecordBatchReader, without inferring types
beyond what the data's own library says and without reading it all first."""

from __future__ import annotations

from typing import Any, Iterable, Iterator

import pyarrow as pa

#: Rows per record batch sent to inlet (a pandas DataFrame or a pyarrow
#: Table is cut into batches of this size).
CHUNK_ROWS = 65_536


def _is_pandas(obj: Any) -> bool:
    return type(obj).__module__.startswith("pandas") and hasattr(obj, "to_numpy") and hasattr(obj, "columns")


def _from_pandas(df: Any) -> pa.Table:
    # a named index (after a groupby, a set_index) is data; a RangeIndex is not
    keep_index = any(name is not None for name in df.index.names)
    return pa.Table.from_pandas(df, preserve_index=keep_index)


def _batches(item: Any) -> list[pa.RecordBatch]:
    """One item of an iterator: a RecordBatch, a Table, a DataFrame (pandas or
    any with the Arrow C stream interface), or an object with __arrow_c_array__."""
    if isinstance(item, pa.RecordBatch):
        return [item]
    if isinstance(item, pa.Table):
        return item.to_batches(max_chunksize=CHUNK_ROWS)
    if _is_pandas(item):
        return _from_pandas(item).to_batches(max_chunksize=CHUNK_ROWS)
    if hasattr(item, "__arrow_c_stream__"):
        return list(pa.RecordBatchReader.from_stream(item))
    if hasattr(item, "__arrow_c_array__"):
        return [pa.record_batch(item)]
    raise TypeError(
        f"cannot write an item of type {type(item).__name__}: an iterator passed to inlet.write "
        "must yield pyarrow RecordBatches or Tables, pandas or Polars DataFrames"
    )


def _conform(batch: pa.RecordBatch, schema: pa.Schema, n: int) -> pa.RecordBatch:
    if batch.schema.equals(schema):
        return batch
    if batch.schema.names != schema.names:
        raise ValueError(
            f"batch {n} of the iterator has columns {batch.schema.names}, the first had "
            f"{schema.names}: every batch of one write must have the same columns"
        )
    try:
        return batch.cast(schema)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as e:
        raise ValueError(
            f"batch {n} of the iterator does not have the first batch's types ({e}); "
            "give every batch the same schema (e.g. pass schema= to pyarrow, or fix the dtypes)"
        ) from e


def _from_iterator(items: Iterable[Any], schema: pa.Schema | None) -> pa.RecordBatchReader:
    it = iter(items)
    first: list[pa.RecordBatch] = []
    if schema is None:
        for item in it:
            first = _batches(item)
            if first:
                schema = first[0].schema
                break
        else:
            raise ValueError("the iterator passed to inlet.write yielded no rows and no schema= was given")

    def gen() -> Iterator[pa.RecordBatch]:
        n = 0
        for b in first:
            n += 1
            yield _conform(b, schema, n)
        for item in it:
            for b in _batches(item):
                n += 1
                yield _conform(b, schema, n)

    return pa.RecordBatchReader.from_batches(schema, gen())


def to_reader(data: Any, schema: pa.Schema | None = None) -> pa.RecordBatchReader:
    """`data` as a stream of record batches."""
    if isinstance(data, pa.RecordBatchReader):
        return data
    if isinstance(data, pa.Table):
        return data.to_reader(max_chunksize=CHUNK_ROWS)
    if isinstance(data, pa.RecordBatch):
        return pa.RecordBatchReader.from_batches(data.schema, [data])
    if _is_pandas(data):
        return _from_pandas(data).to_reader(max_chunksize=CHUNK_ROWS)
    if hasattr(data, "__arrow_c_stream__"):
        # Polars DataFrame, DuckDB relation, nanoarrow, …: no copy
        return pa.RecordBatchReader.from_stream(data)
    if hasattr(data, "__arrow_c_array__"):
        return pa.RecordBatchReader.from_batches(*_one(pa.record_batch(data)))
    if isinstance(data, (str, bytes, dict)) or not hasattr(data, "__iter__"):
        raise TypeError(
            f"inlet.write cannot write a {type(data).__name__}: pass a pandas or Polars DataFrame, "
            "a pyarrow Table / RecordBatch / RecordBatchReader, a DuckDB relation, anything with "
            "__arrow_c_stream__, or an iterator of record batches"
        )
    return _from_iterator(data, schema)


def _one(batch: pa.RecordBatch) -> tuple[pa.Schema, list[pa.RecordBatch]]:
    return batch.schema, [batch]
