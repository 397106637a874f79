#!/usr/bin/env python3
"""The daemon's own figures: status requests/s and latency at 1, 8 and 32
persistent clients, idle RSS, RSS with 10 000 revisions, and load + plan
time for 10 000 and 100 000 revisions.

Run by bench/run.sh; by hand:
    daemon.py --pg-host SOCKDIR --pg-port PORT --work DIR --migd BIN
              --migctl BIN --status-load BIN --workshop DIR --json OUT
              [--graph-scale BIN] [--seconds 5] [--rounds 3] [--reps 5]
"""
import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))


def med(v):
    return statistics.median(v)


class Daemon:
    def __init__(self, a, name, directory, schemas=""):
        self.a = a
        self.db = "d_" + name
        self.sock = os.path.join(a.work, name + ".sock")
        self.conf = os.path.join(a.work, name + ".conf")
        self.env = dict(os.environ, PGHOST=a.pg_host, PGPORT=str(a.pg_port),
                        PGUSER="postgres", MIGD_SOCKET=self.sock)
        psql = [a.psql, "-X", "-q", "-d", "postgres", "-c"]
        subprocess.run(psql + ["DROP DATABASE IF EXISTS %s WITH (FORCE)"
                               % self.db], env=self.env, check=True)
        subprocess.run(psql + ["CREATE DATABASE %s" % self.db],
                       env=self.env, check=True)
        with open(self.conf, "w") as f:
            f.write("[database]\nconninfo = host=%s port=%d user=postgres "
                    "dbname=%s\n[migrations]\ndirectory = %s\n%s"
                    "[control]\nsocket = %s\n[log]\nlevel = warning\n"
                    % (a.pg_host, a.pg_port, self.db, directory,
                       "schemas = %s\n" % schemas if schemas else "",
                       self.sock))
        log = open(os.path.join(a.work, name + ".log"), "a")
        t0 = time.perf_counter()
        self.p = subprocess.Popen([a.migd, "-c", self.conf], stderr=log,
                                  env=self.env)
        log.close()
        self.migctl(["wait", "--for", "ready", "--timeout", "600"])
        self.ready_s = time.perf_counter() - t0

    def migctl(self, args, timed=False):
        t0 = time.perf_counter()
        r = subprocess.run([self.a.migctl] + args, env=self.env,
                           stdout=subprocess.DEVNULL if timed else
                           subprocess.PIPE, stderr=subprocess.PIPE)
        t = time.perf_counter() - t0
        if r.returncode != 0:
            raise RuntimeError("migctl %s: exit %d: %s" % (
                " ".join(args), r.returncode, r.stderr.decode()[-2000:]))
        return t if timed else r.stdout.decode()

    def mem(self):
        m = {}
        with open("/proc/%d/status" % self.p.pid) as f:
            for line in f:
                k, _, v = line.partition(":")
                if k in ("VmRSS", "VmHWM", "RssAnon", "RssFile", "Threads"):
                    m[k] = int(v.split()[0])
        with open("/proc/%d/smaps_rollup" % self.p.pid) as f:
            for line in f:
                k, _, v = line.partition(":")
                if k == "Pss":
                    m["Pss"] = int(v.split()[0])
        top = {}
        name = None
        with open("/proc/%d/smaps" % self.p.pid) as f:
            for line in f:
                w = line.split()
                if "-" in w[0] and len(w) >= 5 and not w[0].endswith(":"):
                    name = os.path.basename(w[5]) if len(w) > 5 else "[anon]"
                elif w[0] == "Rss:":
                    top[name] = top.get(name, 0) + int(w[1])
        m["top_kB"] = sorted(top.items(), key=lambda x: -x[1])[:8]
        return m

    def cpu(self):
        with open("/proc/%d/stat" % self.p.pid) as f:
            v = f.read().rsplit(")", 1)[1].split()
        return (int(v[11]) + int(v[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self):
        self.p.send_signal(signal.SIGTERM)
        self.p.wait(timeout=60)


def load(a, d, clients, seconds, method="status"):
    c0 = d.cpu()
    r = subprocess.run([a.status_load, d.sock, str(clients), str(seconds),
                        method], stdout=subprocess.PIPE, check=True)
    out = json.loads(r.stdout)
    out["migd_cpu_s"] = d.cpu() - c0
    return out


def gen_small(a, n):
    d = os.path.join(a.work, "small%d" % n)
    if not os.path.isdir(d):
        subprocess.run([sys.executable, os.path.join(HERE, "gen.py"),
                        "small", str(n), d], check=True)
    return d


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--pg-host", required=True)
    p.add_argument("--pg-port", type=int, required=True)
    p.add_argument("--work", required=True)
    p.add_argument("--migd", required=True)
    p.add_argument("--migctl", required=True)
    p.add_argument("--status-load", required=True)
    p.add_argument("--graph-scale")
    p.add_argument("--workshop", required=True)
    p.add_argument("--psql", default="/usr/lib/postgresql/15/bin/psql")
    p.add_argument("--seconds", type=float, default=5)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--reps", type=int, default=5)
    p.add_argument("--json", required=True)
    a = p.parse_args()
    res = {}

    # Idle: started, connected, the 9 revisions of the workshop example.
    d = Daemon(a, "idle", os.path.abspath(a.workshop),
               "cars, participants, work_shop")
    try:
        d.migctl(["status"])
        time.sleep(1)
        res["idle"] = d.mem()
        print("idle RSS (9 revisions): %d kB (anon %d kB, file %d kB, "
              "PSS %d kB)" % (res["idle"]["VmRSS"], res["idle"]["RssAnon"],
                              res["idle"]["RssFile"], res["idle"]["Pss"]),
              flush=True)
        d.migctl(["upgrade", "heads"])
        # A second daemon at head of the 1000 workshop migrations: does
        # status cost grow with the revisions?
        g = os.path.join(a.work, "w1000")
        if not os.path.isdir(g):
            subprocess.run([sys.executable, os.path.join(HERE, "gen.py"),
                            "workshop", "1000", g], check=True)
        d1k = Daemon(a, "w1000", os.path.join(g, "migd"))
        d1k.migctl(["upgrade", "head"])
        # status load: rounds of 1, 8, 32 clients, interleaved; the same
        # for `version` (no database): the socket + JSON ceiling; and
        # status with 1000 revisions.
        runs = []
        kinds = [("status", c, d) for c in (1, 8, 32)] + \
            [("version", c, d) for c in (1, 8, 32)] + \
            [("status@1000rev", c, d1k) for c in (1, 32)]
        try:
            for rnd in range(a.rounds):
                for m, c, dd in kinds:
                    r = load(a, dd, c, a.seconds, m.split("@")[0])
                    r["method"] = m
                    r["round"] = rnd
                    runs.append(r)
                    print("  %-14s %2d clients: %8.0f req/s  p50 %.3f ms  "
                          "p99 %.3f ms  migd CPU %.2f s" % (
                              m, c, r["rps"], r["p50_ms"], r["p99_ms"],
                              r["migd_cpu_s"]), flush=True)
        finally:
            d1k.stop()
        res["load_runs"] = runs
        res["load"] = {}
        for m, c, _ in kinds:
            rs = [r for r in runs if r["clients"] == c and r["method"] == m]
            v = {k: med([r[k] for r in rs]) for k in
                 ("rps", "p50_ms", "p99_ms", "migd_cpu_s")}
            v["rps_min"] = min(r["rps"] for r in rs)
            v["rps_max"] = max(r["rps"] for r in rs)
            v["stale"] = sum(r["stale"] for r in rs)
            v["errors"] = sum(r["errors"] for r in rs)
            res["load"]["%s/%d" % (m, c)] = v
        res["after_load"] = d.mem()
    finally:
        d.stop()

    # 10 000 and 100 000 small revisions: ready time, RSS, plan time.
    res["scale"] = {}
    for n in (10000, 100000):
        src = gen_small(a, n)
        d = Daemon(a, "s%d" % n, src, "small")
        try:
            d.migctl(["status"])
            s = {"ready_s": d.ready_s, "mem": d.mem()}
            s["status_s"] = [d.migctl(["status"], True)
                             for _ in range(a.reps)]
            # A plan slower than 10 s is timed 3 times, not a.reps times.
            s["plan_s"] = [d.migctl(["plan"], True)]
            reps = a.reps if s["plan_s"][0] < 10 else 3
            s["plan_s"] += [d.migctl(["plan"], True) for _ in range(reps - 1)]
            s["plan_json_s"] = [d.migctl(["--json", "plan"], True)
                                for _ in range(reps)]
            s["mem_after_plan"] = d.mem()
            res["scale"][str(n)] = s
            print("%6d revisions: ready %.2f s, RSS %d kB; migctl plan "
                  "median %.3f s; status median %.3f s" % (
                      n, d.ready_s, s["mem"]["VmRSS"], med(s["plan_s"]),
                      med(s["status_s"])), flush=True)
        finally:
            d.stop()
    s10, s100 = res["scale"]["10000"], res["scale"]["100000"]
    res["plan_growth"] = med(s100["plan_s"]) / med(s10["plan_s"])
    res["ready_growth"] = s100["ready_s"] / s10["ready_s"]
    print("growth 10k -> 100k: plan x%.1f, start-up x%.1f (linear: x10)"
          % (res["plan_growth"], res["ready_growth"]))
    if a.graph_scale:
        r = subprocess.run([a.graph_scale], stdout=subprocess.PIPE,
                           text=True, check=True)
        res["graph_scale"] = r.stdout
        print(r.stdout, end="")
    with open(a.json, "w") as f:
        json.dump(res, f, indent=1)


if __name__ == "__main__":
    main()
