#!/usr/bin/python3
"""Compares `migctl lint` with Squawk on the same files.

    /usr/bin/python3 bench/lint_squawk.py

For each fixture directory (tests/fixtures/realworld/*, tests/fixtures/lint),
runs Squawk (`npm exec --yes squawk-cli -- --reporter json FILES`) and
`migctl --json lint -d DIR` (each revision alone), and prints per rule how
many findings each tool made, then for rules both have, the (file, line)
pairs only one of them reports (Squawk's lines are 0-based; they are shown
1-based).  docs/lint.md says why migd does not make the findings it leaves.

migctl: $MIGCTL_BIN, else build/dev/migctl.
"""
import collections
import glob
import json
import os
import subprocess

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
os.chdir(ROOT)
B = os.environ.get("MIGCTL_BIN") or os.path.join(ROOT, "build/dev/migctl")
dirs=sorted(glob.glob("tests/fixtures/realworld/*/"))+["tests/fixtures/lint/"]
sq=collections.Counter(); mg=collections.Counter()
sqf=collections.defaultdict(set); mgf=collections.defaultdict(set)
for d in dirs:
    files=sorted(glob.glob(d+"*.sql"))
    p=subprocess.run(["npm","exec","--yes","squawk-cli","--","--reporter","json"]+files,capture_output=True,text=True)
    for f in json.loads(p.stdout or "[]"):
        sq[f["rule_name"]]+=1; sqf[f["rule_name"]].add((os.path.basename(f["file"]), f["line"]+1))
    p=subprocess.run([B,"--json","lint","-d",d],capture_output=True,text=True)
    for f in json.loads(p.stdout)["findings"]:
        mg[f["rule"]]+=1; mgf[f["rule"]].add((os.path.basename(f["file"]), f["line"]))
rules=sorted(set(sq)|set(mg))
print("%-46s %6s %6s"%("rule","squawk","migd"))
for r in rules: print("%-46s %6d %6d"%(r,sq[r],mg[r]))
for r in rules:
    if sq[r] and mg[r] and sqf[r]!=mgf[r]:
        print(r, "squawk only:", sorted(sqf[r]-mgf[r])[:8], "migd only:", sorted(mgf[r]-sqf[r])[:8])
