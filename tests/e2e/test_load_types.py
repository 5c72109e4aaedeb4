"""Types from the SCHEMA message, checked in the Parquet files with pyarrow and DuckDB:
the type mapping, exact values (unicode, escapes, nulls, false booleans, offsets), many
interleaved streams from the shared generator, wide and deeply nested schemas."""

from __future__ import annotations

import datetime as dt
import decimal
import json

import pyarrow as pa
import pytest

from inlet_helpers import (UTC, data_files, duck, gen_singer, lines, ok, parse_singer,
                           read_stream_parquet, record_msg, schema_msg, state_msg, ts, duck_glob,
                           stdout_states, assert_no_temp_files)

TS_UTC = pa.timestamp("us", tz="UTC")


def us(d: dt.datetime) -> int:
    """Microseconds since the epoch (DuckDB's epoch_us), without float rounding."""
    delta = d - dt.datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86400 + delta.seconds) * 1_000_000 + delta.microseconds

TYPES_SCHEMA = {
    "type": "object",
    "definitions": {
        "money": {"type": ["null", "number"], "multipleOf": 0.01},
        "node": {
            "type": ["null", "object"],
            "properties": {
                "name": {"type": "string"},
                "children": {"type": ["null", "array"], "items": {"$ref": "#/definitions/node"}},
            },
        },
    },
    "properties": {
        "id": {"type": "integer"},
        "i_null": {"type": ["null", "integer"]},
        "num": {"type": ["null", "number"]},
        "flag": {"type": ["null", "boolean"]},
        "at": {"type": ["null", "string"], "format": "date-time"},
        "day": {"type": ["null", "string"], "format": "date"},
        "clock": {"type": ["null", "string"], "format": "time"},
        "name": {"type": ["null", "string"]},
        "obj": {
            "type": ["null", "object"],
            "properties": {
                "a": {"type": ["null", "integer"]},
                "b": {"type": ["null", "object"], "properties": {"c": {"type": ["null", "string"]}}},
            },
        },
        "ints": {"type": ["null", "array"], "items": {"type": "integer"}},
        "objs": {
            "type": ["null", "array"],
            "items": {"type": "object", "properties": {"k": {"type": "string"}, "v": {"type": ["null", "number"]}}},
        },
        "price": {"type": ["null", "number"], "multipleOf": 0.01},
        "money_ref": {"$ref": "#/definitions/money"},
        "tree": {"$ref": "#/definitions/node"},
        "anything": {"type": ["null", "string", "integer", "object", "array"]},
        "mixed": {"anyOf": [{"type": "string"}, {"type": "integer"}, {"type": "null"}]},
        "nullable_ts": {"anyOf": [{"type": "string", "format": "date-time"}, {"type": "null"}]},
        "free": {"type": ["null", "object"]},
        "extra": {"type": ["null", "object"], "properties": {"x": {"type": "integer"}},
                  "additionalProperties": True},
        "untyped": {},
        "bounded": {"type": ["null", "number"], "maximum": 100, "exclusiveMaximum": True},
        "int_or_num": {"type": ["null", "integer", "number"]},
    },
    "required": ["id"],
}

BIG_PRICE = "12345678901234567.89"  # 19 significant digits: more than a double holds

TYPES_RECORDS = [
    {
        "id": 1, "i_null": 9007199254740993, "num": 1.5, "flag": True,
        "at": "2024-03-05T10:00:00+02:00", "day": "2024-02-29", "clock": "12:34:56.789012",
        "name": "caf\u00e9 \u65e5\u672c \U0001F680",
        "obj": {"a": 1, "b": {"c": "deep"}}, "ints": [1, 2, 3],
        "objs": [{"k": "x", "v": 1.25}, {"k": "y", "v": None}],
        "price": "__BIG__", "money_ref": 0.1,
        "tree": {"name": "root", "children": [{"name": "kid", "children": [{"name": "grandkid"}]}]},
        "anything": {"nested": [1, "two", None]}, "mixed": "text", "nullable_ts": "2024-01-01T00:00:00Z",
        "free": {"k": [1, {"z": True}]}, "extra": {"x": 5, "y": "more"}, "untyped": [1, "a"],
        "bounded": 99.5, "int_or_num": 3,
    },
    {
        "id": 2, "i_null": None, "num": -0.0001, "flag": False,
        "at": "2024-03-05T10:00:00.123456-05:30", "day": "1970-01-01", "clock": "00:00:00",
        "name": "quote\" back\\slash new\nline tab\t cr\r nul\u0000 ctl\u001f",
        "obj": {"a": None, "b": None}, "ints": [],
        "objs": [], "price": 0.01, "money_ref": None, "tree": None,
        "anything": 42, "mixed": 7, "nullable_ts": None,
        "free": {}, "extra": None, "untyped": None, "bounded": None, "int_or_num": 2.5,
    },
    {
        "id": 3, "flag": None, "at": None, "name": None, "obj": None, "ints": None,
        "anything": "plain", "mixed": None, "untyped": {"a": 1},
    },
    {
        "id": 4, "flag": False, "at": "1999-12-31T23:59:59.999999Z", "day": "2099-12-31",
        "clock": "23:59:59", "num": 1e300, "price": -12.34, "anything": [1, [2]], "untyped": "s",
        "int_or_num": -7,
    },
]


def types_input() -> bytes:
    recs = []
    for r in TYPES_RECORDS:
        s = json.dumps({"type": "RECORD", "stream": "types", "record": r}, ensure_ascii=False)
        recs.append(s.replace('"__BIG__"', BIG_PRICE))  # a JSON number with 19 digits
    return lines(schema_msg("types", TYPES_SCHEMA), *recs, state_msg({"done": True}))


@pytest.fixture
def types_table(run_inlet, dest):
    proc = ok(run_inlet({"destination": str(dest)}, types_input()))
    assert stdout_states(proc) == [{"done": True}]
    assert_no_temp_files(dest)
    t = read_stream_parquet(dest, "types")
    return t.sort_by("id")


def test_arrow_types_follow_the_schema(types_table):
    t = types_table
    s = t.schema
    expect = {
        "id": pa.int64(),
        "i_null": pa.int64(),
        "num": pa.float64(),
        "flag": pa.bool_(),
        "at": TS_UTC,
        "day": pa.date32(),
        "clock": pa.time64("us"),
        "name": pa.string(),
        "price": pa.decimal128(s.field("price").type.precision, 2) if pa.types.is_decimal(s.field("price").type) else "decimal",
        "anything": pa.string(),
        "mixed": pa.string(),
        "nullable_ts": TS_UTC,
        "free": pa.string(),
        "extra": pa.string(),
        "untyped": pa.string(),
        "bounded": pa.float64(),
        "int_or_num": pa.float64(),
    }
    for name, typ in expect.items():
        assert s.field(name).type == typ, f"{name}: {s.field(name).type} != {typ}"
    assert pa.types.is_decimal128(s.field("price").type)
    assert s.field("price").type.scale == 2
    assert s.field("price").type.precision >= 19
    mr = s.field("money_ref").type
    assert pa.types.is_decimal(mr) and mr.scale == 2, mr
    assert not s.field("id").nullable
    assert s.field("i_null").nullable and s.field("flag").nullable
    obj = s.field("obj").type
    assert pa.types.is_struct(obj)
    assert obj.field("a").type == pa.int64()
    assert pa.types.is_struct(obj.field("b").type) and obj.field("b").type.field("c").type == pa.string()
    assert pa.types.is_list(s.field("ints").type) and s.field("ints").type.value_type == pa.int64()
    objs = s.field("objs").type
    assert pa.types.is_list(objs) and pa.types.is_struct(objs.value_type)
    assert objs.value_type.field("k").type == pa.string() and objs.value_type.field("v").type == pa.float64()
    tree = s.field("tree").type
    assert pa.types.is_struct(tree), tree
    assert tree.field("name").type == pa.string()
    # the recursion point is kept (as a list of JSON text or a JSON text column), never dropped
    assert "children" in [tree.field(i).name for i in range(tree.num_fields)]
    # metadata columns
    assert s.field("_inlet_created_at").type == TS_UTC
    assert s.field("_inlet_updated_at").type == TS_UTC
    assert s.field("_sdc_extracted_at").type == TS_UTC


def test_values_are_exact(types_table):
    rows = {r["id"]: r for r in types_table.to_pylist()}
    assert sorted(rows) == [1, 2, 3, 4]
    r1, r2, r3, r4 = rows[1], rows[2], rows[3], rows[4]
    assert r1["i_null"] == 9007199254740993  # exact beyond 2**53
    assert r2["i_null"] is None and r3["i_null"] is None
    # booleans: false stays false, null stays null
    assert [rows[i]["flag"] for i in (1, 2, 3, 4)] == [True, False, None, False]
    # offsets normalised to UTC
    assert r1["at"] == dt.datetime(2024, 3, 5, 8, 0, 0, tzinfo=UTC)
    assert r2["at"] == dt.datetime(2024, 3, 5, 15, 30, 0, 123456, tzinfo=UTC)
    assert r3["at"] is None
    assert r4["at"] == dt.datetime(1999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)
    assert r1["day"] == dt.date(2024, 2, 29) and r2["day"] == dt.date(1970, 1, 1) and r4["day"] == dt.date(2099, 12, 31)
    assert r1["clock"] == dt.time(12, 34, 56, 789012) and r2["clock"] == dt.time(0, 0) and r4["clock"] == dt.time(23, 59, 59)
    assert r1["num"] == 1.5 and r2["num"] == -0.0001 and r4["num"] == 1e300
    assert r1["name"] == TYPES_RECORDS[0]["name"]
    assert r2["name"] == TYPES_RECORDS[1]["name"]
    assert r3["name"] is None
    assert r1["obj"] == {"a": 1, "b": {"c": "deep"}}
    assert r2["obj"] == {"a": None, "b": None}
    assert r3["obj"] is None
    assert r1["ints"] == [1, 2, 3] and r2["ints"] == [] and r3["ints"] is None
    assert r1["objs"] == [{"k": "x", "v": 1.25}, {"k": "y", "v": None}] and r2["objs"] == []
    assert r1["price"] == decimal.Decimal(BIG_PRICE)
    assert r2["price"] == decimal.Decimal("0.01") and r4["price"] == decimal.Decimal("-12.34")
    assert r1["money_ref"] == decimal.Decimal("0.10")
    # JSON text columns hold JSON, whatever the JSON type
    assert json.loads(r1["anything"]) == {"nested": [1, "two", None]}
    assert json.loads(r2["anything"]) == 42
    assert json.loads(r3["anything"]) == "plain"
    assert json.loads(r4["anything"]) == [1, [2]]
    assert json.loads(r1["mixed"]) == "text" and json.loads(r2["mixed"]) == 7 and r3["mixed"] is None
    assert json.loads(r1["free"]) == {"k": [1, {"z": True}]} and json.loads(r2["free"]) == {}
    assert json.loads(r1["extra"]) == {"x": 5, "y": "more"} and r2["extra"] is None
    assert json.loads(r1["untyped"]) == [1, "a"] and json.loads(r3["untyped"]) == {"a": 1}
    assert json.loads(r4["untyped"]) == "s"
    assert r1["nullable_ts"] == dt.datetime(2024, 1, 1, tzinfo=UTC) and r2["nullable_ts"] is None
    assert r1["bounded"] == 99.5
    assert r1["int_or_num"] == 3.0 and r2["int_or_num"] == 2.5 and r4["int_or_num"] == -7.0
    # the recursive tree keeps every level's data
    tree = r1["tree"]
    assert tree["name"] == "root"
    kids = tree["children"]
    kid = kids[0] if isinstance(kids, list) else json.loads(kids)[0]
    kid = json.loads(kid) if isinstance(kid, str) else kid
    assert kid["name"] == "kid"
    gk = kid["children"]
    gk = json.loads(gk) if isinstance(gk, str) else gk
    gk0 = json.loads(gk[0]) if isinstance(gk[0], str) else gk[0]
    assert gk0["name"] == "grandkid"
    assert r2["tree"] is None


def test_duckdb_reads_the_same_types_and_values(run_inlet, dest):
    ok(run_inlet({"destination": str(dest)}, types_input()))
    con = duck()
    g = duck_glob(dest, "types", "parquet")
    desc = {r[0]: r[1] for r in con.execute(f"DESCRIBE SELECT * FROM read_parquet('{g}')").fetchall()}
    assert desc["id"] == "BIGINT"
    assert desc["num"] == "DOUBLE"
    assert desc["flag"] == "BOOLEAN"
    assert desc["at"] == "TIMESTAMP WITH TIME ZONE"
    assert desc["day"] == "DATE"
    assert desc["clock"] == "TIME"
    assert desc["price"].startswith("DECIMAL(") and desc["price"].endswith(",2)"), desc["price"]
    assert desc["obj"].startswith("STRUCT(")
    assert desc["ints"] == "BIGINT[]"
    assert desc["anything"] == "VARCHAR"
    rows = con.execute(
        f"SELECT id, flag, epoch_us(\"at\"), \"day\", clock, price, obj.b.c, ints, \"name\" FROM read_parquet('{g}') ORDER BY id"
    ).fetchall()
    assert [r[0] for r in rows] == [1, 2, 3, 4]
    assert [r[1] for r in rows] == [True, False, None, False]
    assert rows[0][2] == us(dt.datetime(2024, 3, 5, 8, 0, tzinfo=UTC))
    assert rows[1][2] == us(dt.datetime(2024, 3, 5, 15, 30, 0, 123456, tzinfo=UTC))
    assert rows[0][3] == dt.date(2024, 2, 29)
    assert rows[0][4] == dt.time(12, 34, 56, 789012)
    assert rows[0][5] == decimal.Decimal(BIG_PRICE)
    assert rows[0][6] == "deep"
    assert rows[0][7] == [1, 2, 3]
    assert rows[1][8] == TYPES_RECORDS[1]["name"]
    assert con.execute(f"SELECT count(*) FILTER (WHERE flag = false) FROM read_parquet('{g}')").fetchone()[0] == 2
    con.close()


def test_columns_keep_schema_order(run_inlet, dest):
    schema = {"type": "object", "properties": {
        "zeta": {"type": "integer"}, "alpha": {"type": "string"}, "mid": {"type": "boolean"}, "id": {"type": "integer"}}}
    ok(run_inlet({"destination": str(dest), "add_metadata_columns": False},
                 lines(schema_msg("order", schema), record_msg("order", {"zeta": 1, "alpha": "a", "mid": True, "id": 1}))))
    t = read_stream_parquet(dest, "order")
    assert t.column_names == ["zeta", "alpha", "mid", "id"]


# ---------------------------------------------------------------- generated streams


@pytest.mark.parametrize("profile", ["flat", "nested"])
def test_generated_interleaved_streams_exact(run_inlet, dest, profile):
    data = gen_singer("-n", "3000", "-s", "5", "-p", profile, "--state-every", "500", "--seed", "7")
    schemas, records, states = parse_singer(data)
    proc = ok(run_inlet({"destination": str(dest)}, data))
    out_states = stdout_states(proc)
    assert out_states and out_states[-1] == states[-1]
    for st in out_states:
        assert st in states
    assert_no_temp_files(dest)
    con = duck()
    for stream, recs in records.items():
        t = read_stream_parquet(dest, stream).sort_by("id")
        assert t.num_rows == len(recs) == 600
        got = t.to_pylist()
        for m, row in zip(recs, got):
            r = m["record"]
            assert row["id"] == r["id"]
            for k in ("name", "email", "description", "category", "country_code", "quantity", "notes", "is_active"):
                assert row[k] == r.get(k), (stream, r["id"], k, row[k], r.get(k))
            assert row["amount"] == pytest.approx(r["amount"], rel=0, abs=0)
            if r.get("score") is None:
                assert row["score"] is None
            else:
                assert row["score"] == r["score"]
            assert row["created_at"] == ts(r["created_at"])
            bd = r.get("birth_date")
            assert row["birth_date"] == (dt.date.fromisoformat(bd) if bd else None)
            te = m.get("time_extracted")
            assert row["_sdc_extracted_at"] == (ts(te) if te else None)
            if profile == "nested":
                assert row["tags"] == r.get("tags")
                assert row["line_items"] == r.get("line_items")
                a = r.get("address")
                if a is None:
                    assert row["address"] is None
                else:
                    assert row["address"]["street"] == a["street"] and row["address"]["city"] == a["city"]
                    assert row["address"]["zip"] == a.get("zip")
                    assert row["address"]["geo"] == a.get("geo")
        # DuckDB agrees on counts and on false booleans
        g = duck_glob(dest, stream, "parquet")
        n, n_false, n_null_email = con.execute(
            f"SELECT count(*), count(*) FILTER (WHERE NOT is_active), count(*) FILTER (WHERE email IS NULL) FROM read_parquet('{g}')"
        ).fetchone()
        assert n == len(recs)
        assert n_false == sum(1 for m in recs if m["record"]["is_active"] is False) > 0
        assert n_null_email == sum(1 for m in recs if m["record"].get("email") is None)
        if profile == "nested":
            cities = con.execute(f"SELECT id, address.city FROM read_parquet('{g}') ORDER BY id").fetchall()
            assert cities == [(m["record"]["id"], (m["record"].get("address") or {}).get("city")) for m in recs]
    con.close()


def test_unicode_and_escapes_roundtrip(run_inlet, dest):
    values = [
        'quote"d', "back\\slash", "new\nline", "tab\there", "cr\rlf\r\n", "emoji \U0001F680\U0001F468\u200d\U0001F469",
        "caf\u00e9 na\u00efve \u00fcber", "\u65e5\u672c\u8a9e", "nul\u0000byte", "ctl\u0001\u001f\u007f",
        "", " leading and trailing ", "comma,semi;pipe|", "{\"not\":\"json obj\"}", "\\u0041 literal",
        "\u2028line sep\u2029", "x" * 10000,
    ]
    schema = {"type": "object", "properties": {"id": {"type": "integer"}, "s": {"type": ["null", "string"]},
                                               "n": {"type": ["null", "object"], "properties": {"s": {"type": "string"}}}}}
    msgs = [schema_msg("uni", schema)]
    for i, v in enumerate(values):
        msgs.append(record_msg("uni", {"id": i, "s": v, "n": {"s": v}}))
    # JSON escapes written by an ASCII-only tap (surrogate pairs, \/ and \u escapes)
    msgs.append('{"type":"RECORD","stream":"uni","record":{"id":100,"s":"\\ud83d\\ude80 \\u00e9 \\/ \\b\\f","n":{"s":"\\u0000"}}}')
    ok(run_inlet({"destination": str(dest)}, lines(*msgs)))
    rows = {r["id"]: r for r in read_stream_parquet(dest, "uni").to_pylist()}
    for i, v in enumerate(values):
        assert rows[i]["s"] == v, (i, rows[i]["s"], v)
        assert rows[i]["n"] == {"s": v}
    assert rows[100]["s"] == "\U0001F680 \u00e9 / \b\f"
    assert rows[100]["n"] == {"s": "\u0000"}
    got = duck().execute(f"SELECT id, s FROM read_parquet('{duck_glob(dest, 'uni', 'parquet')}') ORDER BY id").fetchall()
    assert dict(got)[5] == values[5] and dict(got)[1] == values[1]


def test_wide_schema_300_columns(run_inlet, dest):
    kinds = [("integer", None), ("number", None), ("boolean", None), ("string", None), ("string", "date-time"), ("string", "date")]
    props = {}
    for i in range(300):
        t, f = kinds[i % len(kinds)]
        p = {"type": ["null", t]}
        if f:
            p["format"] = f
        props[f"c{i:03d}"] = p
    schema = {"type": "object", "properties": props}

    def val(i, row):
        t, f = kinds[i % len(kinds)]
        if (i + row) % 7 == 0:
            return None
        if t == "integer":
            return i * 1000 + row
        if t == "number":
            return i + row / 4
        if t == "boolean":
            return (i + row) % 2 == 0
        if f == "date-time":
            return f"2024-01-{1 + row % 28:02d}T{i % 24:02d}:00:00Z"
        if f == "date":
            return f"2024-02-{1 + row % 28:02d}"
        return f"v{i}-{row}"

    recs = [{f"c{i:03d}": val(i, row) for i in range(300)} for row in range(40)]
    ok(run_inlet({"destination": str(dest)}, lines(schema_msg("wide", schema, key_properties=()),
                                                    *[record_msg("wide", r) for r in recs])))
    t = read_stream_parquet(dest, "wide")
    assert t.num_rows == 40
    assert t.num_columns == 303
    assert t.schema.field("c000").type == pa.int64() and t.schema.field("c004").type == TS_UTC
    assert t.schema.field("c005").type == pa.date32() and t.schema.field("c002").type == pa.bool_()
    got = sorted(t.to_pylist(), key=lambda r: r["c001"] if r["c001"] is not None else -1)
    by_first = {r["c003"]: r for r in t.to_pylist()}
    for row, rec in enumerate(recs):
        key = rec["c003"]
        if key is None:
            continue
        g = by_first[key]
        for i in range(300):
            name = f"c{i:03d}"
            exp = rec[name]
            t_, f = kinds[i % len(kinds)]
            if exp is not None and f == "date-time":
                exp = ts(exp)
            elif exp is not None and f == "date":
                exp = dt.date.fromisoformat(exp)
            assert g[name] == exp, (row, name)
    assert got
    n_cols = duck().execute(f"SELECT count(*) FROM (DESCRIBE SELECT * FROM read_parquet('{duck_glob(dest, 'wide', 'parquet')}'))").fetchone()[0]
    assert n_cols == 303


def _deep_schema(depth):
    node = {"type": ["null", "object"], "properties": {"v": {"type": ["null", "integer"]},
                                                      "arr": {"type": ["null", "array"], "items": {"type": ["null", "array"], "items": {"type": "string"}}}}}
    for _ in range(depth - 1):
        node = {"type": ["null", "object"], "properties": {"v": {"type": ["null", "integer"]}, "child": node}}
    return node


def _deep_value(depth, seed):
    node = {"v": depth * 100 + seed, "arr": [["a", str(seed)], []]}
    for lvl in range(depth - 1, 0, -1):
        node = {"v": lvl * 100 + seed, "child": node}
    return node


def test_deeply_nested_10_levels(run_inlet, dest):
    schema = {"type": "object", "properties": {"id": {"type": "integer"}, "root": _deep_schema(10)}}
    recs = [{"id": i, "root": _deep_value(10, i)} for i in range(5)] + [{"id": 9, "root": None}]
    ok(run_inlet({"destination": str(dest)}, lines(schema_msg("deep", schema), *[record_msg("deep", r) for r in recs])))
    t = read_stream_parquet(dest, "deep").sort_by("id")
    typ = t.schema.field("root").type
    for lvl in range(9):
        assert pa.types.is_struct(typ), (lvl, typ)
        if lvl < 8:
            typ = typ.field("child").type
    rows = t.to_pylist()
    for r, rec in zip(rows, recs):
        assert r["id"] == rec["id"]
        if rec["root"] is None:
            assert r["root"] is None
            continue
        node, exp = r["root"], rec["root"]
        for _ in range(9):
            assert node["v"] == exp["v"]
            node, exp = node["child"], exp["child"]
        assert node["v"] == exp["v"] and node["arr"] == exp["arr"]
    path = ".".join(["root"] + ["child"] * 9 + ["v"])
    got = duck().execute(f"SELECT id, {path} FROM read_parquet('{duck_glob(dest, 'deep', 'parquet')}') ORDER BY id").fetchall()
    assert got == [(i, 1000 + i) for i in range(5)] + [(9, None)]


def test_schema_change_mid_run_keeps_all_rows(run_inlet, dest):
    s1 = {"type": "object", "properties": {"id": {"type": "integer"}, "a": {"type": ["null", "string"]}}}
    s2 = {"type": "object", "properties": {"id": {"type": "integer"}, "a": {"type": ["null", "string"]},
                                           "b": {"type": ["null", "integer"]}}}
    msgs = [schema_msg("evo", s1)] + [record_msg("evo", {"id": i, "a": f"x{i}"}) for i in range(3)]
    msgs += [schema_msg("evo", s1)]  # a repeated identical SCHEMA changes nothing
    msgs += [record_msg("evo", {"id": 3, "a": "x3"})]
    msgs += [schema_msg("evo", s2)] + [record_msg("evo", {"id": i, "a": f"x{i}", "b": i}) for i in range(4, 7)]
    ok(run_inlet({"destination": str(dest)}, lines(*msgs, state_msg({"s": 1}))))
    files = data_files(dest, "evo", "parquet")
    assert len(files) == 2, files
    import pyarrow.parquet as pq
    schemas = sorted([pq.read_schema(f).names for f in files], key=len)
    assert "b" not in schemas[0] and "b" in schemas[1]
    rows = duck().execute(
        f"SELECT id, a, b FROM read_parquet('{duck_glob(dest, 'evo', 'parquet')}', union_by_name=true) ORDER BY id").fetchall()
    assert rows == [(i, f"x{i}", None) for i in range(4)] + [(i, f"x{i}", i) for i in range(4, 7)]


def test_many_streams_named_like_real_taps(run_inlet, dest):
    names = ["public-items", "public-orders", "sales-Order Lines", "a.b.c", "UPPER"]
    schema = {"type": "object", "properties": {"id": {"type": "integer"}}}
    msgs = [state_msg({"bookmarks": {}})]  # STATE before any SCHEMA
    msgs += [schema_msg(n, schema) for n in names]
    for i in range(50):
        for n in names:
            msgs.append(record_msg(n, {"id": i}))
    proc = ok(run_inlet({"destination": str(dest)}, lines(*msgs, state_msg({"end": 1}))))
    assert stdout_states(proc)[-1] == {"end": 1}
    for n in names:
        t = read_stream_parquet(dest, n)
        assert sorted(t.column("id").to_pylist()) == list(range(50)), n


def test_timestamp_and_decimal_forms_real_taps_send(run_inlet, dest):
    schema = {"type": "object", "properties": {
        "id": {"type": "integer"}, "at": {"type": ["null", "string"], "format": "date-time"},
        "p": {"type": ["null", "number"], "multipleOf": 0.01}, "i": {"type": ["null", "integer"]}}}
    raw = [
        '{"i":1,"id":1,"at":"2024-03-05T10:00:00","p":1e2}',                    # naive (SDK isoformat) -> UTC; keys out of order
        '{"id":2,"at":"2024-03-05 10:00:00+01:00","p":-0.01}',                  # space separator
        '{"id":3,"at":"2024-03-05t10:00:00z","p":5}',                           # lowercase t / z; integer into a decimal
        '{"id":4,"at":"2024-03-05T10:00:00.123456789Z","p":1.50,"i":5}',        # nanoseconds
        '{"id":5,"at":"2024-03-05T10:00:00+0100","p":1.5E+1,"unknown":[1,{"a":2}]}',  # offset without colon; undeclared key
    ]
    data = lines(schema_msg("t", schema), *['{"type":"RECORD","stream":"t","record":%s}' % r for r in raw])
    ok(run_inlet({"destination": str(dest)}, data))
    rows = {r["id"]: r for r in read_stream_parquet(dest, "t").to_pylist()}
    ten = dt.datetime(2024, 3, 5, 10, tzinfo=UTC)
    nine = dt.datetime(2024, 3, 5, 9, tzinfo=UTC)
    assert [rows[i]["at"] for i in range(1, 6)] == [ten, nine, ten, ten.replace(microsecond=123456), nine]
    assert [rows[i]["p"] for i in range(1, 6)] == [decimal.Decimal(x) for x in ("100.00", "-0.01", "5.00", "1.50", "15.00")]
    assert rows[1]["i"] == 1 and rows[4]["i"] == 5 and rows[2]["i"] is None
    assert "unknown" not in read_stream_parquet(dest, "t").column_names
