#!/usr/bin/python3
"""Times `migctl lint` (pure: files only, no daemon) on N generated files.

    /usr/bin/python3 bench/lint.py [N] [--reps R] [--keep]

Generates a linear chain of N revisions (default 10 000) written as a team
writes them: per revision a CREATE TABLE, an index on it, an added column,
a NOT VALID foreign key and, every tenth, an index without CONCURRENTLY on
an earlier table and a VALIDATE.  Then runs, R times each (default 3):
`migctl lint -d DIR` (every revision alone, through the daemon's loader:
file reading, the graph, the parse) and `migctl lint FILE...` (all files
as one run).  Prints each wall time, the medians of wall and CPU time (user + system,
which a busy machine inflates less) and the findings counted.
The acceptance target (issue 15) is under 1 s for N = 10 000.

migctl: $MIGCTL_BIN, else build/dev/migctl, else migctl on $PATH.
"""

import json
import resource
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time


def migctl_bin():
    here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    for c in (os.environ.get("MIGCTL_BIN"), os.path.join(here, "build/dev/migctl")):
        if c and os.access(c, os.X_OK):
            return os.path.abspath(c)
    return "migctl"


def generate(d, n):
    for i in range(1, n + 1):
        up = ["CREATE TABLE public.t%d (id bigint GENERATED ALWAYS AS IDENTITY "
              "PRIMARY KEY, ref bigint, note text);" % i,
              "CREATE INDEX t%d_ref ON public.t%d (ref);" % (i, i),
              "ALTER TABLE public.t%d ADD COLUMN extra text;" % i]
        if i > 1:
            up.append("ALTER TABLE public.t%d ADD CONSTRAINT t%d_fk FOREIGN KEY "
                      "(ref) REFERENCES public.t%d (id) NOT VALID;" % (i, i, i - 1))
        if i % 10 == 0:
            up.append("CREATE INDEX t%d_note ON public.t%d (note);" % (i - 5, i - 5))
            up.append("ALTER TABLE public.t%d VALIDATE CONSTRAINT t%d_fk;" % (i - 5, i - 5))
        with open(os.path.join(d, "%05d_r.sql" % i), "w") as f:
            f.write("-- revision: r%d\n-- down_revision: %s\n-- message: step %d\n"
                    "-- migrate:up\n%s\n-- migrate:down\nDROP TABLE public.t%d;\n"
                    % (i, "none" if i == 1 else "r%d" % (i - 1), i, "\n".join(up), i))


def timed(args, cwd):
    """Wall time and CPU time (user + system: what a busy machine does not
    inflate) of one run, and its JSON."""
    r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.monotonic()
    p = subprocess.run(args, cwd=cwd, capture_output=True, text=True)
    dt = time.monotonic() - t
    r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)
    if p.returncode not in (0, 4):
        sys.exit("%s: rc %d\n%s" % (" ".join(args[:3]), p.returncode, p.stderr))
    return dt, cpu, json.loads(p.stdout)


def main():
    n, reps, keep = 10000, 3, False
    args = sys.argv[1:]
    while args:
        a = args.pop(0)
        if a == "--reps":
            reps = int(args.pop(0))
        elif a == "--keep":
            keep = True
        else:
            n = int(a)
    d = tempfile.mkdtemp(prefix="lintbench-")
    try:
        generate(d, n)
        files = sorted(f for f in os.listdir(d) if f.endswith(".sql"))
        m = migctl_bin()
        for label, argv in (("lint -d DIR (each alone)", [m, "--json", "lint", "-d", d]),
                            ("lint FILE... (one run)", [m, "--json", "lint"] + files)):
            times, cpus = [], []
            for _ in range(reps):
                dt, cpu, doc = timed(argv, d)
                times.append(dt)
                cpus.append(cpu)
            print("%-26s N=%d: wall %s s, median %.3f s; CPU median %.3f s; "
                  "%d findings (%d errors)"
                  % (label, n, ", ".join("%.3f" % t for t in times),
                     statistics.median(times), statistics.median(cpus),
                     len(doc["findings"]), doc["errors"]))
    finally:
        if keep:
            print("kept", d)
        else:
            shutil.rmtree(d)


main()
