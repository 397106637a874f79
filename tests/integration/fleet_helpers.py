"""The fleet's test bed (issue 16 point 5): a PostgreSQL of its own with few connections
(max_connections = 25), many databases made from one template, a configuration with one
[database NAME] section per database, and a sampler that counts connections in
pg_stat_activity from a background thread while a test runs.

Usage:
    cluster = FleetCluster()            # initdb + start, max_connections 25
    names = cluster.create_fleet(60)    # fleet_000 .. fleet_059, from one template
    text = fleet_config(cluster, names, migrations_dir, socket_path, cap=8)
    with ConnSampler(cluster) as s:
        ...                             # s.max_total, s.max_migd, s.samples
    cluster.destroy()
"""

import os
import subprocess
import threading
import time

import psycopg2

import migdtest
from migdtest import PgCluster, clean_env

FLEET_MAX_CONNECTIONS = 25
FLEET_PREFIX = "fleet_"
FLEET_TEMPLATE = "fleet_template"


class FleetCluster(PgCluster):
    """A throwaway cluster like the suite's (Unix socket in its own directory, run by the
    same unprivileged user when we are root) but with max_connections as given, so a
    daemon that opened a connection per database would run out of them."""

    def __init__(self, max_connections=FLEET_MAX_CONNECTIONS, bindir=None, user=None):
        self.max_connections = max_connections
        super().__init__(bindir or migdtest.pg_bindir(), user or migdtest.pg_runas_user())
        try:
            self.start()
        except Exception:
            self.destroy()
            raise

    def _write_settings(self):
        super()._write_settings()
        path = os.path.join(self.data, "migdtest.conf")
        with open(path) as f:
            text = f.read()
        text = text.replace("max_connections = 100\n",
                            "max_connections = %d\n" % self.max_connections)
        assert "max_connections = %d\n" % self.max_connections in text, text
        with open(path, "w") as f:
            f.write(text)

    def psql_script(self, script, db="postgres", timeout=300):
        """Run a script through psql (each statement on its own, as -f does), stopping
        at the first error."""
        p = subprocess.run([self.psql_bin, "-X", "-q", "-v", "ON_ERROR_STOP=1",
                            "-h", self.sockdir, "-p", str(self.port), "-U", "postgres",
                            "-d", db, "-f", "-"],
                           input=script, env=clean_env(), capture_output=True, text=True,
                           timeout=timeout)
        if p.returncode != 0:
            raise RuntimeError("psql script failed: %s" % p.stderr)
        return p.stdout

    def create_fleet(self, n, prefix=FLEET_PREFIX, template_sql=None):
        """Create the template (with template_sql run in it) and n databases copied from
        it; return their names in order. PostgreSQL 15's default strategy (WAL_LOG)
        is used: FILE_COPY's two checkpoints per database made 100 databases take
        27 s here, against 6 s."""
        width = max(3, len(str(n - 1)))
        names = ["%s%0*d" % (prefix, width, i) for i in range(n)]
        self.psql('DROP DATABASE IF EXISTS "%s"' % FLEET_TEMPLATE)
        self.psql('CREATE DATABASE "%s"' % FLEET_TEMPLATE)
        if template_sql:
            self.psql_script(template_sql, db=FLEET_TEMPLATE)
        self.psql_script("".join('CREATE DATABASE "%s" TEMPLATE "%s";\n'
                                 % (name, FLEET_TEMPLATE) for name in names))
        return names

    def databases(self, prefix=FLEET_PREFIX):
        """The names of the databases starting with prefix, sorted."""
        out = self.psql("SELECT datname FROM pg_database WHERE left(datname, %d) = '%s' "
                        "AND datname <> '%s' ORDER BY 1"
                        % (len(prefix), prefix, FLEET_TEMPLATE))
        return out.split("\n") if out else []

    def dsn(self, db="postgres"):
        return "host=%s port=%d dbname=%s user=postgres" % (self.sockdir, self.port, db)


def fleet_config(cluster, names, directory, socket_path, cap=None, pool_size=1,
                 idle_close=None, extra_db=None, unnamed_conninfo=None):
    """The text of a configuration with one [database NAME] section per name, each
    reaching the database of that name on cluster; the unnamed [database] holds the
    daemon-wide settings and the defaults. extra_db: {name: {key: value}} added to
    those sections."""
    lines = ["[database]"]
    if unnamed_conninfo is not None:
        lines.append("conninfo = %s" % unnamed_conninfo)
    lines.append("pool_size = %d" % pool_size)
    lines.append("connect_timeout = 2")
    if cap is not None:
        lines.append("max_connections_total = %d" % cap)
    if idle_close is not None:
        lines.append("idle_close = %s" % idle_close)
    lines += ["", "[migrations]", "directory = %s" % directory, "", "[control]",
              "socket = %s" % socket_path, "", "[log]", "level = debug", ""]
    for name in names:
        lines.append("[database %s]" % name)
        lines.append("conninfo = %s" % cluster.conninfo(name))
        for k, v in ((extra_db or {}).get(name) or {}).items():
            lines.append("%s = %s" % (k, v))
        lines.append("")
    return "\n".join(lines)


SAMPLE_SQL = """
SELECT count(*) FILTER (WHERE backend_type = 'client backend'),
       count(*) FILTER (WHERE backend_type = 'client backend'
                          AND application_name = %s),
       count(DISTINCT datname) FILTER (WHERE backend_type = 'client backend'
                                         AND application_name = %s)
  FROM pg_stat_activity
 WHERE pid <> pg_backend_pid()
"""


class ConnSampler:
    """Counts connections in pg_stat_activity every interval seconds on a thread of its
    own (over one connection of its own, not counted): every client backend, migd's
    (application_name 'migd', what its pool announces) and how many databases migd's
    are spread over. The figures are the maxima seen; samples keeps every reading
    as (seconds since start, total, migd, databases)."""

    def __init__(self, cluster, interval=0.02, application_name="migd"):
        self.cluster = cluster
        self.interval = interval
        self.application_name = application_name
        self.samples = []
        self.max_total = 0
        self.max_migd = 0
        self.max_migd_dbs = 0
        self.error = None
        self._stop = threading.Event()
        self._thread = None
        self._conn = None

    def start(self):
        self._conn = psycopg2.connect(self.cluster.dsn(),
                                      application_name="fleet-sampler")
        self._conn.autocommit = True
        self._t0 = time.monotonic()
        self._thread = threading.Thread(target=self._run, name="conn-sampler",
                                        daemon=True)
        self._thread.start()
        return self

    def sample_once(self):
        """One reading, also recorded: (total, migd, databases)."""
        with self._conn.cursor() as cur:
            cur.execute(SAMPLE_SQL, (self.application_name, self.application_name))
            total, migd, dbs = cur.fetchone()
        self.samples.append((time.monotonic() - self._t0, total, migd, dbs))
        self.max_total = max(self.max_total, total)
        self.max_migd = max(self.max_migd, migd)
        self.max_migd_dbs = max(self.max_migd_dbs, dbs)
        return total, migd, dbs

    def _run(self):
        while not self._stop.is_set():
            try:
                self.sample_once()
            except Exception as e:   # reported by stop(): a sampler must not lie by silence
                self.error = e
                return
            self._stop.wait(self.interval)

    def stop(self):
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)
        if self._conn is not None:
            self._conn.close()
            self._conn = None
        if self.error is not None:
            raise AssertionError("the connection sampler failed: %r" % (self.error,))
        return self

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
        return False

    def summary(self):
        return ("%d samples: at most %d connections, %d of them migd's, on %d databases"
                % (len(self.samples), self.max_total, self.max_migd, self.max_migd_dbs))
