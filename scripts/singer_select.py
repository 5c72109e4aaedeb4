#!/usr/bin/env python3
"""Mark streams of a Singer catalog as selected, with a replication method.

    singer_select.py CATALOG_IN CATALOG_OUT [--method FULL_TABLE|INCREMENTAL]
                     [--replication-key COLUMN] [--streams ID,ID,...]

Sets, on each chosen stream's top-level metadata (breadcrumb []), `selected: true`,
`replication-method` and (INCREMENTAL) `replication-key`; the stream-level
`replication_method`/`replication_key` fields are set too (older taps read those). Fields are
all selected (`selected: true` on every property breadcrumb). Streams not chosen are deselected.
Streams are matched by tap_stream_id or by stream name. Standard library only.
"""
import argparse
import json
import sys


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("catalog_in")
    ap.add_argument("catalog_out")
    ap.add_argument("--method", default="FULL_TABLE", choices=["FULL_TABLE", "INCREMENTAL"])
    ap.add_argument("--replication-key")
    ap.add_argument("--streams", help="comma-separated tap_stream_ids or stream names (default: all)")
    a = ap.parse_args()
    if a.method == "INCREMENTAL" and not a.replication_key:
        ap.error("INCREMENTAL needs --replication-key")

    with open(a.catalog_in) as f:
        catalog = json.load(f)
    wanted = set(a.streams.split(",")) if a.streams else None
    chosen = 0
    for s in catalog["streams"]:
        on = wanted is None or s.get("tap_stream_id") in wanted or s.get("stream") in wanted
        chosen += on
        top = None
        for m in s.setdefault("metadata", []):
            if m.get("breadcrumb") == []:
                top = m["metadata"]
            else:
                m.setdefault("metadata", {})["selected"] = on
        if top is None:
            top = {}
            s["metadata"].append({"breadcrumb": [], "metadata": top})
        top["selected"] = on
        if on:
            top["replication-method"] = a.method
            s["replication_method"] = a.method
            if a.method == "INCREMENTAL":
                top["replication-key"] = a.replication_key
                s["replication_key"] = a.replication_key
            else:
                top.pop("replication-key", None)
                s.pop("replication_key", None)
    if wanted is not None and chosen != len(wanted):
        print(f"singer_select: only {chosen} of {len(wanted)} streams found", file=sys.stderr)
        return 1
    with open(a.catalog_out, "w") as f:
        json.dump(catalog, f, indent=2, sort_keys=False)
        f.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
