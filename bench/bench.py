#!/usr/bin/env python3
"""Benchmark `inlet load` against a DuckDB reference on the same Singer files.

This is a script, not a test. Usually run through `bash bench/run.sh`, which
picks the Python venv; see BENCHMARKS.md for what is measured and how.

  bench.py                       # flat 1M + nested 100k, 3 interleaved runs, parquet
  bench.py --quick               # flat 100k + nested 20k (for trying the script out)
  bench.py --big                 # also flat 5M, and report inlet's RSS 5M vs 1M
  bench.py --formats parquet,csv,jsonl --runs 5 --out BENCHMARKS.md

Engines (each one is its own process, timed with `/usr/bin/time -v`):
  inlet-FORMAT   INLET_BIN load --config CFG --input FILE
                 CFG = {"destination": OUT, "format": FORMAT, "validate_records": true}
  duckdb-singer  DUCKDB_CLI -init /dev/null -bail -list -noheader -c SQL  (the DuckDB CLI binary,
                 in-memory database; SQL on the Singer envelope:
                 SET threads = N; COPY (SELECT unnest(record) FROM read_json(FILE,
                 format = 'newline_delimited') WHERE type = 'RECORD')
                 TO OUT/<dataset>.parquet (FORMAT parquet, COMPRESSION snappy);)
                 DUCKDB_CLI = --duckdb-cli PATH, else $DUCKDB_CLI, else the `duckdb` next to
                 this Python (pip install duckdb-cli into the venv; when that is pip's Python
                 wrapper script, the binary it wraps, so no interpreter start is timed).
                 Until this changed it was a Python process running `import duckdb` and the
                 same SQL, whose wall included ~0.24 s of interpreter start and import.

Correctness per run: rows read back with pyarrow == RECORD count of the input,
and (inlet only) the last line inlet printed on stdout == the value of the
last STATE message of the input.

Needs: python >= 3.8 with pyarrow (for reading outputs back), the DuckDB CLI
(PyPI package duckdb-cli, for the reference), GNU time at /usr/bin/time.
Never builds inlet.
"""
import argparse
import json
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
HOME = os.path.expanduser('~')
GNU_TIME = '/usr/bin/time'
SEED = 42
MARK_START = '<!-- bench:results:start -->'
MARK_END = '<!-- bench:results:end -->'
FORMATS = ('parquet', 'csv', 'jsonl')
DUCKDB = 'duckdb-singer'


# --------------------------------------------------------------------------
# DuckDB reference (the DuckDB CLI binary in its own process, see run_duckdb)
# --------------------------------------------------------------------------

def sql_str(s):
    return "'" + s.replace("'", "''") + "'"


def ref_duckdb_sql(inp, out, threads):
    """What peer_results.md calls `ref-duckdb-singer`: the Singer envelope read
    with read_json, RECORD lines kept, `record` unnested into columns, typed
    snappy Parquet written. The CLI prints nothing for COPY: rows are counted
    by reading the output back, as for inlet."""
    return ("SET threads = %d; "
            "COPY (SELECT unnest(record) FROM read_json(%s, format = 'newline_delimited') "
            "WHERE type = 'RECORD') TO %s (FORMAT parquet, COMPRESSION snappy);"
            % (int(threads), sql_str(inp), sql_str(out)))


def is_script(path):
    try:
        with open(path, 'rb') as f:
            return f.read(2) == b'#!'
    except OSError:
        return False


def find_duckdb_cli(explicit):
    """The DuckDB CLI executable: --duckdb-cli, else $DUCKDB_CLI (both taken as
    given), else `duckdb` next to this Python. pip's duckdb-cli installs there a
    Python wrapper script that runs the binary bundled in the package
    (site-packages/duckdb_cli/duckdb) as a child process; timing that would time
    an interpreter start again, so the bundled binary is used instead."""
    given = explicit or os.environ.get('DUCKDB_CLI')
    if given:
        path = os.path.abspath(os.path.expanduser(given))
        if not (os.path.isfile(path) and os.access(path, os.X_OK)):
            die('DuckDB CLI not found or not executable: %s (from %s)'
                % (path, '--duckdb-cli' if explicit else '$DUCKDB_CLI'))
        if is_script(path):
            log('bench: note: %s is a script, not the DuckDB binary: its start-up is timed too' % path)
        return path
    path = os.path.join(os.path.dirname(sys.executable), 'duckdb')
    if os.path.isfile(path) and is_script(path):
        import importlib.util
        spec = importlib.util.find_spec('duckdb_cli')  # locates the package, runs none of it
        if spec and spec.origin:
            inner = os.path.join(os.path.dirname(spec.origin), 'duckdb')
            if os.path.isfile(inner) and os.access(inner, os.X_OK) and not is_script(inner):
                return inner
    if os.path.isfile(path) and os.access(path, os.X_OK):
        return path
    die('DuckDB CLI not found: no executable %s\n'
        '  install it into this venv: %s -m pip install duckdb-cli==1.5.6  (scripts/test-env.sh does),\n'
        '  or point to a duckdb binary with --duckdb-cli PATH / DUCKDB_CLI=PATH;\n'
        '  use --engines inlet to run without the reference.' % (path, sys.executable))


def duckdb_cli_version(cli):
    try:
        p = subprocess.run([cli, '--version'], capture_output=True, timeout=30)
        out = p.stdout.decode(errors='replace').strip()
        return 'duckdb-cli %s' % out.split()[0] if p.returncode == 0 and out else 'duckdb --version failed'
    except (OSError, subprocess.TimeoutExpired) as e:
        return 'duckdb --version failed: %s' % e


# --------------------------------------------------------------------------
# datasets
# --------------------------------------------------------------------------

def dataset_plan(a):
    """[(name, profile, records, role)]; role 'base'/'big' pairs the memory-scaling check."""
    if a.quick:
        plan = [('flat_100k', 'flat', 100000, 'base'), ('nested_20k', 'nested', 20000, None)]
        big = ('flat_500k', 'flat', 500000, 'big')
    else:
        plan = [('flat_1m', 'flat', 1000000, 'base'), ('nested_100k', 'nested', 100000, None)]
        big = ('flat_5m', 'flat', 5000000, 'big')
    if a.big:
        plan.append(big)
    return plan


def find_generator(explicit):
    cands = [explicit, os.environ.get('INLET_BENCH_GEN'),
             os.path.join(REPO, '..', 'shared', 'bench', 'gen_singer.py'),
             '/work/shared/bench/gen_singer.py']
    for c in cands:
        if c and os.path.isfile(c):
            return os.path.abspath(c)
    die('gen_singer.py not found (looked for --gen, $INLET_BENCH_GEN, ../shared/bench/gen_singer.py '
        'next to the repo, /work/shared/bench/gen_singer.py)')


def scan_singer(path):
    """RECORD count and the `value` of the last STATE message of a Singer file."""
    records = 0
    last_state = None
    with open(path, 'rb') as f:
        for line in f:
            head = line[:64]
            if b'"RECORD"' in head:
                records += 1
            elif b'"STATE"' in head:
                last_state = line
    state = json.loads(last_state)['value'] if last_state is not None else None
    return records, state


def ensure_dataset(data_dir, gen, name, profile, n):
    """Generate `<name>.seed42.singer.jsonl` once; later runs reuse the file.
    Metadata (record count, last STATE) is cached beside it, keyed by size+mtime."""
    path = os.path.join(data_dir, '%s.seed%d.singer.jsonl' % (name, SEED))
    meta_path = path + '.meta.json'
    if not os.path.exists(path):
        os.makedirs(data_dir, exist_ok=True)
        tmp = path + '.tmp-%d' % os.getpid()
        log('generating %s (%d %s records) ...' % (path, n, profile))
        t0 = time.time()
        try:
            with open(tmp, 'wb') as f:
                subprocess.run([sys.executable, gen, '-n', str(n), '-p', profile, '--seed', str(SEED)],
                               stdout=f, check=True)
            os.replace(tmp, path)
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise
        log('  done in %.1f s' % (time.time() - t0))
    st = os.stat(path)
    key = {'size': st.st_size, 'mtime_ns': st.st_mtime_ns}
    meta = None
    if os.path.exists(meta_path):
        try:
            with open(meta_path) as f:
                meta = json.load(f)
            if meta.get('key') != key:
                meta = None
        except (OSError, ValueError):
            meta = None
    if meta is None:
        records, state = scan_singer(path)
        meta = {'key': key, 'records': records, 'last_state': state}
        with open(meta_path, 'w') as f:
            json.dump(meta, f)
    if meta['records'] != n:
        die('%s holds %d RECORD lines, expected %d: delete it and run again' % (path, meta['records'], n))
    return {'name': name, 'profile': profile, 'path': path, 'bytes': st.st_size,
            'records': meta['records'], 'last_state': meta['last_state']}


def warm_page_cache(path):
    with open(path, 'rb') as f:
        while f.read(1 << 23):
            pass


# --------------------------------------------------------------------------
# running one process under /usr/bin/time -v
# --------------------------------------------------------------------------

def parse_gnu_time(text):
    r = {}
    for line in text.splitlines():
        k, sep, v = line.strip().rpartition(': ')
        if not sep:
            continue
        if k.startswith('Elapsed (wall clock) time'):
            parts = [float(p) for p in v.split(':')]
            secs = 0.0
            for p in parts:
                secs = secs * 60 + p
            r['wall'] = secs
        elif k == 'Maximum resident set size (kbytes)':
            r['rss_kb'] = int(v)
        elif k == 'User time (seconds)':
            r['user'] = float(v)
        elif k == 'System time (seconds)':
            r['sys'] = float(v)
        elif k == 'Exit status':
            r['exit'] = int(v)
    return r


def timed_run(cmd, run_dir, timeout, env=None):
    """Run cmd under GNU time; stdout/stderr go to files in run_dir."""
    tfile = os.path.join(run_dir, 'time.txt')
    out_p = os.path.join(run_dir, 'stdout.txt')
    err_p = os.path.join(run_dir, 'stderr.txt')
    # write back what earlier runs left in the page cache now, so that no run
    # pays for the disk writes of the one before it (both engines alike)
    os.sync()
    load1 = os.getloadavg()[0]
    t0 = time.perf_counter()
    with open(out_p, 'wb') as out, open(err_p, 'wb') as err:
        p = subprocess.Popen([GNU_TIME, '-v', '-o', tfile] + cmd, stdout=out, stderr=err,
                             stdin=subprocess.DEVNULL, env=env, start_new_session=True)
        timed_out = False
        try:
            rc = p.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            timed_out = True
            os.killpg(p.pid, signal.SIGKILL)  # our own process group only
            rc = p.wait()
    py_wall = time.perf_counter() - t0
    r = {'rc': rc, 'py_wall': py_wall, 'load1': load1, 'timed_out': timed_out}
    try:
        with open(tfile) as f:
            r.update(parse_gnu_time(f.read()))
    except OSError:
        pass
    r.setdefault('wall', py_wall)
    with open(out_p, 'rb') as f:
        r['stdout'] = f.read()
    with open(err_p, 'rb') as f:
        r['stderr'] = f.read()
    return r


def stderr_tail(b, n=5):
    lines = [l for l in b.decode('utf-8', 'replace').splitlines()
             if l.strip() and not l.startswith('\tCommand being timed')]
    return ' | '.join(lines[-n:])[-600:]


# --------------------------------------------------------------------------
# reading outputs back
# --------------------------------------------------------------------------

EXTS = {'parquet': ('.parquet',), 'csv': ('.csv', '.csv.gz'), 'jsonl': ('.jsonl', '.jsonl.gz')}


def output_files(root, fmt):
    found = []
    for d, dirs, files in os.walk(root):
        dirs[:] = [x for x in dirs if not x.startswith(('.', '_'))]  # _rejected/, hidden temp dirs
        for fn in files:
            if fn.startswith(('.', '_')):
                continue
            if fn.endswith(EXTS[fmt]):
                found.append(os.path.join(d, fn))
    return sorted(found)


def count_rows(files, fmt):
    if fmt == 'parquet':
        import pyarrow.parquet as pq
        return sum(pq.ParquetFile(f).metadata.num_rows for f in files)
    if fmt == 'csv':
        import pyarrow.csv as pcsv
        parse = pcsv.ParseOptions(newlines_in_values=True)
        return sum(pcsv.read_csv(f, parse_options=parse).num_rows for f in files)
    import pyarrow.json as pjson
    return sum(pjson.read_json(f).num_rows for f in files)


def check_output(out_dir, fmt, ds):
    files = output_files(out_dir, fmt)
    size = sum(os.path.getsize(f) for f in files)
    try:
        rows = count_rows(files, fmt)
        err = None
    except Exception as e:  # a bad file is a result, not a crash of the bench
        rows, err = None, '%s: %s' % (type(e).__name__, str(e)[:200])
    return {'files': len(files), 'out_bytes': size, 'rows': rows, 'read_error': err,
            'rows_ok': rows == ds['records']}


def check_final_state(stdout, ds):
    lines = [l for l in stdout.decode('utf-8', 'replace').splitlines() if l.strip()]
    if not lines:
        return 'missing'
    try:
        return 'ok' if json.loads(lines[-1]) == ds['last_state'] else 'WRONG'
    except ValueError:
        return 'not JSON'


# --------------------------------------------------------------------------
# engines
# --------------------------------------------------------------------------

def run_inlet(a, fmt, ds, run_dir):
    out_dir = os.path.join(run_dir, 'out')
    os.makedirs(out_dir)
    cfg = os.path.join(run_dir, 'config.json')
    with open(cfg, 'w') as f:
        json.dump({'destination': out_dir, 'format': fmt, 'validate_records': True}, f)
    r = timed_run([a.inlet, 'load', '--config', cfg, '--input', ds['path']], run_dir, a.timeout)
    r.update(check_output(out_dir, fmt, ds))
    r['state'] = check_final_state(r['stdout'], ds)
    r['correct'] = r['rc'] == 0 and r['rows_ok'] and r['state'] == 'ok'
    return r


def run_duckdb(a, ds, run_dir):
    out_dir = os.path.join(run_dir, 'out')
    os.makedirs(out_dir)
    out = os.path.join(out_dir, ds['name'] + '.parquet')
    # -init /dev/null: no ~/.duckdbrc; -bail: stop at the first error (exit code 1)
    cmd = [a.duckdb_cli, '-init', '/dev/null', '-bail', '-list', '-noheader',
           '-c', ref_duckdb_sql(ds['path'], out, a.duckdb_threads)]
    r = timed_run(cmd, run_dir, a.timeout)
    r.update(check_output(out_dir, 'parquet', ds))
    r['state'] = 'n/a'
    r['correct'] = r['rc'] == 0 and r['rows_ok']
    return r


# --------------------------------------------------------------------------
# summary
# --------------------------------------------------------------------------

def fmt_num(x, nd=0):
    if x is None:
        return '-'
    if nd == 0:
        return '%d' % round(x)
    return '%.*f' % (nd, x)


def fmt_wall(x):
    return '%.3g' % x if x < 100 else '%.0f' % x


def summarize(engine, ds, runs):
    ok = [r for r in runs if r['rc'] == 0]
    use = ok or runs
    wall = statistics.median(r['wall'] for r in use)
    cpu = statistics.median(r.get('user', 0) + r.get('sys', 0) for r in use)
    rss = max(r.get('rss_kb', 0) for r in use) / 1024.0
    s = {'engine': engine, 'dataset': ds['name'], 'n': len(runs), 'ok': len(ok),
         'wall': wall, 'wall_min': min(r['wall'] for r in use), 'cpu': cpu, 'rss_mb': rss,
         'records_s': ds['records'] / wall if ok and wall > 0 else None,
         'records_cpu_s': ds['records'] / cpu if ok and cpu > 0 else None,
         'mb_s': ds['bytes'] / 1e6 / wall if ok and wall > 0 else None,
         'out_mb': statistics.median(r['out_bytes'] for r in use) / 1e6,
         'load1': statistics.median(r['load1'] for r in runs),
         'walls': [r['wall'] for r in runs]}
    rows = sorted({r['rows'] for r in runs}, key=lambda x: -1 if x is None else x)
    s['rows'] = ', '.join('-' if x is None else str(x) for x in rows)
    bad = [r for r in runs if not r['correct']]
    if not bad:
        s['correct'] = 'yes'
    else:
        why = []
        for r in bad:
            if r['timed_out']:
                why.append('timeout')
            elif r['rc'] != 0:
                why.append('rc=%d' % r['rc'])
            elif r['read_error']:
                why.append('unreadable')
            elif not r['rows_ok']:
                why.append('rows')
            else:
                why.append('state ' + r['state'])
        s['correct'] = 'NO (%d/%d: %s)' % (len(bad), len(runs), ', '.join(sorted(set(why))))
    states = sorted({r['state'] for r in runs})
    s['state'] = '/'.join(states)
    return s


COLS = [('engine', 'engine'), ('dataset', 'dataset'), ('n', 'n'), ('ok', 'ok'),
        ('wall s median (min)', None), ('records/s', None), ('input MB/s', None),
        ('peak RSS MB', None), ('CPU s', None), ('records/CPU-s', None), ('output MB', None), ('rows read back', 'rows'),
        ('correct', 'correct'), ('final STATE', 'state'), ('load1', None)]


def row_cells(s):
    cells = []
    for title, key in COLS:
        if key:
            cells.append(str(s[key]))
        elif title.startswith('wall'):
            cells.append('%s (%s)' % (fmt_wall(s['wall']), fmt_wall(s['wall_min'])))
        elif title == 'records/s':
            cells.append(fmt_num(s['records_s']))
        elif title == 'input MB/s':
            cells.append(fmt_num(s['mb_s'], 1))
        elif title == 'peak RSS MB':
            cells.append(fmt_num(s['rss_mb']))
        elif title == 'CPU s':
            cells.append(fmt_num(s['cpu'], 2))
        elif title == 'records/CPU-s':
            cells.append(fmt_num(s['records_cpu_s']))
        elif title == 'output MB':
            cells.append(fmt_num(s['out_mb'], 1))
        elif title == 'load1':
            cells.append(fmt_num(s['load1'], 1))
    return cells


def ratio_rows(summaries, datasets):
    rows = []
    by = {(s['engine'], s['dataset']): s for s in summaries}
    for ds in datasets:
        ref = by.get((DUCKDB, ds['name']))
        for s in summaries:
            if s['dataset'] != ds['name'] or not s['engine'].startswith('inlet-'):
                continue
            ratio = (s['records_s'] / ref['records_s']) if ref and ref['records_s'] and s['records_s'] else None
            rows.append([ds['name'], s['engine'], fmt_num(s['records_s']),
                         fmt_num(ref['records_s'] if ref else None),
                         '-' if ratio is None else '%.2fx' % ratio])
    return rows


def rss_rows(summaries, datasets, engines):
    base = [d for d in datasets if d['role'] == 'base']
    big = [d for d in datasets if d['role'] == 'big']
    if not base or not big:
        return []
    base, big = base[0], big[0]
    by = {(s['engine'], s['dataset']): s for s in summaries}
    rows = []
    for eng in engines:
        a_, b_ = by.get((eng, base['name'])), by.get((eng, big['name']))
        if not a_ or not b_:
            continue
        ratio = b_['rss_mb'] / a_['rss_mb'] if a_['rss_mb'] else None
        rows.append([eng, fmt_num(a_['rss_mb']), fmt_num(b_['rss_mb']),
                     '-' if ratio is None else '%.2f' % ratio])
    return rows, base['name'], big['name']


def text_table(header, rows):
    w = [max(len(str(x)) for x in col) for col in zip(header, *rows)]
    line = lambda r: '  '.join(str(x).ljust(w[i]) for i, x in enumerate(r)).rstrip()
    return '\n'.join([line(header), line(['-' * x for x in w])] + [line(r) for r in rows])


def md_table(header, rows):
    out = ['| ' + ' | '.join(header) + ' |', '|' + '---|' * len(header)]
    out += ['| ' + ' | '.join(str(x) for x in r) + ' |' for r in rows]
    return '\n'.join(out)


def render(summaries, datasets, env, md):
    tbl = md_table if md else text_table
    parts = []
    if md:
        parts.append('Measured %s on %s. %s.' % (env['date'], env['machine'], env['versions']))
        parts.append('Command: `%s`' % env['command'])
        parts.append('Datasets (`gen_singer.py --seed %d`, 1 stream, STATE every 10k records): %s'
                     % (SEED, '; '.join('`%s` %d records, %.1f MB' % (d['name'], d['records'], d['bytes'] / 1e6)
                                        for d in datasets)))
    parts.append(tbl([t for t, _ in COLS], [row_cells(s) for s in summaries]))
    rr = ratio_rows(summaries, datasets)
    if rr:
        parts.append(('### ' if md else '') + 'inlet / duckdb-singer, records per second (median wall)')
        parts.append(tbl(['dataset', 'engine', 'inlet records/s', 'duckdb records/s', 'ratio'], rr))
    engines = []
    for s in summaries:
        if s['engine'] not in engines:
            engines.append(s['engine'])
    rs = rss_rows(summaries, datasets, engines)
    if rs and rs[0]:
        rows, bn, gn = rs
        parts.append(('### ' if md else '') + 'Memory scaling: peak RSS %s vs %s' % (gn, bn))
        parts.append(tbl(['engine', '%s RSS MB' % bn, '%s RSS MB' % gn, 'ratio'], rows))
    parts.append('Per-run wall s: ' + '; '.join(
        '%s/%s: %s' % (s['engine'], s['dataset'], ', '.join('%.2f' % w for w in s['walls'])) for s in summaries))
    parts.append('wall = `/usr/bin/time -v` elapsed of the whole process; records/s and MB/s (input bytes, 1 MB = 10^6 B) '
                 'from the median wall of the runs that exited 0; peak RSS MB = largest `Maximum resident set size` '
                 'of those runs (MiB); CPU s = median user+sys (records/CPU-s is steadier than records/s '
                 'when other work shares the machine); load1 = median 1-minute load average before the runs '
                 '(%d cores).' % (os.cpu_count() or 0))
    return '\n\n'.join(parts) + '\n'


def write_markdown(path, body):
    block = MARK_START + '\n\n' + body + '\n' + MARK_END
    text = None
    if os.path.exists(path):
        with open(path) as f:
            text = f.read()
    if text and MARK_START in text and MARK_END in text:
        pre, rest = text.split(MARK_START, 1)
        _, post = rest.split(MARK_END, 1)
        text = pre + block + post
    else:
        text = '# inlet benchmark results\n\n' + block + '\n'
    tmp = path + '.tmp'
    with open(tmp, 'w') as f:
        f.write(text)
    os.replace(tmp, path)


# --------------------------------------------------------------------------
# main
# --------------------------------------------------------------------------

def log(msg):
    print(msg, file=sys.stderr, flush=True)


def die(msg, code=2):
    log('bench: error: ' + msg)
    sys.exit(code)


def default_inlet():
    if os.environ.get('INLET_BIN'):
        return os.environ['INLET_BIN']
    target = os.environ.get('CARGO_TARGET_DIR') or os.path.join(HOME, '.cache', 'inlet', 'target')
    return os.path.join(target, 'release', 'inlet')


def tool_versions(a, want_inlet, want_duckdb):
    v = ['python %s' % platform.python_version()]
    if want_duckdb:
        v.append(duckdb_cli_version(a.duckdb_cli))
    try:
        import pyarrow
        v.append('pyarrow %s' % pyarrow.__version__)
    except ImportError:
        pass
    if want_inlet:
        try:
            p = subprocess.run([a.inlet, '--version'], capture_output=True, timeout=30)
            v.insert(0, (p.stdout.decode(errors='replace').strip() or 'inlet (no --version output)'))
        except (OSError, subprocess.TimeoutExpired) as e:
            v.insert(0, 'inlet --version failed: %s' % e)
    try:
        g = subprocess.run(['git', '-C', REPO, 'rev-parse', '--short', 'HEAD'], capture_output=True, timeout=10)
        if g.returncode == 0:
            v.insert(0, 'inlet commit %s' % g.stdout.decode().strip())
    except (OSError, subprocess.TimeoutExpired):
        pass
    return ', '.join(v)


def machine():
    mem = ''
    try:
        with open('/proc/meminfo') as f:
            kb = int(f.readline().split()[1])
        mem = ', %.0f GiB' % (kb / 1048576.0)
    except (OSError, ValueError, IndexError):
        pass
    return '%s, %d cores%s' % (platform.machine(), os.cpu_count() or 0, mem)


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--runs', type=int, default=3, help='runs per engine and dataset, interleaved (default 3)')
    ap.add_argument('--quick', action='store_true', help='small datasets: flat 100k, nested 20k (big: flat 500k)')
    ap.add_argument('--big', action='store_true', help='add flat 5M and report the RSS ratio 5M vs 1M')
    ap.add_argument('--formats', default='parquet', help='inlet output formats, comma list of parquet,csv,jsonl')
    ap.add_argument('--engines', default='inlet,duckdb', help='comma list of inlet,duckdb (default both)')
    ap.add_argument('--inlet', default=default_inlet(),
                    help='inlet binary (default $INLET_BIN, else $CARGO_TARGET_DIR/release/inlet, '
                         'CARGO_TARGET_DIR defaulting to ~/.cache/inlet/target)')
    ap.add_argument('--data-dir', default=os.environ.get('INLET_BENCH_DATA')
                    or os.path.join(HOME, '.cache', 'inlet', 'bench-data'),
                    help='dataset cache (default $INLET_BENCH_DATA or ~/.cache/inlet/bench-data)')
    ap.add_argument('--work-dir', default=None,
                    help='where run outputs go (default: a temp dir inside the data dir, removed at the end)')
    ap.add_argument('--keep-outputs', action='store_true', help='keep every run\'s output folder')
    ap.add_argument('--gen', default=None, help='path of gen_singer.py (default: shared/bench/gen_singer.py)')
    ap.add_argument('--duckdb-threads', type=int, default=os.cpu_count() or 2,
                    help='DuckDB threads for the reference (default: cores)')
    ap.add_argument('--duckdb-cli', default=None,
                    help='DuckDB CLI binary for the reference (default $DUCKDB_CLI, else the duckdb '
                         'of pip package duckdb-cli next to this Python)')
    ap.add_argument('--timeout', type=float, default=1800, help='seconds per run before it is killed')
    ap.add_argument('--out', default=None,
                    help='also write the tables as markdown here; if the file has the markers '
                         '%s / %s only that part is replaced' % (MARK_START, MARK_END))
    ap.add_argument('--json', default=None, help='also write raw per-run results as JSON here')
    a = ap.parse_args(argv)

    engines = [e.strip() for e in a.engines.split(',') if e.strip()]
    for e in engines:
        if e not in ('inlet', 'duckdb'):
            ap.error('unknown engine %r (use inlet, duckdb)' % e)
    formats = [f.strip() for f in a.formats.split(',') if f.strip()]
    for f in formats:
        if f not in FORMATS:
            ap.error('unknown format %r (use %s)' % (f, ', '.join(FORMATS)))
    if a.runs < 1:
        ap.error('--runs must be >= 1')
    want_inlet = 'inlet' in engines and formats
    want_duckdb = 'duckdb' in engines

    # fail early, before minutes of data generation
    if not os.access(GNU_TIME, os.X_OK):
        die('%s not found: install GNU time (apt-get install time)' % GNU_TIME)
    if want_inlet:
        a.inlet = os.path.abspath(os.path.expanduser(a.inlet))
        if not (os.path.isfile(a.inlet) and os.access(a.inlet, os.X_OK)):
            die('inlet binary not found or not executable: %s\n'
                '  build it first (cargo build --release, with the same CARGO_TARGET_DIR), or point to it\n'
                '  with --inlet PATH / INLET_BIN=PATH; use --engines duckdb to run only the reference.' % a.inlet)
    if want_duckdb:
        a.duckdb_cli = find_duckdb_cli(a.duckdb_cli)
    try:
        __import__('pyarrow')
    except ImportError:
        die('python %s lacks pyarrow: run through bench/run.sh (venv $INLET_VENV, made by scripts/test-env.sh) '
            'or pip install pyarrow' % sys.executable)

    gen = find_generator(a.gen)
    datasets = []
    for name, profile, n, role in dataset_plan(a):
        d = ensure_dataset(a.data_dir, gen, name, profile, n)
        d['role'] = role
        datasets.append(d)

    eng_list = (['inlet-' + f for f in formats] if want_inlet else []) + ([DUCKDB] if want_duckdb else [])
    env = {'date': time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime()), 'machine': machine(),
           'versions': tool_versions(a, want_inlet, want_duckdb),
           'command': 'bench.py ' + ' '.join(argv)}
    log('bench: %s | %s' % (env['machine'], env['versions']))
    load1 = os.getloadavg()[0]
    if load1 > 0.5 * (os.cpu_count() or 1):
        log('bench: note: load average is %.1f on %d cores before starting: other work is running, '
            'expect noisy numbers (compare CPU s)' % (load1, os.cpu_count() or 0))

    work_root = a.work_dir or a.data_dir
    os.makedirs(work_root, exist_ok=True)
    work = tempfile.mkdtemp(prefix='runs-', dir=work_root)
    results = {}
    try:
        for ds in datasets:
            warm_page_cache(ds['path'])
            for i in range(a.runs):
                k = i % len(eng_list)
                order = eng_list[k:] + eng_list[:k]  # rotate so no engine always goes first
                for eng in order:
                    run_dir = os.path.join(work, '%s-%s-r%d' % (eng, ds['name'], i + 1))
                    os.makedirs(run_dir)
                    if eng == DUCKDB:
                        r = run_duckdb(a, ds, run_dir)
                    else:
                        r = run_inlet(a, eng.split('-', 1)[1], ds, run_dir)
                    msg = '%-14s %-12s run %d/%d: %6.2f s, %5.0f MB RSS, rows %s, state %s' % (
                        eng, ds['name'], i + 1, a.runs, r['wall'], r.get('rss_kb', 0) / 1024.0,
                        r['rows'], r['state'])
                    if r['timed_out']:
                        msg += '  TIMED OUT after %.0f s' % a.timeout
                    elif r['rc'] != 0:
                        msg += '  FAILED rc=%d: %s' % (r['rc'], stderr_tail(r['stderr']))
                    elif not r['correct']:
                        msg += '  WRONG OUTPUT' + (' (%s)' % r['read_error'] if r['read_error'] else '')
                    log(msg)
                    r['run_dir'] = run_dir
                    results.setdefault((eng, ds['name']), []).append(r)
                    if not a.keep_outputs:
                        shutil.rmtree(os.path.join(run_dir, 'out'), ignore_errors=True)
    finally:
        if not a.keep_outputs:
            shutil.rmtree(work, ignore_errors=True)
        else:
            log('bench: outputs kept in %s' % work)

    summaries = [summarize(eng, ds, results[(eng, ds['name'])])
                 for ds in datasets for eng in eng_list if (eng, ds['name']) in results]
    print()
    print(render(summaries, datasets, env, md=False))
    if a.out:
        write_markdown(a.out, render(summaries, datasets, env, md=True))
        log('bench: wrote %s' % a.out)
    if a.json:
        with open(a.json, 'w') as f:
            json.dump({'env': env,
                       'datasets': [{k: v for k, v in d.items()} for d in datasets],
                       'summaries': summaries,
                       'runs': [dict({k: v for k, v in r.items() if k not in ('stdout', 'stderr')},
                                     engine=e, dataset=dn)
                                for (e, dn), rs in results.items() for r in rs]}, f, indent=1)
    all_ok = all(r['correct'] for rs in results.values() for r in rs)
    return 0 if all_ok else 1


if __name__ == '__main__':
    sys.exit(main())
