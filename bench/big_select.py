#!/usr/bin/env python3
"""migd's peak RSS while a migration runs a multi-million-row SELECT (issue 9
F26): the rows must be dropped as they arrive, never held whole.

    MIGD_BIN=build/dev/migd /usr/bin/python3 bench/big_select.py [ROWS]
    MIGD_BASE_BIN=/old/migd MIGD_BIN=… /usr/bin/python3 bench/big_select.py

Starts a throwaway PostgreSQL 15 (tests/integration/migdtest.py), one
database and one migd per binary, runs one migration

    CREATE TABLE big AS SELECT g FROM generate_series(1, ROWS) g;
    SELECT g, repeat('x', 100) FROM big;

in a transaction (one pipeline) and once more with 'transaction: none'
(statement by statement), and prints migd's VmHWM (peak resident set)
before and after each, in MiB.  ROWS defaults to 5 000 000.
"""
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "integration"))

import migdtest  # noqa: E402


def vm_hwm_mib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0
    return float("nan")


def measure(pg, binary, rows, mode):
    db = "big_%s_%d" % (mode, int(time.time() * 1000) % 100000000)
    pg.create_db(db)
    work = migdtest.short_tempdir("migd-big-")
    migdtest.MIGD_BIN = binary
    m = migdtest.Migd(work, pg.conninfo(db), args=(), db=db, pg=pg)
    with open(os.path.join(m.migrations_dir, "0001_big.sql"), "w") as f:
        f.write("-- revision: 0001\n-- down_revision: none\n%s\n-- migrate:up\n"
                "CREATE TABLE public.big AS SELECT g FROM generate_series(1, %d) g;\n"
                "SELECT g, repeat('x', 100) FROM public.big;\n"
                % ("-- transaction: none" if mode == "bare" else "", rows))
    m.write_config()
    m.start()
    try:
        migdtest.wait_for(lambda: m.status()["database"]["connected"], 15,
                          what="connected")
        before = vm_hwm_mib(m.proc.pid)
        t0 = time.monotonic()
        with m.connect(timeout=600) as c:
            c.send(migdtest.request("upgrade", {}))
            while True:
                msg = c.recv(600)
                if "id" in msg:
                    break
        secs = time.monotonic() - t0
        after = vm_hwm_mib(m.proc.pid)
        ok = "result" in msg
    finally:
        m.stop()
        pg.drop_db(db)
    return before, after, secs, ok


def main():
    rows = int(sys.argv[1]) if len(sys.argv) > 1 else 5000000
    bins = [("migd", os.environ.get("MIGD_BIN") or migdtest.MIGD_BIN)]
    if os.environ.get("MIGD_BASE_BIN"):
        bins.insert(0, ("migd_base", os.environ["MIGD_BASE_BIN"]))
    pg = migdtest.PgCluster(migdtest.pg_bindir(), migdtest.pg_runas_user())
    pg.start()
    try:
        print("rows: %d (each ~110 bytes as text: %.0f MiB of result)"
              % (rows, rows * 110 / 1048576.0))
        print("%-10s %-10s %12s %12s %9s  %s" % ("binary", "mode", "VmHWM before",
                                                 "VmHWM after", "seconds", "upgrade"))
        for name, binary in bins:
            for mode in ("pipelined", "bare"):
                b, a, s, ok = measure(pg, binary, rows, mode)
                print("%-10s %-10s %9.1f MiB %9.1f MiB %9.1f  %s"
                      % (name, mode, b, a, s, "ok" if ok else "FAILED"))
                sys.stdout.flush()
    finally:
        pg.destroy()


if __name__ == "__main__":
    main()
