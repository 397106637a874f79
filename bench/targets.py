#!/usr/bin/env python3
"""Issue 12's performance targets from bench.py's JSON results, one line each:
the paired ratio (median over repetitions of tool / floor timed in the same
repetition, with its range) and the ratio of the fastest runs (tool's
minimum / floor's minimum), which a shared machine's load disturbs least.

    bench/targets.py bench/results/DATE-200TAG.json [more.json ...]
"""
import json
import statistics
import sys

# (what, tool, floor, measure, target)
TARGETS = [
    ("upgrade head", "migd", "floor_each", "apply", 1.05),
    ("upgrade --atomic", "migd_atomic", "floor_1tx", "apply", 1.10),
    ("downgrade base", "migd", "floor_each", "rollback", 1.05),
    ("downgrade --atomic", "migd_atomic", "floor_1tx", "rollback", 1.05),
    ("migctl status", "migd", "floor_1tx", "status", 0.25),
    ("upgrade head, no bookkeeping floor", "migd", "floor_nobook", "apply",
     None),
    ("upgrade head against migd_base", "migd", "migd_base", "apply", None),
    ("downgrade base against migd_base", "migd", "migd_base", "rollback",
     None),
]


def value(run, measure):
    v = run[measure]
    return statistics.median(v) if isinstance(v, list) else v


def main():
    for path in sys.argv[1:]:
        with open(path) as f:
            d = json.load(f)
        runs = [r for r in d["runs"] if not r.get("check")]
        by = {(r["tool"], r["rep"]): r for r in runs}
        reps = sorted(set(r["rep"] for r in runs))
        print("%s: N = %d, %d repetitions, load average at the end %s" % (
            path, d["n"], len(reps), " ".join("%.1f" % x for x in
                                               d.get("loadavg", []))))
        for what, tool, floor, m, target in TARGETS:
            q = [value(by[(tool, i)], m) / value(by[(floor, i)], m)
                 for i in reps if (tool, i) in by and (floor, i) in by]
            if not q:
                continue
            tmin = min(value(by[(tool, i)], m) for i in reps
                       if (tool, i) in by)
            fmin = min(value(by[(floor, i)], m) for i in reps
                       if (floor, i) in by)
            print("  %-36s %-12s / %-12s paired %.2f (%.2f-%.2f)  "
                  "fastest %.2f%s" % (what, tool, floor, statistics.median(q),
                                      min(q), max(q), tmin / fmin,
                                      "  target %.2f" % target if target
                                      else ""))


if __name__ == "__main__":
    main()
