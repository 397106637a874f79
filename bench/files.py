#!/usr/bin/env python3
"""Figures of migd with big or many migration files (issue 9, F7 and F8):

  big     one migration file of --mb MB (bulk INSERTs): time until the socket
          answers, time until the files are loaded, peak and steady RSS
          against the files' size, status latency (p50/p99/max) while the
          file is parsed at start and again after an edit, the size of the
          plan reply
  many    --files revision files (a chain) with inotify disabled
          (MIGD_TEST_NO_INOTIFY=1, migd's test hook): status latency while
          a file is edited every second, and how long an edit takes to show

Figures only, never assertions.  Needs a PostgreSQL (the daemon connects,
so that status goes the whole way); bench/run.sh passes its own:

    files.py --pg-host SOCKDIR --pg-port PORT --work DIR --migd BIN
             [--mb 50] [--files 5000] [--seconds 10] [--json OUT]
"""
import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import time

PSQL = "/usr/lib/postgresql/15/bin/psql"


def gen_big(path, size):
    """One revision whose up section is size bytes of multi-row INSERTs."""
    with open(path, "w") as f:
        f.write("-- revision: big1\n-- down_revision: none\n-- message: bulk\n"
                "\n-- migrate:up\nCREATE TABLE big (id int, name text, note text);\n")
        i = n = 0
        while n < size:
            rows = ",".join("(%d,'name %d','some note text for row %d')"
                            % (i * 10 + k, i * 10 + k, i * 10 + k) for k in range(10))
            s = "INSERT INTO big VALUES %s;\n" % rows
            f.write(s)
            n += len(s)
            i += 1
        f.write("\n-- migrate:down\nDROP TABLE big;\n")


def gen_chain(d, n):
    os.makedirs(d, exist_ok=True)
    for i in range(1, n + 1):
        with open(os.path.join(d, "%05d_r.sql" % i), "w") as f:
            f.write("-- revision: r%05d\n-- down_revision: %s\n-- migrate:up\n"
                    "CREATE TABLE t%05d (id int PRIMARY KEY, v text);\n"
                    "-- migrate:down\nDROP TABLE t%05d;\n"
                    % (i, "r%05d" % (i - 1) if i > 1 else "none", i, i))


def pct(v, p):
    v = sorted(v)
    return v[min(len(v) - 1, int(round(p / 100.0 * (len(v) - 1))))] if v else None


class Client:
    """One persistent connection to migd's socket."""

    def __init__(self, path):
        self.s = socket.socket(socket.AF_UNIX)
        self.s.connect(path)
        self.buf = b""
        self.id = 0

    def call(self, method, params=None):
        self.id += 1
        req = {"jsonrpc": "2.0", "id": self.id, "method": method}
        if params is not None:
            req["params"] = params
        self.s.sendall(json.dumps(req).encode() + b"\n")
        while True:
            while b"\n" not in self.buf:
                chunk = self.s.recv(1 << 20)
                if not chunk:
                    raise RuntimeError("migd closed the connection")
                self.buf += chunk
            line, self.buf = self.buf.split(b"\n", 1)
            if b'"id"' in line:
                return len(line), json.loads(line)


class Daemon:
    def __init__(self, a, name, directory, env=None):
        self.a = a
        self.db = "f_" + name
        self.sock = os.path.join(a.work, name + ".sock")
        self.conf = os.path.join(a.work, name + ".conf")
        self.env = dict(os.environ, PGHOST=a.pg_host, PGPORT=str(a.pg_port),
                        PGUSER="postgres", **(env or {}))
        psql = [PSQL, "-X", "-q", "-d", "postgres", "-c"]
        subprocess.run(psql + ["DROP DATABASE IF EXISTS %s WITH (FORCE)" % self.db],
                       env=self.env, check=True)
        subprocess.run(psql + ["CREATE DATABASE %s" % self.db], env=self.env, check=True)
        with open(self.conf, "w") as f:
            f.write("[database]\nconninfo = host=%s port=%d user=postgres dbname=%s\n"
                    "[migrations]\ndirectory = %s\n[control]\nsocket = %s\n"
                    "[log]\nlevel = info\n" % (a.pg_host, a.pg_port, self.db,
                                               directory, self.sock))
        self.log = os.path.join(a.work, name + ".log")
        logf = open(self.log, "w")
        self.t0 = time.perf_counter()
        self.p = subprocess.Popen([a.migd, "-c", self.conf], stderr=logf, env=self.env)
        logf.close()
        while True:
            try:
                self.c = Client(self.sock)
                self.c.call("version")
                break
            except (FileNotFoundError, ConnectionRefusedError):
                time.sleep(0.005)
        self.listen_s = time.perf_counter() - self.t0

    def mem(self):
        m = {}
        with open("/proc/%d/status" % self.p.pid) as f:
            for line in f:
                k, _, v = line.partition(":")
                if k in ("VmRSS", "VmHWM"):
                    m[k] = int(v.split()[0]) * 1024
        return m

    def status(self):
        t = time.perf_counter()
        _, r = self.c.call("status")
        return time.perf_counter() - t, r["result"]

    def stop(self):
        self.p.send_signal(signal.SIGTERM)
        self.p.wait(timeout=120)


def latencies_until(d, done, limit):
    """Status back to back until done(result) or limit seconds."""
    lat = []
    states = set()
    t_end = time.perf_counter() + limit
    res = None
    while time.perf_counter() < t_end:
        t, res = d.status()
        lat.append(t)
        states.add((res.get("state"), res["migrations"].get("loading")))
        if done(res):
            break
    return lat, res, sorted(str(s) for s in states)


def ms(v):
    return round(v * 1000, 2) if v is not None else None


def summary(lat):
    return {"n": len(lat), "p50_ms": ms(pct(lat, 50)), "p99_ms": ms(pct(lat, 99)),
            "max_ms": ms(max(lat) if lat else None)}


def bench_big(a):
    d_dir = os.path.join(a.work, "big")
    os.makedirs(d_dir, exist_ok=True)
    path = os.path.join(d_dir, "0001_big.sql")
    if not os.path.exists(path) or os.path.getsize(path) < a.mb * 1e6:
        gen_big(path, int(a.mb * 1e6))
    size = os.path.getsize(path)
    d = Daemon(a, "big", d_dir)
    out = {"file_bytes": size, "listen_s": round(d.listen_s, 3)}
    try:
        lat, res, states = latencies_until(
            d, lambda r: not r["migrations"]["loading"], 600)
        out["loaded_s"] = round(time.perf_counter() - d.t0, 2)
        out["status_during_start_load"] = summary(lat)
        out["states_seen_during_start_load"] = states
        time.sleep(1)
        m = d.mem()
        out["steady_rss_bytes"] = m["VmRSS"]
        out["peak_rss_bytes"] = m["VmHWM"]
        out["steady_rss_target_bytes"] = 2 * size + 10 * 1024 * 1024
        out["peak_rss_target_bytes"] = 10 * size
        n, _ = d.c.call("plan", {"target": "head"})
        out["plan_reply_bytes"] = n
        # an edit: the file is parsed again while status goes on
        with open(path, "a") as f:
            f.write("\n")
        time.sleep(0.2)
        t0 = time.perf_counter()
        lat, res, states = latencies_until(
            d, lambda r: not r["migrations"]["loading"], 600)
        out["reload_s"] = round(time.perf_counter() - t0, 2)
        out["status_during_reload"] = summary(lat)
        out["states_seen_during_reload"] = states
        time.sleep(1)
        m = d.mem()
        out["steady_rss_after_reload_bytes"] = m["VmRSS"]
        out["peak_rss_after_reload_bytes"] = m["VmHWM"]
    finally:
        d.stop()
    return out


def bench_many(a):
    d_dir = os.path.join(a.work, "many%d" % a.files)
    if not os.path.isdir(d_dir):
        gen_chain(d_dir, a.files)
    d = Daemon(a, "many", d_dir, {"MIGD_TEST_NO_INOTIFY": "1"})
    out = {"files": a.files}
    try:
        latencies_until(d, lambda r: not r["migrations"]["loading"], 600)
        out["loaded_s"] = round(time.perf_counter() - d.t0, 2)
        # the floor on this machine: the same status, no edit (the check
        # every second still runs)
        lat = []
        t_end = time.perf_counter() + min(a.seconds, 5)
        while time.perf_counter() < t_end:
            lat.append(d.status()[0])
        out["status_no_edits"] = summary(lat)
        lat = []
        shown = []
        t_end = time.perf_counter() + a.seconds
        k = 0
        while time.perf_counter() < t_end:
            # an edit every second: a new revision after the last one
            k += 1
            extra = os.path.join(d_dir, "z%03d_extra.sql" % k)
            with open(extra, "w") as f:
                f.write("-- revision: x%03d\n-- down_revision: %s\n-- migrate:up\n"
                        "SELECT 1;\n" % (k, "r%05d" % a.files if k == 1 else
                                         "x%03d" % (k - 1)))
            t_edit = time.perf_counter()
            seen = None
            # status until the edit shows (the check every second, then
            # the load), and at least a second: one edit a second or slower
            while time.perf_counter() < t_edit + 5.0:
                t, res = d.status()
                lat.append(t)
                if seen is None and res["migrations"].get("revisions") == a.files + k:
                    seen = time.perf_counter() - t_edit
                if seen is not None and time.perf_counter() >= t_edit + 1.0:
                    break
            shown.append(seen)
        for k2 in range(1, k + 1):
            os.unlink(os.path.join(d_dir, "z%03d_extra.sql" % k2))
        out["status_with_edits"] = summary(lat)
        ok = [s for s in shown if s is not None]
        out["edits"] = len(shown)
        out["edits_seen_by_status"] = len(ok)
        out["edit_seen_s_median"] = round(sorted(ok)[len(ok) // 2], 3) if ok else None
        out["edit_seen_s_max"] = round(max(ok), 3) if ok else None
    finally:
        d.stop()
    return out


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--pg-host", required=True)
    p.add_argument("--pg-port", type=int, required=True)
    p.add_argument("--work", required=True)
    p.add_argument("--migd", required=True)
    p.add_argument("--mb", type=float, default=50)
    p.add_argument("--files", type=int, default=5000)
    p.add_argument("--seconds", type=float, default=10)
    p.add_argument("--only", choices=("big", "many"))
    p.add_argument("--json")
    a = p.parse_args()
    os.makedirs(a.work, exist_ok=True)
    res = {}
    if a.only in (None, "big"):
        res["big"] = bench_big(a)
        print(json.dumps({"big": res["big"]}, indent=1), flush=True)
    if a.only in (None, "many"):
        res["many"] = bench_many(a)
        print(json.dumps({"many": res["many"]}, indent=1), flush=True)
    if a.json:
        with open(a.json, "w") as f:
            json.dump(res, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
