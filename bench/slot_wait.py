#!/usr/bin/python3
"""A run waiting for a slot of max_connections_total (issue 16): two databases, a cap
of 1, connect_timeout 2 s; a's run sleeps S seconds (default 20) holding the only
slot while b's upgrade waits for it. Prints b's whole time and exit code, when b's
waiting_for_slot event came, the handoff (a's reply to b's first `started` event)
and migd's CPU time over the wait (the run polls every 250 ms). Nothing asserted.

usage: bench/slot_wait.py [S]     (MIGD_BIN, MIGCTL_BIN: the binaries)
Starts a throwaway PostgreSQL (tests/integration/fleet_helpers.py).
"""
import json, os, shutil, subprocess, sys, threading, time
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "integration"))
import migdtest
from fleet_helpers import FleetCluster, fleet_config
from migdtest import Migd, clean_env, write_atomic, wait_for

SLEEP = float(sys.argv[1]) if len(sys.argv) > 1 else 20
c = FleetCluster()
try:
    a, b = c.create_fleet(2)
    wd = migdtest.short_tempdir("meas-")
    da, db_ = os.path.join(wd, "ma"), os.path.join(wd, "mb")
    os.makedirs(da); os.makedirs(db_)
    open(os.path.join(da, "s1.sql"), "w").write(
        "-- revision: s1\n-- down_revision: none\n\n-- migrate:up\nSELECT pg_sleep(%g);\n" % SLEEP)
    open(os.path.join(db_, "f1.sql"), "w").write(
        "-- revision: f1\n-- down_revision: none\n\n-- migrate:up\nCREATE TABLE t (id int);\n")
    m = Migd(wd, c.conninfo(a), pg=c)
    m.config_path = os.path.join(wd, "m.conf")
    write_atomic(m.config_path, fleet_config(c, [a, b], db_, os.path.join(wd, "migd.sock"),
                 cap=1, extra_db={a: {"directory": da}}))
    m.start()
    env = dict(clean_env(), MIGD_SOCKET=m.socket)
    def stream(db, events):
        p = subprocess.Popen([migdtest.MIGCTL_BIN, "--db", db, "--json", "--stream", "upgrade"],
                             env=env, stdout=subprocess.PIPE, text=True)
        for line in p.stdout:
            events.append((time.monotonic(), json.loads(line)))
        p.wait()
        events.append((time.monotonic(), {"rc": p.returncode}))
    ea, eb = [], []
    ta = threading.Thread(target=stream, args=(a, ea)); ta.start()
    wait_for(lambda: any(e.get("params", {}).get("event") == "started" for _, e in ea), 10)
    pid = m.proc.pid
    ticks = lambda: sum(int(x) for x in open("/proc/%d/stat" % pid).read().split(")")[1].split()[11:13])
    t0, c0 = time.monotonic(), ticks()
    tb = threading.Thread(target=stream, args=(b, eb)); tb.start()
    ta.join(); c1 = ticks(); tb.join()
    a_reply = [t for t, e in ea if "result" in e][0]
    b_start = [t for t, e in eb if e.get("params", {}).get("event") == "started"][0]
    b_wait_ev = [t for t, e in eb if e.get("params", {}).get("event") == "waiting_for_slot"]
    print("connect_timeout 2 s, a sleeps %g s" % SLEEP)
    print("b rc %s, b total %.2f s" % (eb[-1][1]["rc"], eb[-1][0] - t0))
    print("b's waiting_for_slot event after %.3f s" % (b_wait_ev[0] - t0))
    print("handoff: a's reply -> b's 'started': %.3f s" % (b_start - a_reply))
    hz = os.sysconf("SC_CLK_TCK")
    print("migd CPU during b's %.1f s wait: %.3f s" % (a_reply - t0, (c1 - c0) / hz))
    m.stop()
    shutil.rmtree(wd, ignore_errors=True)
finally:
    c.destroy()
