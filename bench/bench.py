#!/usr/bin/env python3
"""Times apply-all, status and rollback-all of migd, the psql floors and the
peers on the migrations gen.py wrote, on a fresh database per run.

Run by bench/run.sh; by hand:
    bench.py --gen DIR --n N --pg-host SOCKDIR --pg-port PORT --work DIR
             [--reps 5] [--status-reps 10] [--tools migd,floor_1tx,...]
             --migd BIN --migctl BIN [--dbmate BIN] --json OUT

Each repetition runs every tool once, in an order rotated per repetition,
so that the noise of a busy machine spreads over all of them.  Per run:
drop and create the database (untimed), the tool's setup (untimed: the floor's
version table; migd started and connected), apply-all (timed, whole process),
the catalog fingerprint (untimed, must match every other tool's), status with
nothing pending (timed, --status-reps times), rollback-all (timed), the
fingerprint again (the empty schemas every tool leaves), teardown.
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

TOOLS = ["migd", "migd_base", "migd_atomic", "floor_1tx", "floor_nobook",
         "floor_each", "floor_batched", "alembic",
         "alembic_1tx", "dbmate", "sqitch"]

DESC = {
    "migd": "migd: migctl upgrade head / status / downgrade base "
            "(daemon running, connected)",
    "migd_base": "migd as above, another build (--migd-base, e.g. the "
                 "last release), for a ratio measured in the same run",
    "migd_atomic": "migd: migctl upgrade head --atomic / downgrade base "
                   "--atomic (the whole run in one transaction)",
    "floor_nobook": "floor: one psql session, BEGIN; stmts; COMMIT; per "
                    "migration, no version table at all",
    "floor_1tx": "floor: psql -1 -f up_1tx.sql (one transaction), "
                 "psql -c 'select 1'",
    "floor_each": "floor: one psql session, BEGIN; stmts; UPDATE version; "
                  "COMMIT; per migration",
    "floor_batched": "reference: as floor_each, each migration sent as one "
                     "multi-statement query (psql \\;): 1 round trip each",
    "alembic": "Alembic (transaction_per_migration=True), alembic current",
    "alembic_1tx": "Alembic default on PostgreSQL: one transaction for the run",
    "dbmate": "dbmate migrate / status / N x rollback (Go binary from npm)",
    "sqitch": "Sqitch deploy / status / revert -y (runs psql per change)",
}


class Bench:
    def __init__(self, a):
        self.a = a
        self.env = dict(os.environ, PGHOST=a.pg_host, PGPORT=str(a.pg_port),
                        PGUSER="postgres", MIGD_SOCKET=os.path.join(
                            a.work, "migd.sock"), LC_ALL="C.UTF-8")
        self.env.pop("PGDATABASE", None)
        # The real psql, not Debian's pg_wrapper (a Perl script that
        # would add ~25 ms to every call).
        self.psql = [a.psql, "-X", "-q", "-v", "ON_ERROR_STOP=1"]
        self.migd = None
        self.dbmate_n = len([f for f in os.listdir(os.path.join(
            a.gen, "dbmate")) if f.endswith(".sql")])

    # -- helpers -------------------------------------------------------
    def sh(self, argv, db=None, env=None, check=True, cwd=None):
        e = dict(self.env, **(env or {}))
        if db:
            e["PGDATABASE"] = db
        r = subprocess.run(argv, env=e, cwd=cwd, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True)
        if check and r.returncode != 0:
            raise RuntimeError("%s: exit %d\n%s%s" % (
                " ".join(argv), r.returncode, r.stdout[-2000:],
                r.stderr[-2000:]))
        return r

    def timed(self, argv, db=None, env=None, cwd=None):
        """Wall time of one whole process, output discarded."""
        e = dict(self.env, **(env or {}))
        if db:
            e["PGDATABASE"] = db
        t0 = time.perf_counter()
        r = subprocess.run(argv, env=e, cwd=cwd, stdout=subprocess.DEVNULL,
                           stderr=subprocess.PIPE)
        t = time.perf_counter() - t0
        if r.returncode != 0:
            raise RuntimeError("%s: exit %d\n%s" % (
                " ".join(argv), r.returncode, r.stderr.decode()[-3000:]))
        return t

    def sql(self, db, q):
        return self.sh(self.psql + ["-At", "-d", db, "-c", q]).stdout.strip()

    def fresh_db(self, db):
        self.sql("postgres", "DROP DATABASE IF EXISTS %s WITH (FORCE)" % db)
        self.sql("postgres", "CREATE DATABASE %s" % db)

    def fingerprint(self, db):
        return self.sh(self.psql + ["-At", "-d", db, "-f", os.path.join(
            HERE, "fingerprint.sql")]).stdout.strip()

    # -- migd ----------------------------------------------------------
    def migd_start(self, db, binary):
        conf = os.path.join(self.a.work, "migd.conf")
        sock = self.env["MIGD_SOCKET"]
        with open(conf, "w") as f:
            f.write("[database]\nconninfo = host=%s port=%d user=postgres "
                    "dbname=%s\n[migrations]\ndirectory = %s\n"
                    "[control]\nsocket = %s\n[log]\nlevel = warning\n"
                    % (self.a.pg_host, self.a.pg_port, db,
                       os.path.join(self.a.gen, "migd"), sock))
        log = open(os.path.join(self.a.work, "migd.log"), "a")
        self.migd = subprocess.Popen([binary, "-c", conf],
                                     stderr=log, env=self.env)
        log.close()
        self.sh([self.a.migctl, "wait", "--for", "ready", "--timeout",
                 "30"])

    def migd_stop(self):
        if self.migd is not None:
            self.migd.send_signal(signal.SIGTERM)
            self.migd.wait(timeout=30)
            self.migd = None

    def migd_cpu(self):
        with open("/proc/%d/stat" % self.migd.pid) as f:
            v = f.read().rsplit(")", 1)[1].split()
        return (int(v[11]) + int(v[12])) / os.sysconf("SC_CLK_TCK")

    # -- one run of one tool -------------------------------------------
    def run(self, tool, rep, status_reps):
        a, g = self.a, self.a.gen
        db = "b_%s_%d" % (tool, a.n)
        self.fresh_db(db)
        migctl = [a.migctl]
        fl = os.path.join(g, "floor")
        alembic = ["/usr/bin/python3", "-m", "alembic", "-c",
                   os.path.join(g, "alembic", "alembic.ini")]
        aenv = {"BENCH_SQLA_URL": "postgresql+psycopg2://postgres@/%s?"
                "host=%s&port=%d" % (db, a.pg_host, a.pg_port)}
        if tool == "alembic_1tx":
            aenv["BENCH_ALEMBIC_ONE_TX"] = "1"
        durl = ("postgres://postgres@/%s?socket=%s&port=%d&sslmode=disable"
                % (db, a.pg_host, a.pg_port))
        dbmate = [a.dbmate or "dbmate", "--url", durl, "-d",
                  os.path.join(g, "dbmate"), "--no-dump-schema"]
        sq = os.path.join(g, "sqitch")
        target = "db:pg:" + db
        out = {"tool": tool, "rep": rep}
        if tool.startswith("floor"):
            self.sh(self.psql + ["-d", db, "-f", os.path.join(fl,
                                                             "setup.sql")])
            kind = tool.split("_", 1)[1]
            up = self.psql + (["-1"] if kind == "1tx" else []) + [
                "-d", db, "-f", os.path.join(fl, "up_%s.sql" % kind)]
            down = self.psql + (["-1"] if kind == "1tx" else []) + [
                "-d", db, "-f", os.path.join(fl, "down_%s.sql" % kind)]
            status = self.psql + ["-d", db, "-c", "select 1"]
            out["apply"] = self.timed(up)
            out["fp_up"] = self.fingerprint(db)
            out["status"] = [self.timed(status) for _ in range(status_reps)]
            out["rollback"] = self.timed(down)
        elif tool in ("migd", "migd_base", "migd_atomic"):
            self.migd_start(db, a.migd_base if tool == "migd_base" else a.migd)
            atomic = ["--atomic"] if tool == "migd_atomic" else []
            try:
                c0 = self.migd_cpu()
                out["apply"] = self.timed(migctl + ["upgrade", "head"] +
                                          atomic)
                out["migd_cpu_apply"] = self.migd_cpu() - c0
                out["fp_up"] = self.fingerprint(db)
                st = self.sh(migctl + ["--json", "status"]).stdout
                if json.loads(st)["state"] != "up_to_date":
                    raise RuntimeError("migd status: " + st[:500])
                out["status"] = [self.timed(migctl + ["status"])
                                 for _ in range(status_reps)]
                c0 = self.migd_cpu()
                out["rollback"] = self.timed(migctl + ["downgrade", "base"] +
                                             atomic)
                out["migd_cpu_rollback"] = self.migd_cpu() - c0
            finally:
                self.migd_stop()
        elif tool.startswith("alembic"):
            out["apply"] = self.timed(alembic + ["upgrade", "head"], env=aenv)
            out["fp_up"] = self.fingerprint(db)
            out["status"] = [self.timed(alembic + ["current"], env=aenv)
                             for _ in range(status_reps)]
            out["rollback"] = self.timed(alembic + ["downgrade", "base"],
                                         env=aenv)
        elif tool == "dbmate":
            out["apply"] = self.timed(dbmate + ["migrate"])
            out["fp_up"] = self.fingerprint(db)
            out["status"] = [self.timed(dbmate + ["status"])
                             for _ in range(status_reps)]
            # dbmate rolls back one migration per call: a loop, timed whole
            t0 = time.perf_counter()
            for _ in range(self.dbmate_n):
                self.timed(dbmate + ["rollback"])
            out["rollback"] = time.perf_counter() - t0
        elif tool == "sqitch":
            out["apply"] = self.timed(["sqitch", "--quiet", "deploy",
                                       "--db-client", a.psql, target],
                                      cwd=sq)
            out["fp_up"] = self.fingerprint(db)
            out["status"] = [self.timed(["sqitch", "status", target],
                                        cwd=sq) for _ in range(status_reps)]
            out["rollback"] = self.timed(["sqitch", "--quiet", "revert",
                                          "-y", "--db-client", a.psql,
                                          target], cwd=sq)
        else:
            raise RuntimeError("unknown tool " + tool)
        out["fp_down"] = self.fingerprint(db)
        self.sql("postgres", "DROP DATABASE %s WITH (FORCE)" % db)
        return out


def med(v):
    return statistics.median(v) if v else float("nan")


def summarize(runs, tools):
    """Medians per tool, and ratios to the floors paired by repetition:
    the median over repetitions of tool/floor measured in the same one,
    which cancels much of the machine's drift between repetitions."""
    s = {}
    timed = [r for r in runs if not r.get("check")]
    reps = sorted(set(r["rep"] for r in timed))
    by = {(r["tool"], r["rep"]): r for r in timed}

    def val(r, k):
        return med(r["status"]) if k == "status" else r[k]
    for t in tools:
        rs = [r for r in timed if r["tool"] == t]
        if not rs:
            continue
        d = {}
        for k in ("apply", "rollback", "status"):
            v = [x for r in rs for x in r["status"]] if k == "status" \
                else [r[k] for r in rs]
            d[k] = {"median": med(v), "min": min(v), "max": max(v),
                    "n": len(v)}
            for f in ("floor_each", "floor_1tx", "floor_nobook",
                      "migd_base"):
                q = [val(by[(t, i)], k) / val(by[(f, i)], k) for i in reps
                     if (t, i) in by and (f, i) in by]
                if q:
                    d[k]["x_" + f] = {"median": med(q), "min": min(q),
                                      "max": max(q)}
        if t.startswith("migd"):
            d["migd_cpu_apply"] = med([r["migd_cpu_apply"] for r in rs])
            d["migd_cpu_rollback"] = med([r["migd_cpu_rollback"] for r in rs])
        s[t] = d
    return s


def table(n, s):
    lines = ["N = %d migrations, medians of the runs.  Ratios are paired: "
             "the median over repetitions of tool / floor timed in the same "
             "repetition (range in brackets); ×each: to the per-migration "
             "floor (floor_each), ×nobook: to the same without a version "
             "table (floor_nobook), ×1tx: to psql -1 (floor_1tx); status: to "
             "psql -c 'select 1' (the status column of the floors)." % n, ""]
    hdr = ("| tool | apply s | ×each | ×nobook | ×1tx | status ms | "
           "×select 1 | rollback s | ×each | ×nobook | ×1tx |")
    lines += [hdr, "|" + "---|" * 11]

    def r(d, k, f):
        x = d[k].get("x_" + f)
        if not x:
            return "-"
        return "%.2f (%.2f–%.2f)" % (x["median"], x["min"], x["max"])
    for t, d in s.items():
        lines.append("| %s | %.3f | %s | %s | %s | %.1f | %s | %.3f | %s | "
                     "%s | %s |"
                     % (t, d["apply"]["median"], r(d, "apply", "floor_each"),
                        r(d, "apply", "floor_nobook"),
                        r(d, "apply", "floor_1tx"),
                        d["status"]["median"] * 1000,
                        r(d, "status", "floor_1tx"), d["rollback"]["median"],
                        r(d, "rollback", "floor_each"),
                        r(d, "rollback", "floor_nobook"),
                        r(d, "rollback", "floor_1tx")))
    if "migd" in s:
        lines += ["", "migd daemon CPU (median): %.3f s during apply, %.3f s "
                  "during rollback" % (s["migd"]["migd_cpu_apply"],
                                       s["migd"]["migd_cpu_rollback"])]
    if "migd" in s and "migd_base" in s:
        x = s["migd"]["apply"].get("x_migd_base")
        y = s["migd"]["rollback"].get("x_migd_base")
        lines += ["migd / migd_base, paired by repetition: apply %.3f "
                  "(%.3f–%.3f), rollback %.3f (%.3f–%.3f)" % (
                      x["median"], x["min"], x["max"], y["median"],
                      y["min"], y["max"])]
    return "\n".join(lines)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--gen", required=True)
    p.add_argument("--n", type=int, required=True)
    p.add_argument("--pg-host", required=True)
    p.add_argument("--pg-port", type=int, required=True)
    p.add_argument("--work", required=True)
    p.add_argument("--reps", type=int, default=5)
    p.add_argument("--status-reps", type=int, default=10)
    p.add_argument("--tools", default=",".join(TOOLS))
    p.add_argument("--migd", required=True)
    p.add_argument("--migctl", required=True)
    p.add_argument("--migd-base", help="another migd build, timed as "
                   "migd_base in the same runs")
    p.add_argument("--dbmate")
    p.add_argument("--psql", default="/usr/lib/postgresql/15/bin/psql")
    p.add_argument("--json", required=True)
    a = p.parse_args()
    tools = [t for t in a.tools.split(",") if t and (t != "migd_base" or
                                                     a.migd_base)]
    b = Bench(a)
    runs = []
    try:
        # The check: every tool once, untimed for the table, and every
        # fingerprint must match before anything counts.
        print("checking that every tool builds the same schema (N=%d)"
              % a.n, flush=True)
        fps = {}
        for t in tools:
            r = b.run(t, -1, 1)
            r["check"] = True
            runs.append(r)
            fps[t] = (r["fp_up"], r["fp_down"])
            print("  %-14s up %s  down %s" % (t, r["fp_up"], r["fp_down"]),
                  flush=True)
        if len(set(fps.values())) != 1:
            sys.exit("the tools built different schemas: %r" % fps)
        for rep in range(a.reps):
            order = tools[rep % len(tools):] + tools[:rep % len(tools)]
            for t in order:
                r = b.run(t, rep, a.status_reps)
                if (r["fp_up"], r["fp_down"]) != fps[t]:
                    sys.exit("%s built another schema in run %d" % (t, rep))
                runs.append(r)
                print("  rep %d %-14s apply %.3f s  status %.1f ms  "
                      "rollback %.3f s" % (rep, t, r["apply"],
                                           med(r["status"]) * 1000,
                                           r["rollback"]), flush=True)
    finally:
        b.migd_stop()
    s = summarize(runs, tools)
    text = table(a.n, s)
    print()
    print(text)
    with open(a.json, "w") as f:
        json.dump({"n": a.n, "reps": a.reps, "status_reps": a.status_reps,
                   "tools": tools, "describe": {t: DESC[t] for t in tools},
                   "fingerprint": fps[tools[0]], "summary": s, "runs": runs,
                   "table": text, "loadavg": os.getloadavg()}, f, indent=1)


if __name__ == "__main__":
    main()
