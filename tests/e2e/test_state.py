"""STATE: stdout carries only state values; a STATE goes out only once the files holding
every earlier record exist; SIGKILL mid-run leaves every emitted STATE covered by complete
files; state_file; age-based flushes on a quiet input."""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from inlet_helpers import (GEN_SINGER, all_files, assert_no_temp_files, data_files, explain, gen_singer, lines, ok,
                           read_parquet_files, record_msg, rel, schema_msg, state_msg, stdout_states, ts)


def _start(inlet_bin, child_env, tmp_path, config, stdin):
    cfgf = tmp_path / f"cfg-{time.monotonic_ns()}.json"
    cfgf.write_text(json.dumps(config))
    return subprocess.Popen([str(inlet_bin), "load", "--config", str(cfgf)], stdin=stdin,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=child_env())


def _coverage(dest: Path, streams):
    """Per stream: (ids present, {created_at: id}) over every complete parquet file."""
    out = {}
    for s in streams:
        files = data_files(dest, s, "parquet")
        if not files:
            out[s] = (set(), {})
            continue
        t = read_parquet_files(files)
        ids = t.column("id").to_pylist()
        cats = t.column("created_at").to_pylist()
        out[s] = (set(ids), {c: i for c, i in zip(cats, ids)})
    return out


def _assert_state_covered(dest: Path, state: dict, where: str):
    bms = state.get("bookmarks", {})
    cov = _coverage(dest, list(bms))
    for s, bm in bms.items():
        v = ts(bm["replication_key_value"])
        ids, by_ts = cov[s]
        assert v in by_ts, f"{where}: STATE for {s} at {bm['replication_key_value']} but no file holds that record"
        last_id = by_ts[v]
        missing = set(range(1, last_id + 1)) - ids
        assert not missing, f"{where}: STATE for {s} up to id {last_id} but ids {sorted(missing)[:10]}... are in no file"


def test_stdout_only_states_in_order(run_inlet, dest):
    data = gen_singer("-n", "4000", "-s", "3", "--state-every", "400")
    _, _, states = [None, None, None]
    states = [json.loads(l)["value"] for l in data.splitlines() if b'"STATE"' in l]
    proc = ok(run_inlet({"destination": str(dest), "batch_max_rows": 300}, data, args=("--log-level", "debug")))
    out = stdout_states(proc)
    assert out, "no STATE on stdout"
    assert out[-1] == states[-1]
    idx = [states.index(s) for s in out]
    assert idx == sorted(idx) and len(set(idx)) == len(idx), "STATE lines out of order or repeated"
    # stdout holds compact JSON values, one per line, nothing else
    for line in proc.stdout.decode().splitlines():
        assert json.loads(line) == json.loads(json.dumps(json.loads(line)))
        assert not line.startswith("{\"type\"")
    _assert_state_covered(dest, out[-1], "end")


def test_state_before_schema_and_state_only_input(run_inlet, dest):
    proc = ok(run_inlet({"destination": str(dest)}, lines(state_msg({"bookmarks": {"x": {"v": 1}}}))))
    assert stdout_states(proc) == [{"bookmarks": {"x": {"v": 1}}}]
    assert data_files(dest) == []


def test_empty_input_and_missing_final_newline(run_inlet, dest, tmp_path):
    proc = ok(run_inlet({"destination": str(dest)}, b""))
    assert proc.stdout == b"" and data_files(dest) == []
    schema = {"type": "object", "properties": {"id": {"type": "integer"}}}
    data = lines(schema_msg("s", schema), record_msg("s", {"id": 1}), state_msg({"last": True}))[:-1]
    proc = ok(run_inlet({"destination": str(dest)}, data))
    assert stdout_states(proc) == [{"last": True}]
    assert read_parquet_files(data_files(dest, "s")).column("id").to_pylist() == [1]


def test_state_file_written(run_inlet, dest, tmp_path):
    sf = tmp_path / "state" / "state.json"
    sf.parent.mkdir()
    data = gen_singer("-n", "500", "--state-every", "100")
    proc = ok(run_inlet({"destination": str(dest), "state_file": str(sf), "batch_max_rows": 100}, data))
    out = stdout_states(proc)
    assert json.loads(sf.read_text()) == out[-1]
    assert [p.name for p in sf.parent.iterdir()] == ["state.json"], "temp state files left behind"


def test_state_file_unwritable_is_reported(run_inlet, dest, tmp_path):
    blocker = tmp_path / "afile"
    blocker.write_text("x")
    data = gen_singer("-n", "10")
    proc = run_inlet({"destination": str(dest), "state_file": str(blocker / "state.json")}, data)
    assert proc.returncode != 0, explain(proc)
    assert "state_file" in proc.stderr.decode()


def test_state_waits_for_every_stream(inlet_bin, child_env, tmp_path, dest):
    """Live: each STATE line, the moment it is read, is covered by files for every stream."""
    gen = subprocess.Popen([sys.executable, str(GEN_SINGER), "-n", "24000", "-s", "3", "--state-every", "1000"],
                           stdout=subprocess.PIPE)
    p = _start(inlet_bin, child_env, tmp_path, {"destination": str(dest), "batch_max_rows": 700}, gen.stdout)
    gen.stdout.close()
    seen = 0
    for line in p.stdout:
        state = json.loads(line)
        _assert_state_covered(dest, state, f"STATE #{seen + 1} (live)")
        seen += 1
    rc = p.wait(timeout=120)
    gen.wait(timeout=30)
    assert rc == 0, p.stderr.read().decode()[-3000:]
    assert seen >= 10
    assert_no_temp_files(dest)


@pytest.mark.parametrize("delay", [0.0, 0.03, 0.2])
def test_sigkill_mid_run_every_emitted_state_is_covered(inlet_bin, child_env, tmp_path, dest, delay):
    gen = subprocess.Popen([sys.executable, str(GEN_SINGER), "-n", "3000000", "-s", "2", "-p", "nested",
                            "--state-every", "400"], stdout=subprocess.PIPE)
    sf = tmp_path / "state.json"
    p = _start(inlet_bin, child_env, tmp_path,
               {"destination": str(dest), "batch_max_rows": 500, "state_file": str(sf), "compression": "zstd"},
               gen.stdout)
    gen.stdout.close()
    states = []
    deadline = time.monotonic() + 60
    try:
        while len(states) < 8 and time.monotonic() < deadline:
            r, _, _ = select.select([p.stdout], [], [], 1.0)
            if r:
                line = p.stdout.readline()
                if not line:
                    break
                states.append(json.loads(line))
        time.sleep(delay)
        assert p.poll() is None, "inlet finished before it could be killed; make the input larger"
        os.kill(p.pid, signal.SIGKILL)
        rest, _ = p.communicate(timeout=30)
    finally:
        if p.poll() is None:
            p.kill()
        gen.kill()
        gen.wait()
    states += [json.loads(l) for l in rest.splitlines() if l.strip()]
    assert p.returncode == -signal.SIGKILL
    assert len(states) >= 8, f"only {len(states)} STATE lines before the kill"
    # every final-name file is complete and readable
    for f in all_files(dest):
        if f.name.endswith(".parquet"):
            pq.read_metadata(f)  # raises on a truncated file
    for i, st in enumerate(states):
        _assert_state_covered(dest, st, f"STATE #{i + 1} of {len(states)} (after SIGKILL)")
    # the state file is whole JSON and one of the emitted states (the newest, or being replaced by it)
    assert json.loads(sf.read_text()) in states[-2:]


def test_age_flush_while_the_tap_is_quiet(inlet_bin, child_env, tmp_path, dest):
    """A slow tap: records then silence. batch_max_age_seconds flushes them and the STATE goes out
    before the input ends."""
    p = _start(inlet_bin, child_env, tmp_path, {"destination": str(dest), "batch_max_age_seconds": 1}, subprocess.PIPE)
    schema = {"type": "object", "properties": {"id": {"type": "integer"}}}
    try:
        p.stdin.write(lines(schema_msg("slow", schema), record_msg("slow", {"id": 1}), record_msg("slow", {"id": 2}),
                            state_msg({"at": 2})))
        p.stdin.flush()
        r, _, _ = select.select([p.stdout], [], [], 8.0)
        assert r, "no STATE within 8 s although batch_max_age_seconds is 1 and the input is idle"
        assert json.loads(p.stdout.readline()) == {"at": 2}
        assert sorted(read_parquet_files(data_files(dest, "slow")).column("id").to_pylist()) == [1, 2]
        p.stdin.write(lines(record_msg("slow", {"id": 3}), state_msg({"at": 3})))
        p.stdin.close()
        p.stdin = None
        out, err = p.communicate(timeout=30)
    finally:
        if p.poll() is None:
            p.kill()
    assert p.returncode == 0, err.decode()[-2000:]
    assert [json.loads(l) for l in out.splitlines()] == [{"at": 3}]
    assert sorted(read_parquet_files(data_files(dest, "slow")).column("id").to_pylist()) == [1, 2, 3]
