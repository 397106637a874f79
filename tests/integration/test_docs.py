"""The documentation, read by a new user: what it names must exist, and where it
lists what the code decides (who may run what), the list must be whole."""
import os
import re
import shutil
import subprocess

import pytest

import migdtest
from migdtest import clean_env, wait_for

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))


def _read(*path):
    with open(os.path.join(REPO, *path), encoding="utf-8") as f:
        return f.read()


def _docs():
    """README.md, tests/README.md and every docs/*.md, as (name, text)."""
    names = ["README.md", "tests/README.md"] + ["docs/" + n for n in sorted(os.listdir(os.path.join(REPO, "docs")))
                             if n.endswith(".md")]
    return [(n, _read(n)) for n in names]


def _rendered(page, lines=False):
    """A man page as man(1) prints it, words joined across line breaks (or its
    lines, as printed)."""
    if not shutil.which("man"):
        pytest.skip("no man")
    p = subprocess.run(["man", "-l", os.path.join(REPO, "docs", page)], capture_output=True,
                       text=True, timeout=30, env=dict(clean_env(), MANWIDTH="80",
                                                       MAN_KEEP_FORMATTING="", LANG="C.UTF-8"))
    assert p.returncode == 0 and p.stderr == "", (page, p.stderr)
    if lines:
        return p.stdout.splitlines()
    return " ".join(re.sub("\u2010\n\\s*", "", p.stdout).split())


def _test_defs():
    """Every test function of tests/, by file name: {'test_x.py': {'test_y', ...}}."""
    out = {}
    for top, _dirs, files in os.walk(os.path.join(REPO, "tests")):
        for name in files:
            if re.match(r"test_\w+\.py$", name):
                with open(os.path.join(top, name), encoding="utf-8") as f:
                    out.setdefault(name, set()).update(
                        re.findall(r"^def (test_\w+)\(", f.read(), re.M))
    return out


def test_every_test_the_docs_name_exists():
    """reliability.md says which test proves each promise: a test renamed or
    removed left its row pointing at nothing (test_fleet.py's
    test_fleet_start_refused_without_socket_or_connections, gone since the start
    refusal was lifted)."""
    defs = _test_defs()
    missing = []
    for name, text in _docs():
        for f, t in re.findall(r"\b(test_\w+\.py)::(test_\w+)", text):
            if t not in defs.get(f, ()):
                missing.append("%s: %s::%s" % (name, f, t))
    assert not missing, missing


def test_every_test_file_the_docs_name_exists():
    """tests/README.md's example of running one file, `pytest -q
    tests/integration/test_engine.py -k drift`, named a file split up long ago:
    pytest found nothing to run."""
    files = set()
    for _top, _dirs, names in os.walk(os.path.join(REPO, "tests")):
        files.update(names)
    missing = ["%s: %s" % (name, f) for name, text in _docs()
               for f in sorted(set(re.findall(r"\b(test_\w+\.(?:py|c))\b", text)))
               if f not in files]
    assert not missing, missing


def _mutating_methods():
    """The methods daemon/cmd.c's table marks CMD_MUTATING: the code's word."""
    names = re.findall(r'\{ "(\w+)", CMD_MUTATING\b', _read("daemon", "cmd.c"))
    assert "upgrade" in names and "reload" in names, names
    return set(names)


def test_the_lists_of_mutating_commands_are_whole():
    """An operator choosing admin_group reads which commands need it in migd(8),
    migd.conf(5), configuration.md, deploy.md or the example configuration: each
    listed upgrade, downgrade, stamp, resolve and reload, not cancel, accept or
    adopt, which readers are refused too."""
    mutating = _mutating_methods()
    places = [
        ("migd.8", _rendered("migd.8"), r"Mutating requests \(([^)]*)\)"),
        ("migd.conf.5", _rendered("migd.conf.5"), r"mutating commands \(([^)]*)\)"),
        ("configuration.md", _read("docs", "configuration.md"), r"mutating methods \(([^)]*)\)"),
        ("deploy.md", " ".join(_read("docs", "deploy.md").split()), r"mutating ones \(([^)]*)\)"),
        ("conf/migd.conf", " ".join(_read("conf", "migd.conf").replace("#", " ").split()),
         r"mutating commands \(([^)]*)\)"),
    ]
    for name, text, pattern in places:
        lists = re.findall(pattern, text)
        assert lists, (name, pattern)
        for found in lists:
            words = set(re.findall(r"[a-z]+", found))
            assert words == mutating, (name, sorted(mutating - words), sorted(words - mutating))


def test_the_mutating_commands_are_marked_in_migctl_1():
    """migctl(1) marks each mutating command Mutating, under its heading; adopt's
    heading was cut in two, 'adopt [--from' and 'tool] Mutating.' in its text."""
    tags = [x.strip() for x in _rendered("migctl.1", lines=True) if re.match(r"^ {7}\S", x)]
    assert "adopt [--from tool [--table name]]" in tags, [x for x in tags if x.startswith("adopt")]
    text = _rendered("migctl.1")
    for cmd in _mutating_methods():
        assert re.search(r"\b%s\b.{0,120}? Mutating" % cmd, text), cmd


def test_every_man_page_renders_without_warnings():
    if not shutil.which("groff"):
        pytest.skip("no groff")
    for page in ("migctl.1", "migd.8", "migd.conf.5"):
        p = subprocess.run(["groff", "-man", "-ww", "-z", os.path.join(REPO, "docs", page)],
                           capture_output=True, text=True, timeout=30)
        assert p.returncode == 0 and p.stderr == "", (page, p.stderr)


def _anchor(heading):
    """The anchor GitHub gives a Markdown heading."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def test_every_link_between_the_docs_reaches_its_file_and_section():
    """A reader following configuration.md's 'see migrations.md' to the history's
    columns landed on migrations.md#history, a section that does not exist."""
    docs = {}
    for name, text in _docs():
        text = re.sub(r"```.*?```", "", text, flags=re.S)
        docs[name] = (text, {_anchor(h) for h in re.findall(r"^#+ (.*)$", text, re.M)})
    broken = []
    for name, (text, _) in docs.items():
        for target in re.findall(r"\]\(([^)\s]+)\)", text):
            if re.match(r"[a-z]+:", target):
                continue
            path, _, frag = target.partition("#")
            dest = os.path.normpath(os.path.join(os.path.dirname(name), path)) if path else name
            if not os.path.exists(os.path.join(REPO, dest)):
                broken.append("%s: %s (no such file)" % (name, target))
            elif frag and dest in docs and frag not in docs[dest][1]:
                broken.append("%s: %s (no such section)" % (name, target))
    assert not broken, broken


def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open("/proc/%d/stat" % pid) as f:
        return f.read().split()[2] != "Z"


def test_the_demo_left_running_stops_with_the_line_it_prints(tmp_path):
    """README's `bash examples/demo.sh --keep`, as root as README says: it printed
    'stop: kill PID; .../pg_ctl -D DIR/data stop', and that pg_ctl, typed as it
    was printed, refused ('pg_ctl: cannot be run as root'), leaving PostgreSQL
    running (and the directory behind).  The line now stops both and removes the
    directory."""
    out = tmp_path / "demo.out"
    env = dict(clean_env(), MIGD_BIN=migdtest.MIGD_BIN, MIGCTL_BIN=migdtest.MIGCTL_BIN)
    with open(out, "w") as f:
        p = subprocess.run(["bash", os.path.join(REPO, "examples", "demo.sh"), "--keep"],
                           stdout=f, stderr=subprocess.STDOUT, env=env, timeout=300,
                           stdin=subprocess.DEVNULL)
    text = out.read_text()
    stop = re.search(r"^stop: (.*)$", text, re.M)
    pid = int(re.search(r"\bkill (\d+);", stop.group(1)).group(1)) if stop else None
    work = re.search(r"-D (\S+)/data\b", stop.group(1)).group(1) if stop else None
    try:
        assert p.returncode == 0 and stop, text[-3000:]
        assert re.search(r"^state: +up_to_date$", text, re.M), text[-3000:]
        assert _alive(pid) and os.path.exists(os.path.join(work, "data", "postmaster.pid"))
        r = subprocess.run(stop.group(1), shell=True, capture_output=True, text=True,
                           timeout=60, env=clean_env(), stdin=subprocess.DEVNULL)
        assert r.returncode == 0, (stop.group(1), r.stdout, r.stderr)
        wait_for(lambda: not _alive(pid), 10, what="the demo's migd to stop")
        assert not os.path.exists(work), os.listdir(work)
    finally:
        if pid and _alive(pid):
            os.kill(pid, 15)
        if work and os.path.exists(os.path.join(work, "data", "postmaster.pid")):
            ctl = ["/usr/lib/postgresql/15/bin/pg_ctl", "-D", os.path.join(work, "data"),
                   "-m", "immediate", "-w", "stop"]
            subprocess.run((["runuser", "-u", "postgres", "--"] if os.getuid() == 0 else [])
                           + ctl, capture_output=True, timeout=60)
        if work:
            shutil.rmtree(work, ignore_errors=True)
