"""Formats (parquet codecs, csv, jsonl, gzip) and layouts (mage, lakexpress, partition_keys,
path_template) of `inlet load`, read back with pyarrow and DuckDB; metadata columns and
column_header_format."""

from __future__ import annotations

import datetime as dt
import json
import re
import subprocess
import time

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from inlet_helpers import (UTC, all_files, assert_no_temp_files, data_files, duck, duck_glob, err_text,
                           explain, lines, ok, read_csv_file, read_jsonl_file, read_parquet_files,
                           read_stream_parquet, record_msg, rel, schema_msg, state_msg, stdout_states, ts)

SCHEMA = {
    "type": "object",
    "properties": {
        "id": {"type": "integer"},
        "name": {"type": ["null", "string"]},
        "amount": {"type": ["null", "number"]},
        "active": {"type": ["null", "boolean"]},
        "created_at": {"type": ["null", "string"], "format": "date-time"},
        "day": {"type": ["null", "string"], "format": "date"},
        "country": {"type": ["null", "string"]},
        "address": {"type": ["null", "object"], "properties": {"city": {"type": "string"}, "zip": {"type": ["null", "string"]}}},
        "tags": {"type": ["null", "array"], "items": {"type": "string"}},
        "blob": {"type": ["null", "string", "object", "array", "integer"]},
    },
    "required": ["id"],
}

NAMES = ['plain', 'quote"d', "comma,semi;", "new\nline", "back\\slash", "emoji \U0001F680", "tab\tx", "caf\u00e9"]
COUNTRIES = ["FR", "US", None, "a/b"]


def rec(i: int) -> dict:
    return {
        "id": i,
        "name": NAMES[i % len(NAMES)] if i % 11 else None,
        "amount": i * 1.25,
        "active": i % 3 == 0 if i % 5 else None,
        "created_at": f"2024-0{1 + i % 3}-1{i % 10}T1{i % 10}:30:00+02:00",
        "day": f"2023-12-{1 + i % 28:02d}",
        "country": COUNTRIES[i % len(COUNTRIES)],
        "address": {"city": f"City {i}", "zip": None if i % 2 else f"{i:05d}"} if i % 4 else None,
        "tags": [f"t{i}", "x,y", 'q"'] if i % 3 else [],
        "blob": [{"k": i}, "s"] if i % 2 else i,
    }


def stream_input(n: int = 40, stream: str = "items", with_state: bool = True, start: int = 0) -> bytes:
    msgs = [schema_msg(stream, SCHEMA)]
    for i in range(start, start + n):
        msgs.append(record_msg(stream, rec(i), time_extracted="2024-05-01T00:00:00Z" if i % 2 else None))
        if with_state and (i + 1) % 10 == 0:
            msgs.append(state_msg({"bookmarks": {stream: {"replication_key_value": i}}}))
    return lines(*msgs)


MAGE_FILE = re.compile(r"^\d{8}-\d{6}-[0-9A-Za-z_-]+\.(parquet|csv|csv\.gz|jsonl|jsonl\.gz)$")


# ---------------------------------------------------------------- parquet


@pytest.mark.parametrize("codec,expect", [
    (None, {"SNAPPY"}), ("snappy", {"SNAPPY"}), ("zstd", {"ZSTD"}), ("gzip", {"GZIP"}),
    ("lz4", {"LZ4", "LZ4_RAW"}), ("none", {"UNCOMPRESSED"}),
])
def test_parquet_codecs(run_inlet, dest, codec, expect):
    cfg = {"destination": str(dest)}
    if codec:
        cfg["compression"] = codec
    ok(run_inlet(cfg, stream_input()))
    files = data_files(dest, "items")
    assert len(files) == 1 and files[0].name.endswith(".parquet"), files
    md = pq.ParquetFile(files[0]).metadata
    codecs = {md.row_group(g).column(c).compression for g in range(md.num_row_groups) for c in range(md.num_columns)}
    assert codecs <= expect and codecs, codecs
    t = read_parquet_files(files).sort_by("id")
    assert t.column("id").to_pylist() == list(range(40))
    assert t.column("name").to_pylist() == [rec(i)["name"] for i in range(40)]
    n = duck().execute(f"SELECT count(*), sum(id), count(*) FILTER (WHERE active = false) FROM read_parquet('{files[0]}')").fetchone()
    assert n == (40, sum(range(40)), sum(1 for i in range(40) if rec(i)["active"] is False))


def test_parquet_row_group_size(run_inlet, dest):
    ok(run_inlet({"destination": str(dest), "row_group_size": 7}, stream_input(40)))
    (f,) = data_files(dest, "items")
    md = pq.ParquetFile(f).metadata
    assert md.num_rows == 40
    assert md.num_row_groups == 6
    assert max(md.row_group(i).num_rows for i in range(md.num_row_groups)) == 7


# ---------------------------------------------------------------- csv


def _no_nulls(v):
    if isinstance(v, dict):
        return {k: _no_nulls(x) for k, x in v.items() if x is not None}
    if isinstance(v, list):
        return [_no_nulls(x) for x in v]
    return v


def _check_csv_table(t: pa.Table, n: int):
    rows = sorted(t.to_pylist(), key=lambda r: int(r["id"]))
    assert len(rows) == n
    for i, r in enumerate(rows):
        e = rec(i)
        assert r["id"] == str(i)
        assert r["name"] == (e["name"] if e["name"] is not None else "")
        assert float(r["amount"]) == e["amount"]
        assert r["active"] == {True: "true", False: "false", None: ""}[e["active"]]
        # RFC 3339, UTC
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|\+00:00)", r["created_at"]), r["created_at"]
        assert ts(r["created_at"]) == ts(e["created_at"])
        assert r["day"] == e["day"]
        # nested values are JSON text (never language repr)
        # (a null field inside a nested value may be written as null or left out)
        if e["address"] is None:
            assert r["address"] == ""
        else:
            assert _no_nulls(json.loads(r["address"])) == _no_nulls(e["address"])
        assert json.loads(r["tags"]) == e["tags"]
        assert json.loads(r["blob"]) == e["blob"]


@pytest.mark.parametrize("compression,delimiter", [(None, None), ("gzip", None), (None, ";"), (None, "\t"), ("gzip", "|")])
def test_csv(run_inlet, dest, compression, delimiter):
    cfg = {"destination": str(dest), "format": "csv"}
    if compression:
        cfg["compression"] = compression
    if delimiter:
        cfg["csv_delimiter"] = delimiter
    ok(run_inlet(cfg, stream_input()))
    files = data_files(dest, "items")
    assert len(files) == 1
    ext = "csv.gz" if compression else "csv"
    assert files[0].name.endswith("." + ext) and MAGE_FILE.match(files[0].name), files[0].name
    if compression:
        assert files[0].read_bytes()[:2] == b"\x1f\x8b"
    delim = delimiter or ","
    t = read_csv_file(files[0], delim)
    assert set(SCHEMA["properties"]) <= set(t.column_names)
    assert {"_inlet_created_at", "_inlet_updated_at", "_sdc_extracted_at"} <= set(t.column_names)
    _check_csv_table(t, 40)
    # DuckDB reads it too
    con = duck()
    q = (f"SELECT count(*), count(*) FILTER (WHERE active = false) FROM read_csv('{files[0]}', delim='{delim}', "
         f"header=true, quote='\"', escape='\"', types={{'active': 'BOOLEAN'}})")
    assert con.execute(q).fetchone() == (40, sum(1 for i in range(40) if rec(i)["active"] is False))
    got = con.execute(f"SELECT id, name FROM read_csv('{files[0]}', delim='{delim}', header=true, quote='\"', escape='\"', "
                      f"all_varchar=true) ORDER BY id::INT").fetchall()
    assert [r[1] for r in got] == [rec(i)["name"] for i in range(40)]


# ---------------------------------------------------------------- jsonl


@pytest.mark.parametrize("compression", [None, "gzip"])
def test_jsonl(run_inlet, dest, compression):
    cfg = {"destination": str(dest), "format": "jsonl"}
    if compression:
        cfg["compression"] = compression
    ok(run_inlet(cfg, stream_input()))
    files = data_files(dest, "items")
    assert len(files) == 1
    assert files[0].name.endswith(".jsonl.gz" if compression else ".jsonl")
    assert MAGE_FILE.match(files[0].name)
    rows = sorted(read_jsonl_file(files[0]), key=lambda r: r["id"])
    assert len(rows) == 40
    for i, r in enumerate(rows):
        e = rec(i)
        assert r["id"] == i and r["name"] == e["name"] and r["amount"] == e["amount"]
        assert r["active"] is e["active"]
        assert ts(r["created_at"]) == ts(e["created_at"])
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|\+00:00)", r["created_at"])
        assert r["day"] == e["day"]
        assert r["address"] == e["address"]
        assert r["tags"] == e["tags"]
        blob = r["blob"]
        assert (json.loads(blob) if isinstance(blob, str) else blob) == e["blob"]
        assert r["_sdc_extracted_at"] is None if i % 2 == 0 else ts(r["_sdc_extracted_at"]) == dt.datetime(2024, 5, 1, tzinfo=UTC)
    con = duck()
    got = con.execute(f"SELECT count(*), count(*) FILTER (WHERE active = false), max(address.city) FROM read_json('{files[0]}')").fetchone()
    assert got[0] == 40 and got[1] == sum(1 for i in range(40) if rec(i)["active"] is False)
    assert got[2] == max(rec(i)["address"]["city"] for i in range(40) if rec(i)["address"])


# ---------------------------------------------------------------- mage layout


def test_mage_default_path_shape(run_inlet, dest):
    before = dt.datetime.now(UTC).replace(microsecond=0)
    cfg = {"destination": str(dest), "object_key_path": "/raw/zone/", "date_partition_format": "%Y%m%d"}
    ok(run_inlet(cfg, stream_input(stream="public-items")))
    after = dt.datetime.now(UTC)
    files = data_files(dest)
    assert len(files) == 1
    path = rel(dest, files[0])
    m = re.fullmatch(r"raw/zone/public-items/(\d{8})/(\d{8}-\d{6})-([0-9A-Za-z]+)\.parquet", path)
    assert m, path
    days = {before.strftime("%Y%m%d"), after.strftime("%Y%m%d")}
    assert m.group(1) in days
    stamp = dt.datetime.strptime(m.group(2), "%Y%m%d-%H%M%S").replace(tzinfo=UTC)
    assert before - dt.timedelta(seconds=1) <= stamp <= after, (stamp, before, after)


def test_mage_table_override_and_no_date(run_inlet, dest):
    ok(run_inlet({"destination": str(dest), "table": "my_table"}, stream_input(stream="public-items")))
    files = data_files(dest)
    assert len(files) == 1
    assert re.fullmatch(r"my_table/\d{8}-\d{6}-[0-9A-Za-z]+\.parquet", rel(dest, files[0])), rel(dest, files[0])


def test_mage_aliases_file_type_and_prefix(run_inlet, dest):
    ok(run_inlet({"destination": str(dest), "file_type": "csv", "prefix": "p"}, stream_input()))
    files = data_files(dest)
    assert len(files) == 1 and re.fullmatch(r"p/items/\d{8}-\d{6}-[0-9A-Za-z]+\.csv", rel(dest, files[0])), files


def test_two_flushes_never_overwrite(run_inlet, dest):
    # 1000 rows in batches of 7: ~143 files, most written within the same second
    n = 1000
    proc = ok(run_inlet({"destination": str(dest), "batch_max_rows": 7}, stream_input(n)))
    files = data_files(dest, "items")
    assert len(files) == -(-n // 7), len(files)
    assert len({f.name for f in files}) == len(files)
    for f in files:
        assert MAGE_FILE.match(f.name), f.name
    t = read_parquet_files(files)
    ids = t.column("id").to_pylist()
    assert sorted(ids) == list(range(n))
    assert max(pq.ParquetFile(f).metadata.num_rows for f in files) == 7
    assert duck().execute(f"SELECT count(DISTINCT id) FROM read_parquet('{duck_glob(dest, 'items', 'parquet')}')").fetchone()[0] == n
    assert stdout_states(proc)[-1] == {"bookmarks": {"items": {"replication_key_value": n - 1}}}
    assert_no_temp_files(dest)


def test_second_run_adds_files_next_to_the_first(run_inlet, dest):
    ok(run_inlet({"destination": str(dest)}, stream_input(10)))
    ok(run_inlet({"destination": str(dest)}, stream_input(10, start=10)))
    files = data_files(dest, "items")
    assert len(files) == 2
    assert sorted(read_parquet_files(files).column("id").to_pylist()) == list(range(20))


# ---------------------------------------------------------------- lakexpress layout


def _lx_input(start: int, n: int) -> bytes:
    msgs = []
    for s in ("public-orders", "sales-items", "plain"):
        msgs.append(schema_msg(s, SCHEMA))
    for i in range(start, start + n):
        for s in ("public-orders", "sales-items", "plain"):
            msgs.append(record_msg(s, rec(i)))
    return lines(*msgs, state_msg({"n": start + n}))


def test_lakexpress_layout_and_part_numbers_continue(run_inlet, dest):
    cfg = {"destination": str(dest), "layout": "lakexpress", "sub_path": "exports/v1", "batch_max_rows": 4}
    ok(run_inlet(cfg, _lx_input(0, 10)))  # 3 files per stream: parts 0,1,2
    ok(run_inlet(cfg, _lx_input(10, 5)))  # 2 files per stream: parts 3,4
    for d in ("exports/v1/public/orders", "exports/v1/sales/items", "exports/v1/public/plain"):
        files = data_files(dest, d)
        names = sorted(f.name for f in files)
        assert names == [f"part-{k:05d}.parquet" for k in range(5)], (d, names)
        assert all(f.parent == dest / d for f in files)
        assert sorted(read_parquet_files(files).column("id").to_pylist()) == list(range(15))
    # a part number already there (from another writer) is never reused: numbering goes on after it
    (dest / "exports/v1/public/orders/part-00041.parquet").write_bytes(
        (dest / "exports/v1/public/orders/part-00000.parquet").read_bytes())
    ok(run_inlet(cfg, _lx_input(15, 3)))
    names = sorted(f.name for f in data_files(dest, "exports/v1/public/orders"))
    assert names[-1] == "part-00042.parquet", names
    assert "part-00005.parquet" not in names
    assert set(f.relative_to(dest).parts[0] for f in all_files(dest)) == {"exports"}
    got = duck().execute(
        f"SELECT count(*) FROM read_parquet('{(dest / 'exports/v1/sales/items/*.parquet').as_posix()}')").fetchone()[0]
    assert got == 18
    assert_no_temp_files(dest)


def test_lakexpress_default_schema(run_inlet, dest):
    ok(run_inlet({"destination": str(dest), "layout": "lakexpress", "default_schema": "dbo", "format": "jsonl"},
                 stream_input(5, stream="plain")))
    assert [rel(dest, f) for f in data_files(dest)] == ["dbo/plain/part-00000.jsonl"]


# ---------------------------------------------------------------- partitions and templates


def test_partition_keys_by_value(run_inlet, dest):
    ok(run_inlet({"destination": str(dest), "partition_keys": ["country"], "batch_max_rows": 25}, stream_input(40)))
    files = data_files(dest, "items")
    folders = {}
    for f in files:
        r = rel(dest, f)
        m = re.fullmatch(r"items/country=([^/]+)/\d{8}-\d{6}-[0-9A-Za-z]+\.parquet", r)
        assert m, r
        folders.setdefault(m.group(1), []).append(f)
    assert set(folders) == {"FR", "US", "__HIVE_DEFAULT_PARTITION__", "a%2Fb"}
    # one file per partition per flush (2 flushes: 25 + 15 rows)
    assert all(len(v) == 2 for v in folders.values()), {k: len(v) for k, v in folders.items()}
    for folder, fs in folders.items():
        t = read_parquet_files(fs)
        vals = set(t.column("country").to_pylist()) if "country" in t.column_names else None
        expect = {"FR": {"FR"}, "US": {"US"}, "__HIVE_DEFAULT_PARTITION__": {None}, "a%2Fb": {"a/b"}}[folder]
        if vals is not None:
            assert vals == expect, (folder, vals)
        ids = sorted(t.column("id").to_pylist())
        assert ids == sorted(i for i in range(40) if {rec(i)["country"]} == expect)
    n = duck().execute(
        f"SELECT count(*), count(DISTINCT id) FROM read_parquet('{duck_glob(dest, 'items', 'parquet')}', hive_partitioning=true)"
    ).fetchone()
    assert n == (40, 40)


def test_partition_keys_by_date_parts(run_inlet, dest):
    ok(run_inlet({"destination": str(dest), "partition_keys": ["created_at:year=%Y/month=%m"], "format": "jsonl"},
                 stream_input(40)))
    files = data_files(dest, "items")
    seen = {}
    for f in files:
        m = re.fullmatch(r"items/year=(\d{4})/month=(\d\d)/\d{8}-\d{6}-[0-9A-Za-z]+\.jsonl", rel(dest, f))
        assert m, rel(dest, f)
        for r in read_jsonl_file(f):
            t = ts(r["created_at"])
            assert (t.year, t.month) == (int(m.group(1)), int(m.group(2))), (r["created_at"], rel(dest, f))
            seen[r["id"]] = f
    assert sorted(seen) == list(range(40))
    expect_parts = {(ts(rec(i)["created_at"]).year, ts(rec(i)["created_at"]).month) for i in range(40)}
    assert len(files) == len(expect_parts)


def test_partition_key_missing_column_is_config_error(run_inlet, dest):
    proc = run_inlet({"destination": str(dest), "partition_keys": ["nope"]}, stream_input(3))
    assert proc.returncode == 3, explain(proc)
    assert "nope" in err_text(proc)
    assert data_files(dest) == []


def test_path_template(run_inlet, dest):
    now = dt.datetime.now(UTC)
    tpl = "lake/{schema}/{table}/{date:%Y/%m/%d}/{timestamp}-{uuid}.{ext}"
    ok(run_inlet({"destination": str(dest), "path_template": tpl, "batch_max_rows": 15}, stream_input(40, stream="public-items")))
    files = data_files(dest)
    assert len(files) == 3
    for f in files:
        r = rel(dest, f)
        m = re.fullmatch(r"lake/public/(public-items|items)/(\d{4}/\d\d/\d\d)/\d{8}-\d{6}-[0-9A-Za-z-]+\.parquet", r)
        assert m, r
        assert m.group(2) in {now.strftime("%Y/%m/%d"), dt.datetime.now(UTC).strftime("%Y/%m/%d")}
    assert sorted(read_parquet_files(files).column("id").to_pylist()) == list(range(40))


def test_path_template_with_parts_and_partitions(run_inlet, dest):
    tpl = "{stream}/{partitions}/data-{part}.{ext}"
    cfg = {"destination": str(dest), "path_template": tpl, "partition_keys": ["country"], "format": "csv",
           "batch_max_rows": 20}
    ok(run_inlet(cfg, stream_input(40)))
    paths = sorted(rel(dest, f) for f in data_files(dest))
    for p in paths:
        assert re.fullmatch(r"items/country=[^/]+/data-\d{5}\.csv", p), p
    assert len(paths) == 8
    assert len(set(paths)) == len(paths)
    total = sum(read_csv_file(f).num_rows for f in data_files(dest))
    assert total == 40


@pytest.mark.parametrize("tpl", ["{table}/{timestamp}.{ext}", "{table}/{bogus}-{uuid}.{ext}"])
def test_bad_path_template_is_config_error(run_inlet, dest, tpl):
    proc = run_inlet({"destination": str(dest), "path_template": tpl}, stream_input(3))
    assert proc.returncode == 3, explain(proc)
    assert "path_template" in err_text(proc)


# ---------------------------------------------------------------- metadata columns and header format


def test_metadata_columns_default(run_inlet, dest):
    t0 = dt.datetime.now(UTC) - dt.timedelta(seconds=2)
    ok(run_inlet({"destination": str(dest)}, stream_input(6)))
    t1 = dt.datetime.now(UTC) + dt.timedelta(seconds=2)
    t = read_stream_parquet(dest, "items").sort_by("id")
    for c in ("_inlet_created_at", "_inlet_updated_at"):
        assert t.schema.field(c).type == pa.timestamp("us", tz="UTC")
        assert t.column(c).null_count == 0
        for v in t.column(c).to_pylist():
            assert t0 <= v <= t1, (c, v)
    ext = t.column("_sdc_extracted_at").to_pylist()
    assert ext == [None if i % 2 == 0 else dt.datetime(2024, 5, 1, tzinfo=UTC) for i in range(6)]


def test_metadata_prefix_mage_and_off(run_inlet, dest, tmp_path):
    ok(run_inlet({"destination": str(dest), "metadata_column_prefix": "_mage"}, stream_input(3)))
    names = read_stream_parquet(dest, "items").column_names
    assert "_mage_created_at" in names and "_mage_updated_at" in names and "_inlet_created_at" not in names
    d2 = tmp_path / "off"
    ok(run_inlet({"destination": str(d2), "add_metadata_columns": False}, stream_input(3)))
    names = read_stream_parquet(d2, "items").column_names
    assert sorted(names) == sorted(SCHEMA["properties"])


def test_sdc_extracted_at_from_time_extracted_with_offset(run_inlet, dest):
    schema = {"type": "object", "properties": {"id": {"type": "integer"}}}
    ok(run_inlet({"destination": str(dest)}, lines(
        schema_msg("x", schema),
        record_msg("x", {"id": 1}, time_extracted="2024-06-01T12:00:00+02:00"),
        record_msg("x", {"id": 2}, time_extracted="2024-06-01T12:00:00.5Z"),
        record_msg("x", {"id": 3}))))
    t = read_stream_parquet(dest, "x").sort_by("id")
    assert t.column("_sdc_extracted_at").to_pylist() == [
        dt.datetime(2024, 6, 1, 10, tzinfo=UTC), dt.datetime(2024, 6, 1, 12, 0, 0, 500000, tzinfo=UTC), None]


@pytest.mark.parametrize("fmt", ["parquet", "csv", "jsonl"])
@pytest.mark.parametrize("case", ["lower", "upper"])
def test_column_header_format(run_inlet, dest, fmt, case):
    schema = {"type": "object", "properties": {
        "Id": {"type": "integer"}, "MixedCase": {"type": ["null", "string"]},
        "Nested": {"type": ["null", "object"], "properties": {"InnerKey": {"type": "integer"}}}}}
    ok(run_inlet({"destination": str(dest), "format": fmt, "column_header_format": case},
                 lines(schema_msg("Cased", schema, key_properties=("Id",)),
                       record_msg("Cased", {"Id": 1, "MixedCase": "v", "Nested": {"InnerKey": 2}}))))
    (f,) = data_files(dest)
    conv = str.lower if case == "lower" else str.upper
    expect_top = [conv(c) for c in ["Id", "MixedCase", "Nested", "_inlet_created_at", "_inlet_updated_at", "_sdc_extracted_at"]]
    if fmt == "parquet":
        t = pq.read_table(f)
        assert sorted(t.column_names) == sorted(expect_top)
        row = t.to_pylist()[0]
        assert row[conv("MixedCase")] == "v"
        nested = row[conv("Nested")]
    elif fmt == "csv":
        t = read_csv_file(f)
        assert sorted(t.column_names) == sorted(expect_top)
        row = t.to_pylist()[0]
        nested = json.loads(row[conv("Nested")])
    else:
        (row,) = read_jsonl_file(f)
        assert sorted(row) == sorted(expect_top)
        nested = row[conv("Nested")]
    assert row[conv("MixedCase")] == "v"
    # top-level columns are renamed; nested field names are data and may keep their case
    assert list(nested.values()) == [2]


def test_column_header_collision_is_config_error(run_inlet, dest):
    schema = {"type": "object", "properties": {"name": {"type": "string"}, "NAME": {"type": "string"}, "id": {"type": "integer"}}}
    proc = run_inlet({"destination": str(dest), "column_header_format": "lower"},
                     lines(schema_msg("c", schema), record_msg("c", {"id": 1, "name": "a", "NAME": "b"})))
    assert proc.returncode == 3, explain(proc)
    e = err_text(proc)
    assert "column_header_format" in e and "name" in e.lower()
    assert data_files(dest) == []
    assert proc.stdout == b""


def test_batch_max_bytes_and_mage_mb_alias(run_inlet, dest, tmp_path):
    from inlet_helpers import gen_singer
    data = gen_singer("-n", "12000", "--state-every", "0")  # a few MB of input
    size = len(data)
    ok(run_inlet({"destination": str(dest), "maximum_batch_size_mb": 1}, data))
    files = data_files(dest, "flat")
    expect = -(-size // 1_000_000)
    assert expect - 1 <= len(files) <= expect + 1, (len(files), size)
    assert sorted(read_parquet_files(files).column("id").to_pylist()) == list(range(1, 12001))
    d2 = tmp_path / "bytes"
    ok(run_inlet({"destination": str(d2), "batch_max_bytes": 500_000}, data))
    files = data_files(d2, "flat")
    expect = -(-size // 500_000)
    assert expect - 1 <= len(files) <= expect + 1, (len(files), size)
    assert read_parquet_files(files).num_rows == 12000
