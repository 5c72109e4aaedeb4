"""``inlet.write``: a DataFrame → ``inlet write`` on an Arrow IPC stream."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import tempfile
import threading
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterable, Sequence

import pyarrow as pa

from ._arrow import to_reader
from ._binary import find_inlet
from ._mage import IoConfigError, settings_from_io_config

log = logging.getLogger("inlet")

_EXIT_KINDS = {1: "internal", 2: "usage", 3: "config", 4: "input", 5: "destination"}
_LEVELS = {"TRACE": logging.DEBUG, "DEBUG": logging.DEBUG, "INFO": logging.INFO,
           "WARN": logging.WARNING, "ERROR": logging.ERROR}


class InletError(RuntimeError):
    """inlet refused or failed; the message is inlet's own (what happened and what to do).

    ``kind`` is ``config``, ``input``, ``destination``, ``internal`` or ``usage``
    (from the exit code, ``exit_code``)."""

    def __init__(self, message: str, exit_code: int | None = None):
        super().__init__(message)
        self.message = message
        self.exit_code = exit_code
        self.kind = _EXIT_KINDS.get(exit_code or 0, "config" if exit_code is None else "internal")


@dataclass
class WriteResult:
    """What a write did."""

    table: str
    rows: int
    bytes: int
    #: the Delta table's version after the write (None for plain files)
    version: int | None
    #: files published (plain files) or Delta commits made: dicts of path, rows, bytes
    files: list[dict] = field(default_factory=list)
    seconds: float = 0.0


@lru_cache(maxsize=4)
def _known_settings(exe: str) -> frozenset[str]:
    out = subprocess.run([exe, "load", "--about", "--format", "json"], capture_output=True, text=True, check=True)
    names: set[str] = set()
    for s in json.loads(out.stdout)["settings"]:
        names.add(s["name"])
        names.update(s.get("aliases") or [])
    return frozenset(names)


def _as_list(v: str | Sequence[str] | None) -> list[str]:
    if v is None:
        return []
    if isinstance(v, str):
        return [p.strip() for p in v.split(",") if p.strip()]
    return [str(p) for p in v]


def _settings(exe: str, destination, format, mode, partition_keys, io_config, profile, settings, tmp: Path) -> dict:
    known = _known_settings(exe)
    out: dict[str, Any] = {}
    if io_config is not None:
        try:
            from_io, inline_key = settings_from_io_config(io_config, profile)
        except IoConfigError as e:
            raise InletError(str(e)) from None
        out.update(from_io)
        if inline_key is not None and "google_application_credentials" not in out:
            key_file = tmp / "google-service-account.json"
            key_file.write_text(json.dumps(inline_key))
            out["google_application_credentials"] = str(key_file)
    for k, v in settings.items():
        if k not in known:
            raise TypeError(f"inlet.write() got an unknown setting '{k}'; `inlet load --about` lists them")
        out[k] = v
    if destination is not None:
        out["destination"] = os.fspath(destination) if isinstance(destination, os.PathLike) else destination
    if format is not None:
        out["format"] = format
    if mode == "partition_overwrite":
        out["mode"], out["overwrite_partitions"] = "overwrite", True
    elif mode is not None:
        out["mode"] = mode
    if partition_keys is not None:
        out["partition_keys"] = _as_list(partition_keys)
    return out


class _Stderr(threading.Thread):
    """Forwards inlet's JSON log lines to the ``inlet`` logger; keeps the errors."""

    def __init__(self, pipe):
        super().__init__(daemon=True)
        self.pipe = pipe
        self.errors: list[str] = []
        self.tail: list[str] = []

    def run(self) -> None:
        for raw in self.pipe:
            line = raw.decode("utf-8", "replace").rstrip("\n")
            if not line:
                continue
            try:
                rec = json.loads(line)
                level = str(rec.get("level", "INFO")).upper()
                fields = rec.get("fields") or {}
                msg = fields.get("message", line)
            except (ValueError, AttributeError):
                level, msg = "ERROR", line  # clap's usage errors are plain text
            self.tail = (self.tail + [msg])[-20:]
            if level == "ERROR":
                self.errors.append(msg)
            log.log(_LEVELS.get(level, logging.INFO), "%s", msg)


def write(
    data: Any,
    destination: str | os.PathLike | None = None,
    table: str | None = None,
    format: str | None = None,
    mode: str | None = None,
    key: str | Sequence[str] | None = None,
    partition_keys: str | Sequence[str] | None = None,
    *,
    io_config: str | os.PathLike | None = None,
    profile: str = "default",
    config: str | os.PathLike | Iterable[str | os.PathLike] | None = None,
    schema: pa.Schema | None = None,
    log_level: str = "info",
    **settings: Any,
) -> WriteResult:
    """Writes ``data`` into ``table`` at ``destination``.

    data: a pandas or Polars DataFrame, a pyarrow Table / RecordBatch /
        RecordBatchReader, a DuckDB relation, anything with ``__arrow_c_stream__``,
        or an iterator of any of these (or of RecordBatches) for data bigger than memory.
    destination: a folder, ``s3://bucket/prefix``, ``gs://…``, ``az://container/prefix``
        (or ``abfss://…``); may come from ``config`` or ``io_config`` settings instead.
    table: the table (folder) name; ``schema-table`` also names a schema (LakeXpress layout).
    format: ``parquet`` (default), ``delta``, ``csv`` or ``jsonl``.
    mode: Delta only: ``append`` (default), ``overwrite``, ``partition_overwrite``
        (replace only the partitions in the data) or ``merge`` (upsert on ``key``).
    key: key column(s) for ``merge``.
    partition_keys: Hive partition columns (files: also ``col:%Y/%m`` date parts).
    io_config, profile: take storage credentials from a Mage ``io_config.yaml`` profile.
    config: inlet config file(s) (YAML or JSON), under the arguments given here.
    schema: the schema of an iterator's batches (else the first batch's).
    log_level: what inlet logs to the ``inlet`` logger.
    settings: any other setting of ``inlet load --about`` (``compression``,
        ``aws_endpoint``, ``target_file_size``, …).

    Returns a :class:`WriteResult`; raises :class:`InletError` with inlet's message.
    A Delta append or overwrite is one commit: readers see all of it or none.
    """
    if not table:
        raise TypeError("inlet.write() needs table='name'")
    exe = find_inlet()
    reader = to_reader(data, schema)
    configs = [config] if isinstance(config, (str, os.PathLike)) else list(config or [])
    with tempfile.TemporaryDirectory(prefix="inlet-write-") as tmpdir:
        tmp = Path(tmpdir)
        os.chmod(tmp, 0o700)
        values = _settings(exe, destination, format, mode, partition_keys, io_config, profile, settings, tmp)
        # settings (secrets among them) go in a file only this user can read, not in argv
        cfg_file = tmp / "settings.json"
        fd = os.open(cfg_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump(values, f)
        args = [exe, "write", "--table", table, "--log-format", "json", "--log-level", log_level]
        for c in configs:
            args += ["--config", os.fspath(c)]
        args += ["--config", str(cfg_file)]
        for k in _as_list(key):
            args += ["--key", k]
        return _run(args, reader, table)


def _run(args: list[str], reader: pa.RecordBatchReader, table: str) -> WriteResult:
    proc = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    err = _Stderr(proc.stderr)
    err.start()
    out: list[bytes] = []
    reader_thread = threading.Thread(target=lambda: out.append(proc.stdout.read()), daemon=True)
    reader_thread.start()
    try:
        _send(proc, reader)
    except BaseException:
        # the data failed (a generator raised, Ctrl-C): inlet must not commit what it has
        proc.kill()
        proc.wait()
        raise
    rc = proc.wait()
    reader_thread.join()
    err.join()
    if rc != 0:
        msg = "\n".join(err.errors) or "\n".join(err.tail) or f"inlet exited with code {rc}"
        raise InletError(msg, rc)
    try:
        s = json.loads(out[0].decode().strip().splitlines()[-1])
    except (IndexError, ValueError) as e:
        raise InletError(f"inlet wrote no summary ({e}); this is a bug, please report it", 1) from None
    return WriteResult(table=s["table"], rows=s["rows"], bytes=s["bytes"], version=s.get("version"),
                       files=s.get("files", []), seconds=s.get("seconds", 0.0))


def _send(proc: subprocess.Popen, reader: pa.RecordBatchReader) -> None:
    """Streams `reader` into inlet's stdin. A pipe that breaks means inlet
    stopped reading (it failed, and says why on stderr); an error reading
    `reader` is the caller's and propagates."""
    sink = proc.stdin
    try:
        w = pa.ipc.new_stream(sink, reader.schema)
    except OSError:
        return
    for batch in reader:
        try:
            w.write_batch(batch)
        except OSError:
            return
    try:
        w.close()
        sink.close()
    except OSError:
        pass
