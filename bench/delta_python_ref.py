"""Reference for the Delta benchmark: what a Python Delta target does with a Singer file —
json.loads every line, collect records into columns with the SCHEMA's types, and append them to
a Delta table with the `deltalake` package (`write_deltalake`) every 100,000 records.

    python bench/delta_python_ref.py INPUT.singer.jsonl TABLE_DIR
"""

import json
import sys

import pyarrow as pa
from deltalake import write_deltalake

BATCH = 100_000


def arrow_type(prop: dict) -> pa.DataType:
    t = prop.get("type")
    types = [t] if isinstance(t, str) else [x for x in (t or []) if x != "null"]
    kind = types[0] if types else "string"
    if kind == "integer":
        return pa.int64()
    if kind == "number":
        return pa.float64()
    if kind == "boolean":
        return pa.bool_()
    if kind == "string" and prop.get("format") == "date-time":
        return pa.timestamp("us", tz="UTC")
    if kind == "string" and prop.get("format") == "date":
        return pa.date32()
    return pa.string()


def flush(path, schema, cols):
    arrays = []
    for f in schema:
        vals = cols[f.name]
        if pa.types.is_timestamp(f.type) or pa.types.is_date(f.type):
            arrays.append(pa.array(vals, pa.string()).cast(f.type))
        else:
            arrays.append(pa.array(vals, f.type))
    write_deltalake(path, pa.Table.from_arrays(arrays, schema=schema), mode="append")


def main(src: str, path: str) -> None:
    schema, cols, n, total = None, None, 0, 0
    with open(src, "rb") as f:
        for line in f:
            m = json.loads(line)
            t = m.get("type")
            if t == "SCHEMA":
                props = m["schema"]["properties"]
                schema = pa.schema([pa.field(k, arrow_type(v)) for k, v in props.items()])
                cols = {k: [] for k in props}
            elif t == "RECORD":
                r = m["record"]
                for k in cols:
                    cols[k].append(r.get(k))
                n += 1
                if n == BATCH:
                    flush(path, schema, cols)
                    total += n
                    cols, n = {k: [] for k in cols}, 0
    if n:
        flush(path, schema, cols)
        total += n
    print(total)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
