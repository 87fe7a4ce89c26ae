#!/usr/bin/env python3
"""Benchmarks of the upload engine against the tools a user would otherwise
use, and against the machine's limit, measured in the same run.

Started by scripts/bench.sh, which builds the binaries and installs the peers
(awscli in a venv, xxhsum, curl). Prints figures, never asserts speed: the
only failures are wrong results (an upload that did not complete, a hash that
differs from xxhsum's).

Every measurement is repeated (--reps, default 3) with the contenders
interleaved (engine, peer, limit, engine, peer, limit, ...) so that a slow
moment of this shared machine hits all of them alike; the median is reported.
"""

import argparse
import json
import os
import shutil
import signal
import sqlite3
import ssl
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path
from urllib.parse import quote

MIB = 1024 * 1024
GIB = 1024 * MIB


class Sizes:
    def __init__(self, smoke):
        if smoke:
            self.big = 40 * MIB
            self.part = 8 * MIB
            self.conc = 4
            self.mem_part = 16 * MIB
            self.mem_conc = 2
            self.hash = 64 * MIB
            self.small_count = 40
            self.queue_count = 40
            self.queue_large = 100
            self.backlog_finished = 2000
            self.backlog_open = 10
        else:
            self.big = 1 * GIB
            self.part = 16 * MIB
            self.conc = 4
            self.mem_part = 64 * MIB
            self.mem_conc = 8
            self.hash = 2 * GIB
            self.small_count = 2000
            self.queue_count = 1000
            self.queue_large = 10_000
            self.backlog_finished = 100_000
            self.backlog_open = 100
        self.small_size = 64 * 1024
        self.queue_file_size = 1024
        # What every fsync/fdatasync of the engine costs in the slow-flash row.
        self.fsync_ms = 5


def store_location(work):
    """The store's directory: in memory (/dev/shm) when there is room, so the
    store's own writes do not queue up behind, or in front of, the clients'
    disk work: on a phone the store is a remote server. The engine's queue
    database stays on disk, as it would on a device."""
    override = os.environ.get("S3BGU_BENCH_STORE")
    if override:
        return Path(override)
    # One directory per run: two runs on one machine (two CI clones, say)
    # must not share, or empty, each other's store.
    shm = Path("/dev/shm")
    try:
        st = os.statvfs(shm)
        if st.f_bavail * st.f_frsize >= 6 * GIB:
            return Path(tempfile.mkdtemp(prefix="s3bgu-bench-store-", dir=shm))
    except OSError:
        pass
    return work / f"store-{os.getpid()}"


def publish_dir(tmp, final):
    """Moves a directory of test data into place; when another run on the
    machine put the same data there first, keeps theirs."""
    try:
        tmp.rename(final)
    except OSError:
        if not final.exists():
            raise
        shutil.rmtree(tmp, ignore_errors=True)


def remove_path(path):
    """Deletes a file or a directory tree that the store may be changing at
    the same moment: what vanishes meanwhile (s3s-fs renames and deletes its
    own temp files) is already what we wanted."""
    try:
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, onerror=_ignore_vanished)
        else:
            path.unlink()
    except FileNotFoundError:
        pass


def _ignore_vanished(func, name, exc_info):
    if not isinstance(exc_info[1], FileNotFoundError):
        raise exc_info[1]


def log(msg):
    print(f"bench: {msg}", file=sys.stderr, flush=True)


def fmt_bytes(n):
    if n >= GIB and n % GIB == 0:
        return f"{n // GIB} GiB"
    if n >= MIB and n % MIB == 0:
        return f"{n // MIB} MiB"
    if n >= 1024 and n % 1024 == 0:
        return f"{n // 1024} KiB"
    return f"{n} B"


def write_random(path, size):
    """A file of incompressible bytes (written once, reused by every rep)."""
    if path.exists() and path.stat().st_size == size:
        return
    tmp = path.with_suffix(f".tmp-{os.getpid()}")
    with open(tmp, "wb") as f:
        left = size
        while left:
            n = min(left, 8 * MIB)
            f.write(os.urandom(n))
            left -= n
    tmp.rename(path)


def warm(path):
    """Reads a file once so the measured runs find it in the page cache."""
    with open(path, "rb") as f:
        while f.read(8 * MIB):
            pass


def run_measured(cmd, env=None, watch=None, usage=None, kill_on_watch=False):
    """Runs cmd; returns (wall seconds, peak RSS bytes, stdout text, seconds
    until a stderr line containing `watch` appeared or None). Peak RSS and
    the CPU seconds (user + system, put in usage["cpu"] when a dict is
    given) come from wait4's rusage of that very process. kill_on_watch:
    SIGKILL the process once the watched line appeared (its exit status is
    then not checked)."""
    # Dirty pages of the previous run are written back now, not during this one.
    os.sync()
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        cmd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    seen = [None]
    err_lines = []

    def read_err():
        for raw in proc.stderr:
            if watch is not None and seen[0] is None and watch.encode() in raw:
                seen[0] = time.perf_counter() - t0
                if kill_on_watch:
                    proc.send_signal(signal.SIGKILL)
            if len(err_lines) < 200:
                err_lines.append(raw.decode(errors="replace").rstrip())

    reader = threading.Thread(target=read_err, daemon=True)
    reader.start()
    out = proc.stdout.read()
    _, status, rusage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    reader.join()
    if usage is not None:
        usage["cpu"] = rusage.ru_utime + rusage.ru_stime
    if kill_on_watch and seen[0] is not None:
        return wall, rusage.ru_maxrss * 1024, out.decode(errors="replace"), seen[0]
    if proc.returncode != 0:
        tail = "\n".join(err_lines[-15:])
        raise RuntimeError(f"{Path(cmd[0]).name} exited with {proc.returncode}:\n{tail}")
    return wall, rusage.ru_maxrss * 1024, out.decode(errors="replace"), seen[0]


def post_json(url, body, tls=None):
    req = urllib.request.Request(
        url,
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(req, timeout=120, context=tls) as resp:
        data = resp.read()
    return json.loads(data) if data.strip() else None


class Server:
    """`s3bgu serve` in the background; reads the URLs it prints."""

    def __init__(self, args):
        self.proc = subprocess.Popen(
            args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        line = self.proc.stdout.readline()
        if not line.startswith("listening on "):
            self.proc.kill()
            raise RuntimeError(f"s3bgu serve did not start: {line!r} {self.proc.stderr.read()}")
        self.url = line.split()[-1]
        self.store_url = None
        if "--s3-endpoint" not in args:
            err = self.proc.stderr.readline()
            self.store_url = err.split()[-1]
        # Drain the pipes so the server never blocks on a full one.
        for stream in (self.proc.stdout, self.proc.stderr):
            threading.Thread(target=stream.read, daemon=True).start()

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()


SLOW_FSYNC_C = r"""
/* LD_PRELOAD: every fsync and fdatasync takes S3BGU_FSYNC_DELAY_MS more
   milliseconds (phone flash is that slow); their number is written to
   S3BGU_FSYNC_COUNT_FILE when the process exits. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static long delay_ns;
static unsigned long calls;
static int (*real_fsync)(int);
static int (*real_fdatasync)(int);

__attribute__((constructor)) static void setup(void) {
    const char *ms = getenv("S3BGU_FSYNC_DELAY_MS");
    delay_ns = ms ? (long)(atof(ms) * 1e6) : 0;
    real_fsync = (int (*)(int))dlsym(RTLD_NEXT, "fsync");
    real_fdatasync = (int (*)(int))dlsym(RTLD_NEXT, "fdatasync");
}

static void slow_down(void) {
    __atomic_add_fetch(&calls, 1, __ATOMIC_RELAXED);
    struct timespec left = { delay_ns / 1000000000L, delay_ns % 1000000000L };
    while (delay_ns > 0 && nanosleep(&left, &left) != 0) {}
}

int fsync(int fd) { int rc = real_fsync(fd); slow_down(); return rc; }
int fdatasync(int fd) { int rc = real_fdatasync(fd); slow_down(); return rc; }

__attribute__((destructor)) static void report(void) {
    const char *path = getenv("S3BGU_FSYNC_COUNT_FILE");
    FILE *f = path ? fopen(path, "w") : NULL;
    if (f) { fprintf(f, "%lu\n", calls); fclose(f); }
}
"""


class Bench:
    def __init__(self, opts):
        self.opts = opts
        self.sizes = Sizes(opts.smoke)
        self.work = Path(opts.work).resolve()
        self.bin = opts.bin
        self.aws = opts.aws
        self.store_dir = store_location(self.work)
        self.bucket_dir = self.store_dir / "uploads"
        self.rows = []  # (section, measure, engine, peer, ratio)
        self.run_no = 0
        # The private CA of the HTTPS section while it runs.
        self.tls_ca = None
        self.tls_ctx = None

    # ---------------------------------------------------------------- setup
    def setup(self):
        s = self.sizes
        self.work.mkdir(parents=True, exist_ok=True)
        if self.store_dir.exists():
            shutil.rmtree(self.store_dir)
        data = self.work / "data"
        data.mkdir(exist_ok=True)
        log("writing test files")
        self.big = data / f"big-{s.big}.bin"
        write_random(self.big, s.big)
        self.hashed = data / f"hash-{s.hash}.bin"
        write_random(self.hashed, s.hash)
        self.small_dir = data / f"small-{s.small_count}x{s.small_size}"
        if not self.small_dir.exists():
            tmp = data / f"small.tmp-{os.getpid()}"
            shutil.rmtree(tmp, ignore_errors=True)
            tmp.mkdir()
            for i in range(s.small_count):
                (tmp / f"f{i:05d}.bin").write_bytes(os.urandom(s.small_size))
            publish_dir(tmp, self.small_dir)
        self.small_files = sorted(self.small_dir.iterdir())
        # The same parts as separate files, for curl (split outside the timing).
        self.parts_dir = data / f"parts-{s.big}-{s.part}"
        if not self.parts_dir.exists():
            tmp = data / f"parts.tmp-{os.getpid()}"
            shutil.rmtree(tmp, ignore_errors=True)
            tmp.mkdir()
            with open(self.big, "rb") as f:
                n = 1
                while True:
                    chunk = f.read(s.part)
                    if not chunk:
                        break
                    (tmp / f"p{n:05d}").write_bytes(chunk)
                    n += 1
            publish_dir(tmp, self.parts_dir)
        self.parts = sorted(self.parts_dir.iterdir())
        for p in [self.big, self.hashed, *self.small_files, *self.parts]:
            warm(p)

        log("starting the store and backends")
        self.server = Server(
            [self.bin, "serve", "--listen", "127.0.0.1:0", "--store", str(self.store_dir),
             "--part-size", str(s.part)]
        )
        self.backend = self.server.url
        self.store_url = self.server.store_url
        self.secret = (self.store_dir / ".s3bgu-secret").read_text().strip()
        # A second backend on the same store, handing out the larger parts.
        self.server_mem = Server(
            [self.bin, "serve", "--listen", "127.0.0.1:0", "--s3-endpoint", self.store_url,
             "--bucket", "uploads", "--access-key", "s3bgu-local", "--secret-key",
             self.secret, "--part-size", str(s.mem_part)]
        )
        self.backend_mem = self.server_mem.url

        aws_dir = self.work / "aws"
        aws_dir.mkdir(exist_ok=True)
        cfg = aws_dir / "config"
        part_mib = s.part // MIB
        cfg.write_text(
            "[default]\n"
            "region = us-east-1\n"
            "s3 =\n"
            f"  multipart_threshold = {part_mib}MB\n"
            f"  multipart_chunksize = {part_mib}MB\n"
            f"  max_concurrent_requests = {s.conc}\n"
            "  addressing_style = path\n"
        )
        self.aws_env = dict(os.environ)
        self.aws_env.update(
            AWS_CONFIG_FILE=str(cfg),
            AWS_SHARED_CREDENTIALS_FILE=str(aws_dir / "credentials-none"),
            AWS_ACCESS_KEY_ID="s3bgu-local",
            AWS_SECRET_ACCESS_KEY=self.secret,
            AWS_DEFAULT_REGION="us-east-1",
            AWS_EC2_METADATA_DISABLED="true",
        )
        self.quiet_env = {k: v for k, v in os.environ.items() if k != "S3BGU_LOG"}

    def teardown(self):
        for srv in (getattr(self, "server_mem", None), getattr(self, "server", None)):
            if srv:
                srv.stop()
        if self.store_dir.exists():
            shutil.rmtree(self.store_dir, ignore_errors=True)
        shutil.rmtree(self.work / f"runs-{os.getpid()}", ignore_errors=True)

    def fresh_run_dir(self):
        """An empty queue database per run (the engine would otherwise find
        the same file already uploaded), and an empty bucket."""
        self.run_no += 1
        d = self.work / f"runs-{os.getpid()}" / f"r{self.run_no:04d}"
        shutil.rmtree(d, ignore_errors=True)
        d.mkdir(parents=True)
        self.empty_bucket()
        return d

    def empty_bucket(self):
        for child in list(self.bucket_dir.iterdir()):
            remove_path(child)
        for child in list(self.store_dir.iterdir()):
            # s3s-fs keeps multipart uploads in progress beside the bucket.
            if child.name not in ("uploads", ".s3bgu-secret"):
                remove_path(child)

    def stored_sizes(self):
        sizes = []
        for root, _, files in os.walk(self.bucket_dir):
            for name in files:
                try:
                    sizes.append(os.path.getsize(os.path.join(root, name)))
                except FileNotFoundError:
                    pass  # a store temp file, gone since the listing
        return sizes

    def check_stored(self, what, size, count=1):
        found = [n for n in self.stored_sizes() if n == size]
        if len(found) < count:
            raise RuntimeError(
                f"{what}: expected {count} stored object(s) of {size} bytes, found {len(found)}"
            )

    # ------------------------------------------------------------ contenders
    def engine_upload(self, files, backend, conc, transfer="bench", watch=None, env=None,
                      usage=None):
        d = self.fresh_run_dir()
        cmd = [self.bin, "upload", *map(str, files), "--backend", backend,
               "--concurrency", str(conc), "--db", str(d / "queue.db"),
               "--transfer", transfer, "--json"]
        if self.tls_ca:
            cmd += ["--ca-cert", str(self.tls_ca)]
        wall, rss, out, _ = run_measured(cmd, env=env or self.quiet_env, watch=watch,
                                         usage=usage)
        report = json.loads(out)
        states = {u["state"] for u in report["uploads"]}
        if states != {"COMPLETED"} or len(report["uploads"]) != len(files):
            raise RuntimeError(f"engine upload did not complete: {states}")
        return wall, rss, report

    def engine_send_only(self, path, backend, conc, usage):
        """The engine's transfer path alone: the file is queued (hashed) by
        `s3bgu add`, unmeasured, then `s3bgu resume` uploads it; usage gets
        the CPU of the resume, which reads the file once, like curl."""
        d = self.fresh_run_dir()
        tls = ["--ca-cert", str(self.tls_ca)] if self.tls_ca else []
        db = ["--db", str(d / "queue.db")]
        run_measured([self.bin, "add", str(path), "--backend", backend, *db, *tls],
                     env=self.quiet_env)
        wall, _, out, _ = run_measured(
            [self.bin, "resume", "--concurrency", str(conc), *db, *tls, "--json"],
            env=self.quiet_env, usage=usage)
        report = json.loads(out)
        if [u["state"] for u in report["uploads"]] != ["COMPLETED"]:
            raise RuntimeError(f"engine resume did not complete: {report['uploads']}")
        return wall

    def aws_cp(self, src, dest, recursive=False, usage=None):
        self.fresh_run_dir()
        cmd = [self.aws, "s3", "cp", str(src), dest, "--endpoint-url", self.store_url,
               "--only-show-errors", "--no-progress"]
        if recursive:
            cmd.append("--recursive")
        env = self.aws_env
        if self.tls_ca:
            env = dict(env, AWS_CA_BUNDLE=str(self.tls_ca))
        wall, rss, _, _ = run_measured(cmd, env=env, usage=usage)
        return wall, rss

    def curl_limit(self, usage=None):
        """The same multipart upload with no client logic: one startUpload,
        one getUploadUrls, the parts PUT by one curl process with N parallel
        transfers, one complete. No hashing, no database, no retries."""
        s = self.sizes
        self.fresh_run_dir()
        os.sync()
        t0 = time.perf_counter()
        start = post_json(
            f"{self.backend}/startUpload",
            {"fileName": "limit.bin", "fileHash": self.big_hash, "fileSize": s.big},
            self.tls_ctx,
        )
        numbers = list(range(1, len(self.parts) + 1))
        urls = post_json(
            f"{self.backend}/getUploadUrls",
            {"key": start["key"], "uploadId": start["uploadId"], "parts": numbers},
            self.tls_ctx,
        )["urls"]
        cmd = ["curl", "--silent", "--show-error", "--parallel", "--parallel-max",
               str(s.conc), "--header", "Expect:", "--write-out",
               "%{urlnum} %{http_code} %header{etag}\\n"]
        if self.tls_ca:
            cmd += ["--cacert", str(self.tls_ca)]
        for n, part in zip(numbers, self.parts):
            cmd += ["--upload-file", str(part), urls[str(n)], "--output", "/dev/null"]
        # Output to files and wait4 here: the rusage of this very process.
        with tempfile.TemporaryFile("w+") as out_f, tempfile.TemporaryFile("w+") as err_f:
            proc = subprocess.Popen(cmd, stdout=out_f, stderr=err_f, text=True)
            _, status, rusage = os.wait4(proc.pid, 0)
            proc.returncode = os.waitstatus_to_exitcode(status)
            out_f.seek(0)
            err_f.seek(0)
            stdout, stderr = out_f.read(), err_f.read()
        if usage is not None:
            usage["cpu"] = rusage.ru_utime + rusage.ru_stime
        if proc.returncode != 0:
            raise RuntimeError(f"curl failed: {stderr[-500:]}")
        etags = {}
        for line in stdout.splitlines():
            idx, code, etag = line.split(" ", 2)
            if code != "200" or not etag:
                raise RuntimeError(f"curl part {int(idx) + 1}: HTTP {code}")
            etags[int(idx) + 1] = etag
        parts = [{"PartNumber": n, "ETag": etags[n]} for n in numbers]
        key_path = "/".join(quote(seg, safe="") for seg in start["key"].split("/"))
        post_json(
            f"{self.backend}/complete/{quote(start['uploadId'], safe='')}/{key_path}",
            {"parts": parts},
            self.tls_ctx,
        )
        wall = time.perf_counter() - t0
        self.check_stored("curl", s.big)
        return wall

    # -------------------------------------------------------------- sections
    def reps(self):
        return range(self.opts.reps)

    def throughput_and_memory(self):
        s = self.sizes
        log(f"1. throughput: {fmt_bytes(s.big)} file, {fmt_bytes(s.part)} parts, {s.conc} in flight")
        eng, aws, lim, rss, commits, cpu = self.big_upload_reps()
        self.cpu_http = cpu
        mbs = lambda t: s.big / t / 1e6
        e, a, c = map(statistics.median, (eng, aws, lim))
        title = f"1 GiB upload ({fmt_bytes(s.part)} parts, {s.conc} in flight), MB/s" if not self.opts.smoke else \
            f"{fmt_bytes(s.big)} upload ({fmt_bytes(s.part)} parts, {s.conc} in flight), MB/s"
        self.rows.append(("Throughput", title + " vs aws s3 cp", f"{mbs(e):.0f}", f"{mbs(a):.0f}", f"{a / e:.2f}x"))
        self.rows.append(("Throughput", title + " vs parallel curl (limit)", f"{mbs(e):.0f}", f"{mbs(c):.0f}", f"{c / e:.2f}x"))
        n_parts = -(-s.big // s.part)
        self.commits_per_part = statistics.median(commits) / n_parts

        log(f"2. memory: {fmt_bytes(s.mem_part)} parts, {s.mem_conc} in flight")
        rss_big = []
        for rep in self.reps():
            _, r, _ = self.engine_upload([self.big], self.backend_mem, s.mem_conc)
            self.check_stored("engine", s.big)
            rss_big.append(r)
        for label, values, part, conc in (
            ("run 1", rss, s.part, s.conc),
            ("large parts", rss_big, s.mem_part, s.mem_conc),
        ):
            peak = max(values)
            self.rows.append((
                "Memory",
                f"peak RSS, {label}: {conc} x {fmt_bytes(part)} in flight, MiB",
                f"{peak / MIB:.1f}",
                f"{conc * part / MIB:.0f} (in flight)",
                f"{peak / (conc * part):.2f}x",
            ))

    def big_upload_reps(self):
        """The 1 GiB upload by the engine, aws and curl, interleaved; wall
        times, the engine's peak RSS and commits, and CPU seconds of each."""
        s = self.sizes
        eng, aws, lim, rss, commits = [], [], [], [], []
        cpu = {"engine": [], "send": [], "aws": [], "curl": []}
        for rep in self.reps():
            u = {}
            w, r, report = self.engine_upload([self.big], self.backend, s.conc, usage=u)
            self.check_stored("engine", s.big)
            eng.append(w)
            rss.append(r)
            cpu["engine"].append(u["cpu"])
            commits.append(report.get("dbCommits", 0))
            self.engine_send_only(self.big, self.backend, s.conc, usage=u)
            self.check_stored("engine", s.big)
            cpu["send"].append(u["cpu"])
            w, _ = self.aws_cp(self.big, f"s3://uploads/bench/aws-{rep}.bin", usage=u)
            self.check_stored("aws", s.big)
            aws.append(w)
            cpu["aws"].append(u["cpu"])
            lim.append(self.curl_limit(usage=u))
            cpu["curl"].append(u["cpu"])
            log(f"  rep {rep + 1}: engine {w_fmt(eng[-1])} ({cpu['engine'][-1]:.2f} s CPU; "
                f"{cpu['send'][-1]:.2f} s without the hash pass), "
                f"aws {w_fmt(aws[-1])} ({cpu['aws'][-1]:.2f} s CPU), "
                f"curl {w_fmt(lim[-1])} ({cpu['curl'][-1]:.2f} s CPU)")
        return eng, aws, lim, rss, commits, {k: statistics.median(v) for k, v in cpu.items()}

    def https(self):
        """The 1 GiB upload again with the store and the backend behind TLS
        (a private CA made for this run; every contender trusts it through
        its own option), and the CPU each contender spends per GiB over
        HTTPS and over plain HTTP (run 1)."""
        s = self.sizes
        log(f"8. HTTPS: {fmt_bytes(s.big)} file through the TLS harness")
        store = self.store_dir.parent / (self.store_dir.name + "-tls")
        shutil.rmtree(store, ignore_errors=True)
        ca = self.work / "bench-ca.pem"
        proc = subprocess.Popen(
            [self.opts.https_harness, str(ca), "--store", str(store), "--part-size", str(s.part)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
        )
        saved = (self.backend, self.store_url, self.store_dir, self.bucket_dir)
        try:
            info = {}
            for _ in range(3):
                key, _, value = proc.stdout.readline().strip().partition(" ")
                info[key] = value
            if not info.get("backend", "").startswith("https://"):
                raise RuntimeError(f"https-harness did not start: {info}")
            self.backend, self.store_url = info["backend"], info["store-url"]
            self.store_dir, self.bucket_dir = store, store / "uploads"
            self.tls_ca = ca
            self.tls_ctx = ssl.create_default_context(cafile=str(ca))
            secret = (store / ".s3bgu-secret").read_text().strip()
            aws_env = self.aws_env
            self.aws_env = dict(aws_env, AWS_SECRET_ACCESS_KEY=secret)
            try:
                eng, aws, lim, _, _, cpu = self.big_upload_reps()
            finally:
                self.aws_env = aws_env
        finally:
            self.backend, self.store_url, self.store_dir, self.bucket_dir = saved
            self.tls_ca = None
            self.tls_ctx = None
            proc.stdin.close()
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
            shutil.rmtree(store, ignore_errors=True)
        mbs = lambda t: s.big / t / 1e6
        e, a, c = map(statistics.median, (eng, aws, lim))
        title = f"{fmt_bytes(s.big)} upload over HTTPS ({fmt_bytes(s.part)} parts, {s.conc} in flight), MB/s"
        self.rows.append(("HTTPS", title + " vs aws s3 cp", f"{mbs(e):.0f}", f"{mbs(a):.0f}", f"{a / e:.2f}x"))
        self.rows.append(("HTTPS", title + " vs parallel curl", f"{mbs(e):.0f}", f"{mbs(c):.0f}", f"{c / e:.2f}x"))
        gib = s.big / GIB
        for proto, usage in (("HTTPS", cpu), ("HTTP", getattr(self, "cpu_http", None))):
            if not usage:
                continue
            for peer, name in (("curl", "parallel curl"), ("aws", "aws s3 cp")):
                self.rows.append((
                    "CPU",
                    f"CPU seconds (user + sys) per GiB uploaded over {proto}: engine vs {name}",
                    f"{usage['engine'] / gib:.2f}", f"{usage[peer] / gib:.2f}",
                    f"{usage[peer] / usage['engine']:.2f}x",
                ))
            # The same upload without the contract's whole-file hash pass
            # (queued first, then resumed): one read of the file, as curl.
            self.rows.append((
                "CPU",
                f"CPU seconds per GiB over {proto}, transfer path alone (`s3bgu resume` of a "
                "queued file: no fileHash pass) vs parallel curl",
                f"{usage['send'] / gib:.2f}", f"{usage['curl'] / gib:.2f}",
                f"{usage['curl'] / usage['send']:.2f}x",
            ))

    def hashing(self):
        s = self.sizes
        log(f"3. hashing: {fmt_bytes(s.hash)} in the page cache")
        eng, peer, cpu = [], [], []
        for _ in self.reps():
            warm(self.hashed)
            usage = {}
            w, _, out, _ = run_measured([self.bin, "hash", str(self.hashed)], usage=usage)
            eng.append(w)
            cpu.append(usage["cpu"])
            mine = out.strip()
            w, _, out, _ = run_measured(["xxhsum", "-H2", str(self.hashed)])
            peer.append(w)
            theirs = out.split()[0]
            if mine != theirs:
                raise RuntimeError(f"hash differs: s3bgu {mine}, xxhsum {theirs}")
        e, p = statistics.median(eng), statistics.median(peer)
        self.rows.append((
            "Hashing",
            f"XXH3-128 of {fmt_bytes(s.hash)} (cached), GB/s: s3bgu hash vs xxhsum -H2",
            f"{s.hash / e / 1e9:.2f}", f"{s.hash / p / 1e9:.2f}", f"{p / e:.2f}x",
        ))
        # The whole-file pass the backend contract's fileHash needs before
        # startUpload: part of the engine's CPU per GiB above.
        self.rows.append((
            "CPU",
            "CPU seconds per GiB of `s3bgu hash` alone (the fileHash pass inside the "
            "engine's figures)",
            f"{statistics.median(cpu) / (s.hash / GIB):.2f}", "-", "-",
        ))

    def many_small(self):
        s = self.sizes
        n = len(self.small_files)
        log(f"4. many small files: {n} x {fmt_bytes(s.small_size)}, "
            f"and with every fsync taking {s.fsync_ms} ms")
        shim = self.fsync_shim()
        counts = self.work / "fsyncs.txt"

        def counted(delay_ms):
            counts.unlink(missing_ok=True)
            return dict(self.quiet_env, LD_PRELOAD=str(shim), S3BGU_FSYNC_DELAY_MS=str(delay_ms),
                        S3BGU_FSYNC_COUNT_FILE=str(counts))

        eng, slow, aws, syncs, slow_syncs = [], [], [], [], []
        for rep in self.reps():
            w, _, _ = self.engine_upload(self.small_files, self.backend, s.conc,
                                         transfer=f"small-{rep}", env=counted(0))
            self.check_stored("engine", s.small_size, n)
            eng.append(w)
            syncs.append(int(counts.read_text()))
            w, _, _ = self.engine_upload(self.small_files, self.backend, s.conc,
                                         transfer=f"small-slow-{rep}", env=counted(s.fsync_ms))
            self.check_stored("engine", s.small_size, n)
            slow.append(w)
            slow_syncs.append(int(counts.read_text()))
            w, _ = self.aws_cp(self.small_dir, f"s3://uploads/bench/aws-small-{rep}/", recursive=True)
            self.check_stored("aws", s.small_size, n)
            aws.append(w)
            log(f"  rep {rep + 1}: engine {w_fmt(eng[-1])} ({syncs[-1]} fsyncs), "
                f"engine at {s.fsync_ms} ms per fsync {w_fmt(slow[-1])} ({slow_syncs[-1]} fsyncs), "
                f"aws {w_fmt(aws[-1])}")
        e, sl, a = statistics.median(eng), statistics.median(slow), statistics.median(aws)
        what = f"{n} x {fmt_bytes(s.small_size)} in one transfer ({s.conc} in flight)"
        self.rows.append((
            "Small files", f"{what}, files/s vs aws s3 cp --recursive",
            f"{n / e:.0f}", f"{n / a:.0f}", f"{a / e:.2f}x",
        ))
        self.rows.append((
            "Small files", f"{what}, every fsync taking {s.fsync_ms} ms (engine; aws makes none), "
            "files/s vs aws s3 cp --recursive",
            f"{n / sl:.0f}", f"{n / a:.0f}", f"{a / sl:.2f}x",
        ))
        self.rows.append((
            "Small files", f"fsync + fdatasync calls per file (whole process): plain / at {s.fsync_ms} ms",
            f"{statistics.median(syncs) / n:.2f} / {statistics.median(slow_syncs) / n:.2f}", "-", "-",
        ))

    def fsync_shim(self):
        """Builds the LD_PRELOAD library that makes fsync and fdatasync slow
        (phone flash) and counts them."""
        src = self.work / "slow_fsync.c"
        lib = self.work / "libslow_fsync.so"
        src.write_text(SLOW_FSYNC_C)
        subprocess.run(["cc", "-O2", "-shared", "-fPIC", "-o", str(lib), str(src), "-ldl"],
                       check=True)
        return lib

    def queue_overhead(self):
        s = self.sizes
        n = s.queue_count
        files = self.small_files[:n]
        log(f"5. queue overhead: {n} unfinished uploads")
        first, total, commits = [], [], []
        for rep in self.reps():
            d = self.fresh_run_dir()
            db = d / "queue.db"
            subprocess.run(
                [self.bin, "add", *map(str, files), "--backend", self.backend,
                 "--concurrency", str(s.conc), "--db", str(db), "--transfer", "queued"],
                check=True, capture_output=True, env=self.quiet_env,
            )
            env = dict(self.quiet_env, S3BGU_LOG="s3bgu_core=debug")
            wall, _, out, seen = run_measured(
                [self.bin, "resume", "--db", str(db), "--json"], env=env,
                watch="part upload starts",
            )
            report = json.loads(out)
            if len(report["uploads"]) != n or {u["state"] for u in report["uploads"]} != {"COMPLETED"}:
                raise RuntimeError("resume did not complete the queued uploads")
            if seen is None:
                raise RuntimeError("no part upload was logged")
            first.append(seen)
            total.append(wall)
            commits.append(report["dbCommits"])
        self.rows.append((
            "Queue",
            f"`s3bgu resume` with {n} queued uploads: start to first part request, ms",
            f"{statistics.median(first) * 1000:.0f}", "-", "-",
        ))
        self.queue_large()
        self.rows.append((
            "Queue",
            f"SQLite commits per part: {n} one-part uploads (start, URLs, part, complete)",
            f"{statistics.median(commits) / n:.2f}", "-", "-",
        ))
        self.rows.append((
            "Queue",
            f"SQLite commits per part: {fmt_bytes(s.big)} file of {-(-s.big // s.part)} parts (run 1)",
            f"{self.commits_per_part:.2f}", "-", "-",
        ))

    def queue_large(self):
        """The first part request with a queue ten times longer, none of it
        finished (distinct 1 KiB files). Only the start is measured: the
        process is killed once its first part request is logged."""
        s = self.sizes
        n = s.queue_large
        data = self.work / "data" / f"queue-{n}x{s.queue_file_size}"
        if not data.exists():
            tmp = data.with_suffix(f".tmp-{os.getpid()}")
            shutil.rmtree(tmp, ignore_errors=True)
            tmp.mkdir(parents=True)
            for i in range(n):
                (tmp / f"q{i:06d}.bin").write_bytes(os.urandom(s.queue_file_size))
            publish_dir(tmp, data)
        files = sorted(data.iterdir())
        log(f"5b. queue overhead: {n} unfinished uploads (start only)")
        first = []
        for rep in self.reps():
            d = self.fresh_run_dir()
            db = d / "queue.db"
            # Added in batches: one command line would be too long.
            for i in range(0, n, 1000):
                subprocess.run(
                    [self.bin, "add", *map(str, files[i:i + 1000]), "--backend", self.backend,
                     "--concurrency", str(s.conc), "--db", str(db), "--transfer", "queued"],
                    check=True, capture_output=True, env=self.quiet_env,
                )
            env = dict(self.quiet_env, S3BGU_LOG="s3bgu_core=debug")
            _, _, _, seen = run_measured(
                [self.bin, "resume", "--db", str(db), "--json"], env=env,
                watch="part upload starts", kill_on_watch=True,
            )
            if seen is None:
                raise RuntimeError("no part upload was logged")
            first.append(seen)
        self.rows.append((
            "Queue",
            f"`s3bgu resume` with {n:,} queued uploads: start to first part request, ms",
            f"{statistics.median(first) * 1000:.0f}", "-", "-",
        ))

    def backlog(self):
        """Open + first part request with a long history: many finished
        uploads (inserted straight into the database, as months of use would
        leave them) ahead of a few unfinished ones."""
        s = self.sizes
        done, n = s.backlog_finished, s.backlog_open
        files = self.small_files[:n]
        log(f"7. backlog: {done} finished and {n} unfinished uploads")
        first, total = [], []
        for rep in self.reps():
            d = self.fresh_run_dir()
            db = d / "queue.db"
            subprocess.run(
                [self.bin, "add", *map(str, files), "--backend", self.backend,
                 "--concurrency", str(s.conc), "--db", str(db), "--transfer", "backlog"],
                check=True, capture_output=True, env=self.quiet_env,
            )
            add_finished_history(db, done)
            env = dict(self.quiet_env, S3BGU_LOG="s3bgu_core=debug")
            wall, _, out, seen = run_measured(
                [self.bin, "resume", "--db", str(db), "--json"], env=env,
                watch="part upload starts",
            )
            report = json.loads(out)
            if len(report["uploads"]) != n or {u["state"] for u in report["uploads"]} != {"COMPLETED"}:
                raise RuntimeError("resume did not complete the unfinished uploads")
            if seen is None:
                raise RuntimeError("no part upload was logged")
            first.append(seen)
            total.append(wall)
        self.rows.append((
            "Queue",
            f"`s3bgu resume` with {done:,} finished + {n} unfinished uploads: "
            "start to first part request, ms",
            f"{statistics.median(first) * 1000:.0f}", "-", "-",
        ))
        self.rows.append((
            "Queue",
            f"`s3bgu resume` with {done:,} finished + {n} unfinished uploads: "
            f"all {n} done, s",
            f"{statistics.median(total):.2f}", "-", "-",
        ))

    def binary_size(self):
        lib = Path(self.opts.lib)
        log(f"6. binary size: {lib}")
        stripped = self.work / "libs3bgu_core.stripped.so"
        shutil.copy(lib, stripped)
        subprocess.run(["strip", "--strip-all", str(stripped)], check=True)
        size = stripped.stat().st_size
        self.rows.append((
            "Size",
            f"engine cdylib ({lib.parent.name} profile, x86-64, stripped), MiB",
            f"{size / MIB:.2f}", "-", "-",
        ))
        mobile = Path(self.opts.lib_mobile) if self.opts.lib_mobile else None
        if mobile and mobile.exists():
            shutil.copy(mobile, stripped)
            subprocess.run(["strip", "--strip-all", str(stripped)], check=True)
            size = stripped.stat().st_size
            self.rows.append((
                "Size",
                "engine cdylib (mobile profile, built alone, relocations packed; x86-64 "
                "host as the proxy of a phone ABI; stripped), MiB",
                f"{size / MIB:.2f}", "3.5 (target)", f"{3.5 * MIB / size:.2f}x",
            ))

    # --------------------------------------------------------------- output
    def print_table(self):
        print()
        print(f"Benchmarks ({'smoke, ' if self.opts.smoke else ''}{self.opts.reps} reps, median; "
              f"store {self.store_dir}, queue databases in {self.work}; "
              f"ratio = peer time / engine time, above 1 means the engine is faster; "
              f"for memory, peak RSS / bytes in flight)")
        print()
        print("| Section | Measure | Engine | Peer | Ratio |")
        print("|---|---|---|---|---|")
        for row in self.rows:
            print("| " + " | ".join(row) + " |")
        sys.stdout.flush()


def add_finished_history(db, count):
    """Puts `count` COMPLETED one-part uploads (finished a minute ago, well
    within the default retention) in front of the queued ones, with their
    part rows, as a long-used queue holds them."""
    con = sqlite3.connect(db)
    now = int(time.time() * 1000) - 60_000
    with con:
        # The queued uploads move behind the history, keeping their order.
        con.execute("UPDATE uploads SET id = id + ?", (count,))
        con.execute("UPDATE sqlite_sequence SET seq = seq + ? WHERE name = 'uploads'", (count,))
        con.executemany(
            "INSERT INTO uploads (id, transfer_id, path, file_name, file_hash, size, mtime_ns, "
            "user_params, state, object_key, upload_id, part_size, parts_total, created_at, "
            "updated_at) VALUES (?, ?, ?, ?, ?, 2000000, 0, '{}', 'COMPLETED', ?, ?, 5242880, 1, ?, ?)",
            ((i, f"album-{i // 500}", f"/data/DCIM/IMG_{i:06d}.jpg", f"IMG_{i:06d}.jpg",
              f"{i:032x}", f"photos/IMG_{i:06d}.jpg", f"mpu-{i:08d}", now, now)
             for i in range(1, count + 1)),
        )
        con.executemany(
            "INSERT INTO parts (upload, number, etag) VALUES (?, 1, ?)",
            ((i, f'"{i:032x}"') for i in range(1, count + 1)),
        )
    con.close()


def w_fmt(seconds):
    return f"{seconds:.2f} s"


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--smoke", action="store_true", help="tiny sizes, one rep")
    ap.add_argument("--reps", type=int, default=None)
    ap.add_argument("--work", required=True)
    ap.add_argument("--bin", required=True)
    ap.add_argument("--lib", required=True)
    ap.add_argument("--aws", required=True)
    ap.add_argument("--lib-mobile", default=None, help="the mobile-profile cdylib")
    ap.add_argument("--https-harness", default=None, help="the testkit's https-harness")
    ap.add_argument("--only", default="throughput,https,hashing,small,queue,backlog,size")
    ap.add_argument("--backlog", default=None, metavar="FINISHED,UNFINISHED",
                    help="counts of the backlog section (e.g. 100000,100 with --smoke inputs)")
    opts = ap.parse_args()
    if opts.reps is None:
        opts.reps = 1 if opts.smoke else 3
    only = set(opts.only.split(","))
    bench = Bench(opts)
    if opts.backlog:
        done, open_ = (int(x) for x in opts.backlog.split(","))
        bench.sizes.backlog_finished, bench.sizes.backlog_open = done, open_
        bench.sizes.small_count = max(bench.sizes.small_count, open_)
    try:
        bench.setup()
        bench.big_hash = subprocess.run(
            [opts.bin, "hash", str(bench.big)], check=True, capture_output=True, text=True
        ).stdout.strip()
        bench.commits_per_part = float("nan")
        if "throughput" in only:
            bench.throughput_and_memory()
        if "https" in only and opts.https_harness:
            bench.https()
        if "hashing" in only:
            bench.hashing()
        if "small" in only:
            bench.many_small()
        if "queue" in only:
            bench.queue_overhead()
        if "backlog" in only:
            bench.backlog()
        if "size" in only:
            bench.binary_size()
    finally:
        bench.teardown()
    bench.print_table()


if __name__ == "__main__":
    main()
