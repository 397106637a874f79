#!/usr/bin/python3
"""A fleet rollout's figures (issue 16 point 4): N databases (default 1000) on one
cluster, made from a template; a 5-revision set; the baseline of P parallel psql
loops (default 8) applying that SQL to every database, each revision in its own
transaction with its version row, as migd would; pg_stat_activity sampled meanwhile.

The migd side, when this build serves several databases in one daemon: one migd
serving all N databases with max_connections_total = --cap (default 10, pool_size 1,
idle_close 60s): its idle RSS after start (target <= 30 MiB) and after a status of
every database, the time of N status requests over one socket connection and of N
`migctl --db NAME status` runs, and the most connections migd held meanwhile (never
above the cap); then `migctl upgrade --all --parallel P` on a fresh copy of the fleet
(pool_size 1, a cap of P + 2) under the sampler, with `status --all`'s time. Figures
are printed, nothing is asserted on time.

usage: bench/fleet.py [--n 1000] [--parallel 8] [--max-connections 50] [--cap 10]
                      [--pg-host DIR --pg-port PORT] [--json FILE] [--keep] [--idle]

--idle measures only the migd side's start, idle RSS and statuses (no psql baseline, no
rollout), for MIGD_BIN and, when set, MIGD_BASE_BIN (another build, to compare).

Without --pg-host it starts a throwaway PostgreSQL (tests/integration/fleet_helpers.py:
Unix socket only, fsync off; as the unprivileged postgres user when run as root).
MIGD_BIN and MIGCTL_BIN name the binaries (default: ./migd, ./migctl).
"""
import argparse
import json
import os
import queue
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "integration"))

from fleet_helpers import ConnSampler, FleetCluster, fleet_config  # noqa: E402
from migdtest import Conn, clean_env  # noqa: E402

PREFIX = "bench_fleet_"

# The 5-revision set: what a tenant schema change looks like (tables, a foreign
# key, an index, a column, a view). One list feeds both the migd files and psql.
REVISIONS = [
    ("0001", "accounts",
     "CREATE TABLE tenant_account (id bigserial PRIMARY KEY, name text NOT NULL,\n"
     "    created_at timestamptz NOT NULL DEFAULT now());",
     "DROP TABLE tenant_account;"),
    ("0002", "invoices",
     "CREATE TABLE tenant_invoice (id bigserial PRIMARY KEY,\n"
     "    account_id bigint NOT NULL REFERENCES tenant_account,\n"
     "    amount numeric(12,2) NOT NULL);",
     "DROP TABLE tenant_invoice;"),
    ("0003", "invoice index",
     "CREATE INDEX tenant_invoice_account ON tenant_invoice (account_id);",
     "DROP INDEX tenant_invoice_account;"),
    ("0004", "account email",
     "ALTER TABLE tenant_account ADD COLUMN email text;",
     "ALTER TABLE tenant_account DROP COLUMN email;"),
    ("0005", "totals view",
     "CREATE VIEW tenant_totals AS SELECT account_id, sum(amount) AS total\n"
     "    FROM tenant_invoice GROUP BY account_id;",
     "DROP VIEW tenant_totals;"),
]


def write_migd_files(directory):
    """The revision set as migd files (for the migd run, once it exists)."""
    os.makedirs(directory, exist_ok=True)
    down = "none"
    for rev, message, up, dn in REVISIONS:
        with open(os.path.join(directory, "%s_m.sql" % rev), "w") as f:
            f.write("-- revision: %s\n-- down_revision: %s\n-- message: %s\n\n"
                    "-- migrate:up\n%s\n\n-- migrate:down\n%s\n" % (rev, down, message, up, dn))
        down = rev


def psql_script():
    """The same SQL as psql runs it: each revision in its own transaction with its
    version row, the version table created first (migd creates its own too)."""
    parts = ["CREATE TABLE IF NOT EXISTS alembic_version (version_num varchar(32) "
             "NOT NULL PRIMARY KEY);\n"]
    prev = None
    for rev, _message, up, _down in REVISIONS:
        parts.append("BEGIN;\n%s\n" % up)
        if prev is None:
            parts.append("INSERT INTO alembic_version VALUES ('%s');\n" % rev)
        else:
            parts.append("UPDATE alembic_version SET version_num = '%s' "
                         "WHERE version_num = '%s';\n" % (rev, prev))
        parts.append("COMMIT;\n")
        prev = rev
    return "".join(parts)


def psql_bin():
    for p in ("/usr/lib/postgresql/15/bin/psql", shutil.which("psql")):
        if p and os.access(p, os.X_OK):
            return p   # the binary: /usr/bin/psql is a Perl wrapper (+25 ms a call)
    raise SystemExit("no psql")


def baseline(host, port, names, script_path, parallel):
    """parallel loops, each taking the next database and running psql -f on it; the
    wall time and each database's time."""
    psql = psql_bin()
    work = queue.Queue()
    for n in names:
        work.put(n)
    times, failures = [], []
    lock = threading.Lock()

    def loop():
        while True:
            try:
                name = work.get_nowait()
            except queue.Empty:
                return
            t = time.monotonic()
            p = subprocess.run([psql, "-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", host,
                                "-p", str(port), "-U", "postgres", "-d", name,
                                "-f", script_path],
                               env=clean_env(), capture_output=True, text=True)
            with lock:
                times.append(time.monotonic() - t)
                if p.returncode != 0:
                    failures.append((name, p.stderr.strip()))

    threads = [threading.Thread(target=loop) for _ in range(parallel)]
    t0 = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return time.monotonic() - t0, times, failures


def check_applied(cluster, names, head):
    """The databases whose version row is not head (should be none)."""
    import psycopg2
    wrong = []
    for name in names:
        c = psycopg2.connect(host=cluster.sockdir, port=cluster.port, user="postgres",
                             dbname=name, application_name="fleet-check")
        try:
            with c.cursor() as cur:
                cur.execute("SELECT version_num FROM alembic_version")
                rows = [r[0] for r in cur.fetchall()]
        finally:
            c.close()
        if rows != [head]:
            wrong.append((name, rows))
    return wrong


def migd_fleet_config(cluster, names, work, parallel):
    """The fleet's configuration for migd: a [database NAME] per database, pool_size 1,
    a cap of parallel + 2 (a run per database at once, status live, a margin)."""
    path = os.path.join(work, "fleet.conf")
    with open(path, "w") as f:
        f.write(fleet_config(cluster, names, os.path.join(work, "migrations"),
                             os.path.join(work, "migd.sock"), cap=parallel + 2,
                             idle_close="60s"))
    return path


def migd_fleet_supported(migd_bin, path):
    """Whether this migd would start with the fleet's configuration (its -n exits 0):
    a build that keeps every pool open refuses N databases above the cap."""
    if not os.access(migd_bin, os.X_OK):
        return False, "no migd binary at %s" % migd_bin
    p = subprocess.run([migd_bin, "-n", "-c", path], capture_output=True, text=True,
                       env=clean_env())
    return p.returncode == 0, (p.stderr.strip().splitlines() or [""])[-1]


def migctl_all(migctl_bin, sock, *args):
    return subprocess.run([migctl_bin, "-s", sock] + list(args), capture_output=True,
                          text=True, env=clean_env(), timeout=3600)


def status_all_ms(migctl_bin, socket, reps, *extra):
    """The median wall time of reps `migctl --json status --all`, in ms."""
    times = []
    for _ in range(reps):
        t = time.monotonic()
        migctl_all(migctl_bin, socket, "--json", "status", "--all", *extra)
        times.append(time.monotonic() - t)
    return round(statistics.median(times) * 1000, 1)


def migd_side(migd_bin, migctl_bin, cluster, n, parallel, work):
    """migd's rollout of the same set to a fresh fleet: migctl upgrade --all --parallel
    P under the sampler; RSS idle; status --all's time."""
    import migdtest
    from migdtest import Migd
    migdtest.MIGD_BIN = os.path.abspath(migd_bin)   # this run's, not the tests' default
    names = cluster.create_fleet(n, prefix=PREFIX + "m_")
    path = migd_fleet_config(cluster, names, work, parallel)
    m = Migd(work, cluster.conninfo(names[0]), pg=cluster)
    m.config_path = path
    m.start()
    res = {}
    try:
        deadline = time.monotonic() + 120
        while True:     # every database's files loaded (the first call reads each)
            t = time.monotonic()
            st = json.loads(migctl_all(migctl_bin, m.socket, "--json", "status",
                                       "--all").stdout)
            res["status_all_first_ms"] = round((time.monotonic() - t) * 1000, 1)
            if all(d.get("state") not in (None, "loading") for d in st["databases"]):
                break
            if time.monotonic() > deadline:
                raise SystemExit("migd: databases still loading after 120 s")
            time.sleep(0.5)
        res["status_all_ms_median"] = status_all_ms(migctl_bin, m.socket, 20)
        res["status_all_fresh_ms_median"] = status_all_ms(migctl_bin, m.socket, 3,
                                                          "--fresh")
        with open("/proc/%d/status" % m.proc.pid) as f:
            rss = [l for l in f if l.startswith("VmRSS:")][0].split()[1]
        res["rss_idle_kib"] = int(rss)
        with ConnSampler(cluster, interval=0.05) as s:
            t = time.monotonic()
            p = migctl_all(migctl_bin, m.socket, "--json", "upgrade", "--all",
                           "--parallel", str(parallel))
            res["seconds"] = round(time.monotonic() - t, 2)
        res["exit"] = p.returncode
        res["max_migd_connections_seen"] = s.max_migd
        res["max_connections_seen"] = s.max_total
        res["not_at_head"] = len(check_applied(cluster, names, REVISIONS[-1][0]))
        # after the rollout: each database's state as its run left it
        res["status_all_after_rollout_ms_median"] = status_all_ms(migctl_bin, m.socket, 20)
        st = json.loads(migctl_all(migctl_bin, m.socket, "--json", "status",
                                   "--all").stdout)
        res["status_all_after_rollout_up_to_date"] = sum(
            d.get("state") == "up_to_date" for d in st["databases"])
        res["status_all_after_rollout_kept"] = sum(
            bool(d.get("stale")) for d in st["databases"])
    finally:
        m.stop()
    return res


def rss_kib(pid):
    """The process's resident set (VmRSS), in KiB."""
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def inotify_instances(pid):
    """How many inotify instances the process holds (one per watched set of files)."""
    n = 0
    for fd in os.listdir("/proc/%d/fd" % pid):
        try:
            n += os.readlink("/proc/%d/fd/%s" % (pid, fd)) == "anon_inode:inotify"
        except OSError:
            pass
    return n


def cpu_seconds(pid):
    """The process's user and system CPU time so far, in seconds."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def migd_figures(migd_bin, migctl_bin, cluster, names, work, cap):
    """One migd serving every database within cap: RSS idle, N statuses over the
    socket and through migctl, the connections it held meanwhile."""
    sock = os.path.join(work, "fleet.sock")
    path = os.path.join(work, "fleet.conf")
    with open(path, "w") as f:
        f.write(fleet_config(cluster, names, os.path.join(work, "migrations"), sock,
                             cap=cap, pool_size=1).replace("level = debug", "level = info"))
    fig = {"cap": cap}
    log = open(os.path.join(work, "migd.log"), "w")
    t0 = time.monotonic()
    proc = subprocess.Popen([migd_bin, "-c", path], stdout=log, stderr=log,
                            env=clean_env(), stdin=subprocess.DEVNULL)
    try:
        while not os.path.exists(sock):
            if proc.poll() is not None or time.monotonic() - t0 > 60:
                raise SystemExit("migd did not start: see %s" % log.name)
            time.sleep(0.01)
        with Conn(sock, 60) as c:
            st = c.call("status", {"database": names[0]})
            while st.get("result", {}).get("state") == "loading":
                time.sleep(0.05)
                st = c.call("status", {"database": names[0]})
        fig["start_seconds"] = round(time.monotonic() - t0, 2)
        time.sleep(1.0)
        fig["rss_idle_kib"] = rss_kib(proc.pid)
        fig["inotify_instances"] = inotify_instances(proc.pid)
        cpu0 = cpu_seconds(proc.pid)
        time.sleep(3.0)
        fig["idle_cpu_ms_per_s"] = round((cpu_seconds(proc.pid) - cpu0) * 1000 / 3.0, 1)
        with ConnSampler(cluster, interval=0.02) as s:
            states = {}
            t = time.monotonic()
            with Conn(sock, 60) as c:
                for i, name in enumerate(names):
                    r = c.call("status", {"database": name}, id=i + 1)
                    res = r.get("result") or {}
                    key = res.get("state", "error") + (" (stale)" if res.get("stale")
                                                       else "")
                    states[key] = states.get(key, 0) + 1
            fig["status_socket_seconds"] = round(time.monotonic() - t, 3)
            fig["status_socket_states"] = states
            env = dict(clean_env(), MIGD_SOCKET=sock)
            t = time.monotonic()
            failed = 0
            for name in names:
                p = subprocess.run([migctl_bin, "--db", name, "status"], env=env,
                                   capture_output=True, text=True)
                failed += p.returncode not in (0, 1)
            fig["status_migctl_seconds"] = round(time.monotonic() - t, 3)
            fig["status_migctl_failed"] = failed
        fig["max_migd_connections_seen"] = s.max_migd
        fig["max_connections_seen"] = s.max_total
        fig["rss_after_status_kib"] = rss_kib(proc.pid)
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
    return fig


class ExistingCluster:
    """A running server named by --pg-host/--pg-port, with the methods we use."""

    def __init__(self, host, port):
        self.sockdir, self.port = host, port
        self.psql_bin = psql_bin()
        self.major = ""

    psql = FleetCluster.psql
    psql_script = FleetCluster.psql_script
    create_fleet = FleetCluster.create_fleet
    databases = FleetCluster.databases
    dsn = FleetCluster.dsn
    conninfo = FleetCluster.conninfo

    def destroy(self):
        pass


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=1000)
    ap.add_argument("--parallel", type=int, default=8)
    ap.add_argument("--max-connections", type=int, default=50)
    ap.add_argument("--cap", type=int, default=10,
                    help="migd's max_connections_total")
    ap.add_argument("--pg-host")
    ap.add_argument("--pg-port", type=int)
    ap.add_argument("--json")
    ap.add_argument("--keep", action="store_true", help="leave the server running")
    ap.add_argument("--idle", action="store_true",
                    help="only migd's start, idle RSS and statuses (and MIGD_BASE_BIN's)")
    args = ap.parse_args()
    migd_bin = os.environ.get("MIGD_BIN", "./migd")
    migctl_bin = os.environ.get("MIGCTL_BIN", "./migctl")

    work = tempfile.mkdtemp(prefix="migdfleet-bench-")
    if args.pg_host:
        cluster = ExistingCluster(args.pg_host, args.pg_port)
        cluster.major = cluster.psql("SHOW server_version_num")[:-4]
    else:
        cluster = FleetCluster(max_connections=args.max_connections)
    out = {"n": args.n, "parallel": args.parallel}
    try:
        out["server_max_connections"] = int(cluster.psql("SHOW max_connections"))
        for old in cluster.databases(PREFIX):
            cluster.psql('DROP DATABASE "%s"' % old)
        t = time.monotonic()
        names = cluster.create_fleet(args.n, prefix=PREFIX)
        out["create_seconds"] = round(time.monotonic() - t, 2)
        print("fleet: %d databases created from a template in %.1f s"
              % (args.n, out["create_seconds"]))

        write_migd_files(os.path.join(work, "migrations"))
        if args.idle:
            bins = [("migd", migd_bin)]
            if os.environ.get("MIGD_BASE_BIN"):
                bins.append(("base", os.environ["MIGD_BASE_BIN"]))
            for label, path in bins:
                m = out[label] = migd_figures(path, migctl_bin, cluster, names, work,
                                              args.cap)
                print("%s: %d databases, max_connections_total %d: started in %.2f s, "
                      "idle RSS %.1f MiB, %.1f MiB after a status of each; %d inotify "
                      "instances; idle CPU %.1f ms/s; %d x status over one socket "
                      "connection %.2f s"
                      % (label, args.n, m["cap"], m["start_seconds"],
                         m["rss_idle_kib"] / 1024.0, m["rss_after_status_kib"] / 1024.0,
                         m["inotify_instances"], m["idle_cpu_ms_per_s"], args.n,
                         m["status_socket_seconds"]))
            return 0
        script = os.path.join(work, "fleet.sql")
        with open(script, "w") as f:
            f.write(psql_script())

        with ConnSampler(cluster, interval=0.05, application_name="psql") as s:
            wall, times, failures = baseline(cluster.sockdir, cluster.port, names,
                                             script, args.parallel)
        if failures:
            raise SystemExit("baseline: %d databases failed, first: %s: %s"
                             % (len(failures), failures[0][0], failures[0][1]))
        wrong = check_applied(cluster, names, REVISIONS[-1][0])
        if wrong:
            raise SystemExit("baseline: %d databases not at head, first: %r"
                             % (len(wrong), wrong[0]))
        times.sort()
        out["baseline"] = {
            "seconds": round(wall, 2),
            "per_database_ms_median": round(statistics.median(times) * 1000, 1),
            "per_database_ms_p95": round(times[int(len(times) * 0.95) - 1] * 1000, 1),
            "databases_per_second": round(args.n / wall, 1),
            "max_connections_seen": s.max_total,
            "max_psql_connections_seen": s.max_migd,
            "samples": len(s.samples),
        }
        b = out["baseline"]
        print("baseline: %d psql loops, %d databases x %d revisions: %.2f s "
              "(%.0f databases/s; per database median %.1f ms, p95 %.1f ms)"
              % (args.parallel, args.n, len(REVISIONS), b["seconds"],
                 b["databases_per_second"], b["per_database_ms_median"],
                 b["per_database_ms_p95"]))
        print("baseline: connections seen in pg_stat_activity: at most %d (%d of them "
              "psql's), %d samples" % (b["max_connections_seen"],
                                        b["max_psql_connections_seen"], b["samples"]))
        print("target: migd upgrade --all --parallel %d within 1.2x: %.2f s"
              % (args.parallel, b["seconds"] * 1.2))

        supported, why = migd_fleet_supported(migd_bin, migd_fleet_config(
            cluster, names, work, args.parallel))
        if not supported:
            out["migd"] = None
            print("migd: not measured: this build refuses the fleet's configuration")
            print("      (%s)" % why)
        else:
            m = out["migd"] = migd_figures(migd_bin, migctl_bin, cluster, names, work,
                                           args.cap)
            print("migd: %d databases, max_connections_total %d: started in %.2f s, "
                  "idle RSS %.1f MiB (target <= 30 MiB), %.1f MiB after a status of each"
                  % (args.n, m["cap"], m["start_seconds"], m["rss_idle_kib"] / 1024.0,
                     m["rss_after_status_kib"] / 1024.0))
            print("migd: %d x status over one socket connection: %.2f s (%.2f ms each); "
                  "states %s" % (args.n, m["status_socket_seconds"],
                                 m["status_socket_seconds"] * 1000.0 / args.n,
                                 m["status_socket_states"]))
            print("migd: %d x migctl --db NAME status: %.2f s (%.2f ms each), %d failed"
                  % (args.n, m["status_migctl_seconds"],
                     m["status_migctl_seconds"] * 1000.0 / args.n,
                     m["status_migctl_failed"]))
            print("migd: connections seen in pg_stat_activity: at most %d of migd's "
                  "(cap %d), %d in all" % (m["max_migd_connections_seen"], m["cap"],
                                           m["max_connections_seen"]))
            out["migd_rollout"] = r = migd_side(migd_bin, migctl_bin, cluster, args.n,
                                        args.parallel, work)
            print("migd: upgrade --all --parallel %d: %.2f s (%.2fx the baseline), exit "
                  "%d, %d databases not at head; at most %d migd connections (%d in "
                  "all)" % (args.parallel, r["seconds"], r["seconds"] / b["seconds"],
                            r["exit"], r["not_at_head"], r["max_migd_connections_seen"],
                            r["max_connections_seen"]))
            print("migd: idle RSS %.1f MiB; status --all: the first %.1f ms (reads every "
                  "database), then %.1f ms (median of 20, target 200 ms), --fresh %.1f ms"
                  % (r["rss_idle_kib"] / 1024.0, r["status_all_first_ms"],
                     r["status_all_ms_median"], r["status_all_fresh_ms_median"]))
            print("migd: after the rollout: status --all %.1f ms (median of 20), %d up to "
                  "date, %d from the state their run left"
                  % (r["status_all_after_rollout_ms_median"],
                     r["status_all_after_rollout_up_to_date"],
                     r["status_all_after_rollout_kept"]))
    finally:
        if args.json:
            with open(args.json, "w") as f:
                json.dump(out, f, indent=2)
                f.write("\n")
        if not args.keep:
            if args.pg_host:
                for old in cluster.databases(PREFIX):
                    cluster.psql('DROP DATABASE "%s"' % old)
            cluster.destroy()
        else:
            print("kept: host=%s port=%d" % (cluster.sockdir, cluster.port))
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
