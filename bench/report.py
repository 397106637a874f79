#!/usr/bin/env python3
"""Writes bench/results/DATE-N.{txt,json}, DATE-daemon.{txt,json} and the
measured block of docs/performance.md from what bench.py and daemon.py
wrote.  Only the text between the BENCH:BEGIN and BENCH:END markers of the
document is replaced; the analysis around it is written by people.
"""
import argparse
import glob
import json
import os
import platform
import re
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench  # noqa: E402  (the table, from the raw runs)


def cmd(argv, env=None):
    try:
        r = subprocess.run(argv, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, text=True, timeout=60,
                           env=env)
        return r.stdout.strip().splitlines()[0] if r.stdout.strip() else "?"
    except (OSError, subprocess.SubprocessError):
        return "not available"


def machine(a):
    cpu = "?"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    with open("/proc/meminfo") as f:
        mem = int(f.readline().split()[1]) // 1024
    py = "/usr/bin/python3"
    return {
        "nproc": os.cpu_count(),
        "memory_MiB": mem,
        "cpu": cpu,
        "kernel": platform.release(),
        "os": cmd(["sh", "-c", ". /etc/os-release; echo $PRETTY_NAME "
                   "$(cat /etc/debian_version 2>/dev/null)"]),
        "postgresql": cmd([a.psql, "-XAtc", "select version()"]),
        "psql": cmd([a.psql, "--version"]),
        "migd": cmd([a.migd, "-V"]),
        "migctl": cmd([a.migctl, "--version"]),
        "alembic": cmd([py, "-m", "alembic", "--version"]),
        "sqlalchemy": cmd([py, "-c", "import sqlalchemy; "
                           "print(sqlalchemy.__version__)"]),
        "psycopg2": cmd([py, "-c", "import psycopg2; "
                         "print(psycopg2.__version__)"]),
        "dbmate": cmd([a.dbmate, "--version"]) if a.dbmate else
        "not measurable: " + a.dbmate_why,
        "sqitch": cmd(["sqitch", "--version"]),
        "loadavg_at_end": " ".join("%.2f" % x for x in os.getloadavg()),
    }


def daemon_text(d):
    if not d:
        return ""
    i = d["idle"]
    lines = ["Daemon figures (pool_size 2, default settings)", "",
             "| figure | measured |", "|---|---|",
             "| idle RSS (started, connected, 9 revisions) | %.1f MiB "
             "(anonymous %.1f MiB, shared-library pages %.1f MiB; PSS "
             "%.1f MiB) |" % (i["VmRSS"] / 1024, i["RssAnon"] / 1024,
                             i["RssFile"] / 1024, i["Pss"] / 1024)]
    top = ", ".join("%s %.1f" % (k, v / 1024) for k, v in i["top_kB"][:6])
    lines.append("| largest mappings (MiB) | %s |" % top)
    for n in ("10000", "100000"):
        s = d["scale"][n]
        med = sorted(s["plan_s"])[len(s["plan_s"]) // 2]
        medj = sorted(s["plan_json_s"])[len(s["plan_json_s"]) // 2]
        meds = sorted(s["status_s"])[len(s["status_s"]) // 2]
        lines.append("| %s revisions | RSS %.1f MiB (anonymous %.1f); "
                     "start to ready %.2f s; `migctl plan` %.3f s "
                     "(`--json` %.3f s); `migctl status` %.3f s |"
                     % (n, s["mem"]["VmRSS"] / 1024,
                        s["mem"]["RssAnon"] / 1024, s["ready_s"], med, medj,
                        meds))
    lines.append("| growth 10k -> 100k (linear: 10) | plan x%.1f, start-up "
                 "x%.1f |" % (d["plan_growth"], d["ready_growth"]))
    lines += ["", "Status load: persistent clients over the control socket, "
              "back to back, 5 s per figure, median of the rounds; "
              "`version` (answered without the database) for comparison.",
              "`status@1000rev`: a second daemon at the head of the N = 1000 "
              "workshop migrations.",
              "", "| method | clients | requests/s (range) | p50 ms | p99 ms |"
              " migd CPU s per run | stale replies |", "|---|---|---|---|---|"
              "---|---|"]
    for k, v in d["load"].items():
        m, c = k.split("/")
        rng = " (%.0f–%.0f)" % (v["rps_min"], v["rps_max"]) \
            if "rps_min" in v else ""
        lines.append("| %s | %s | %.0f%s | %.3f | %.3f | %.2f | %d |" % (
            m, c, v["rps"], rng, v["p50_ms"], v["p99_ms"], v["migd_cpu_s"],
            v["stale"]))
    if d.get("graph_scale"):
        lines += ["", "bench/graph_scale (the graph alone, in process):", "",
                  "```", d["graph_scale"].rstrip(), "```"]
    return "\n".join(lines)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--out", required=True)
    p.add_argument("--results", required=True)
    p.add_argument("--date", required=True)
    p.add_argument("--doc", required=True)
    p.add_argument("--migd", required=True)
    p.add_argument("--migctl", required=True)
    p.add_argument("--psql", required=True)
    p.add_argument("--dbmate")
    p.add_argument("--dbmate-why", default="")
    p.add_argument("--tag", default="",
                   help="suffix of the result files; no document update")
    a = p.parse_args()
    os.makedirs(a.results, exist_ok=True)
    m = machine(a)
    mtext = "\n".join("- %s: %s" % (k, v) for k, v in m.items())
    blocks = []
    for f in sorted(glob.glob(os.path.join(a.out, "[0-9]*.json")),
                    key=lambda x: int(os.path.basename(x)[:-5])):
        r = json.load(open(f))
        r["machine"] = m
        r["summary"] = bench.summarize(r["runs"], r["tools"])
        r["table"] = bench.table(r["n"], r["summary"])
        base = os.path.join(a.results, "%s-%d%s" % (a.date, r["n"],
                                                       a.tag))
        json.dump(r, open(base + ".json", "w"), indent=1)
        desc = "\n".join("- %s: %s" % (k, v) for k, v in
                         r["describe"].items())
        text = "%s\n\n%s\n\nfingerprint (up / after rollback): %s\n" % (
            r["table"], desc, " / ".join(r["fingerprint"]))
        open(base + ".txt", "w").write(text + "\nmachine:\n" + mtext + "\n")
        blocks.append(r["table"])
    dpath = os.path.join(a.out, "daemon.json")
    if os.path.exists(dpath):
        d = json.load(open(dpath))
        d["machine"] = m
        base = os.path.join(a.results, "%s-daemon%s" % (a.date, a.tag))
        json.dump(d, open(base + ".json", "w"), indent=1)
        t = daemon_text(d)
        open(base + ".txt", "w").write(t + "\n\nmachine:\n" + mtext + "\n")
        blocks.append(t)
    block = ("<!-- BENCH:BEGIN (written by bench/run.sh; edit outside) -->\n"
             "Measured %s with `bash bench/run.sh`.\n\nMachine:\n\n%s\n\n%s\n"
             "<!-- BENCH:END -->" % (a.date, mtext, "\n\n".join(blocks)))
    if a.tag:
        print("\n\n".join(blocks))
        print("\nwritten: %s (tagged %s: %s untouched)" % (a.results, a.tag,
                                                          a.doc))
        return
    doc = open(a.doc).read() if os.path.exists(a.doc) else \
        "# Performance\n\n<!-- BENCH:BEGIN -->\n<!-- BENCH:END -->\n"
    doc = re.sub(r"<!-- BENCH:BEGIN.*?<!-- BENCH:END -->",
                 lambda _: block, doc, flags=re.S)
    open(a.doc, "w").write(doc)
    print("\n\n".join(blocks))
    print("\nwritten: %s, %s" % (a.results, a.doc))


if __name__ == "__main__":
    main()
