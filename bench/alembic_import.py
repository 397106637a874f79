#!/usr/bin/python3
"""Times `migctl import alembic` on a generated Alembic project.

    /usr/bin/python3 bench/alembic_import.py [N] [--reps R] [--keep]

Generates an Alembic project of N revisions (default 500) written as a team
writes them, with Alembic's op API (not op.execute of SQL): per unit of ten,
a schema, tables with foreign keys across schemas, an enum created with
checkfirst, added columns, indexes, a bulk insert and an UPDATE, a CREATE
INDEX CONCURRENTLY in an autocommit block, a two-revision branch with a
label, and the merge.  Then runs `migctl import alembic` R times (default
3) into a fresh directory (one Python process each), checks that the result
loads (`migctl revisions -d`), and prints each wall time and the median.
The acceptance target (issue 11) is under 20 s for N = 500.

migctl: $MIGCTL_BIN, else build/dev/migctl, else migctl on $PATH.
"""

import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HEADER = '''"""%(msg)s

Revision ID: %(rev)s
Revises: %(down_doc)s
"""
from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

revision = %(rev)r
down_revision = %(down)r
branch_labels = %(labels)r
depends_on = None
'''


def rid(i):
    return "%012x" % (0xb0000000000 + i)


def unit_body(i, u, k):
    """upgrade() and downgrade() of revision i (unit u, position k)."""
    s = "shop%d" % u
    prev = "shop%d" % (u - 1) if u > 0 else None
    if k == 0:
        return ('''
kind = postgresql.ENUM("open", "done", name="state", schema=%(s)r, create_type=False)


def upgrade():
    op.execute("CREATE SCHEMA IF NOT EXISTS %(s)s")
    kind.create(op.get_bind(), checkfirst=True)
    op.create_table("customers",
                    sa.Column("id", sa.BigInteger, primary_key=True),
                    sa.Column("name", sa.Text, nullable=False),
                    sa.Column("state", kind, nullable=False, server_default="open"),
                    schema=%(s)r)


def downgrade():
    op.drop_table("customers", schema=%(s)r)
    kind.drop(op.get_bind(), checkfirst=True)
''' % {"s": s})
    if k == 1:
        fk = ('sa.Column("previous_id", sa.BigInteger, sa.ForeignKey("%s.customers.id")),'
              % prev) if prev else ""
        return ('''

def upgrade():
    op.create_table("cars",
                    sa.Column("id", sa.BigInteger, primary_key=True),
                    sa.Column("vin", sa.String(17), nullable=False, unique=True),
                    sa.Column("owner_id", sa.BigInteger,
                              sa.ForeignKey("%(s)s.customers.id", ondelete="CASCADE")),
                    %(fk)s
                    schema=%(s)r)
    op.create_index("ix_cars_owner", "cars", ["owner_id"], schema=%(s)r)


def downgrade():
    op.drop_index("ix_cars_owner", table_name="cars", schema=%(s)r)
    op.drop_table("cars", schema=%(s)r)
''' % {"s": s, "fk": fk})
    if k == 2:
        return ('''

def upgrade():
    op.add_column("cars", sa.Column("colour", sa.String(20)), schema=%(s)r)
    op.add_column("cars", sa.Column("km", sa.Integer, server_default="0"), schema=%(s)r)


def downgrade():
    op.drop_column("cars", "km", schema=%(s)r)
    op.drop_column("cars", "colour", schema=%(s)r)
''' % {"s": s})
    if k == 3:
        return ('''

def upgrade():
    t = op.create_table("colours",
                        sa.Column("code", sa.String(8), primary_key=True),
                        sa.Column("name", sa.Text, nullable=False), schema=%(s)r)
    op.bulk_insert(t, [{"code": "red", "name": "Red"}, {"code": "blk", "name": "Black"},
                       {"code": "wht", "name": "White"}])
    op.execute("UPDATE %(s)s.cars SET colour = 'blk' WHERE colour IS NULL")


def downgrade():
    op.drop_table("colours", schema=%(s)r)
''' % {"s": s})
    if k == 4:
        return ('''

def upgrade():
    op.create_table("jobs",
                    sa.Column("id", sa.BigInteger, primary_key=True),
                    sa.Column("car_id", sa.BigInteger, sa.ForeignKey("%(s)s.cars.id"),
                              nullable=False),
                    sa.Column("hours", sa.Numeric(6, 2)),
                    sa.CheckConstraint("hours >= 0", name="jobs_hours"), schema=%(s)r)


def downgrade():
    op.drop_table("jobs", schema=%(s)r)
''' % {"s": s})
    if k == 5:
        return ('''

def upgrade():
    with op.get_context().autocommit_block():
        op.create_index("ix_jobs_car", "jobs", ["car_id"], schema=%(s)r,
                        postgresql_concurrently=True)


def downgrade():
    with op.get_context().autocommit_block():
        op.drop_index("ix_jobs_car", table_name="jobs", schema=%(s)r,
                      postgresql_concurrently=True)
''' % {"s": s})
    if k in (6, 7):         # the two sides of a branch
        col = "a" if k == 6 else "b"
        return ('''

def upgrade():
    op.add_column("jobs", sa.Column("note_%(c)s", sa.Text), schema=%(s)r)
    op.create_index("ix_jobs_note_%(c)s", "jobs", ["note_%(c)s"], schema=%(s)r)


def downgrade():
    op.drop_index("ix_jobs_note_%(c)s", table_name="jobs", schema=%(s)r)
    op.drop_column("jobs", "note_%(c)s", schema=%(s)r)
''' % {"s": s, "c": col})
    if k == 8:              # the merge
        return ('''

def upgrade():
    op.execute("COMMENT ON TABLE %(s)s.jobs IS 'jobs of workshop %(u)d'")


def downgrade():
    op.execute("COMMENT ON TABLE %(s)s.jobs IS NULL")
''' % {"s": s, "u": u})
    return ('''

def upgrade():
    op.create_table("invoices",
                    sa.Column("id", sa.BigInteger, primary_key=True),
                    sa.Column("job_id", sa.BigInteger, sa.ForeignKey("%(s)s.jobs.id")),
                    sa.Column("amount", sa.Numeric(10, 2), nullable=False), schema=%(s)r)


def downgrade():
    op.drop_table("invoices", schema=%(s)r)
''' % {"s": s})


def generate(n, root):
    os.makedirs(os.path.join(root, "versions"))
    with open(os.path.join(root, "alembic.ini"), "w") as f:
        f.write("[alembic]\nscript_location = %(here)s\n"
                "sqlalchemy.url = postgresql+psycopg2://localhost/bench\n")
    with open(os.path.join(root, "env.py"), "w") as f:
        f.write("from alembic import context\n\n"
                "if context.is_offline_mode():\n"
                "    context.configure(url=context.config.get_main_option("
                "'sqlalchemy.url'),\n"
                "                      literal_binds=True)\n"
                "    with context.begin_transaction():\n"
                "        context.run_migrations()\n"
                "else:\n"
                "    raise SystemExit('the benchmark renders offline only')\n")
    for i in range(n):
        u, k = divmod(i, 10)
        if i == 0:
            down = None
        elif k == 7:                    # the branch's second side
            down = rid(i - 2)
        elif k == 8:                    # the merge
            down = (rid(i - 2), rid(i - 1))
        else:
            down = rid(i - 1)
        if i == n - 1 and k in (6, 7):  # never end on an open branch
            down = rid(i - 1)
        labels = ("side%d" % u,) if k == 6 else None
        doc = {"msg": "unit %d step %d" % (u, k), "rev": rid(i),
               "down_doc": ", ".join(down) if isinstance(down, tuple) else (down or ""),
               "down": down, "labels": labels}
        with open(os.path.join(root, "versions", "%s_u%d_s%d.py" % (rid(i), u, k)),
                  "w") as f:
            f.write(HEADER % doc + unit_body(i, u, k))
    return os.path.join(root, "alembic.ini")


def migctl_bin():
    env = os.environ.get("MIGCTL_BIN")
    if env:
        return env
    here = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "build", "dev",
                        "migctl")
    return here if os.access(here, os.X_OK) else (shutil.which("migctl") or "migctl")


def main(argv):
    n, reps, keep = 500, 3, False
    args = list(argv)
    while args:
        a = args.pop(0)
        if a == "--reps":
            reps = int(args.pop(0))
        elif a == "--keep":
            keep = True
        else:
            n = int(a)
    work = tempfile.mkdtemp(prefix="migd-import-bench-")
    migctl = migctl_bin()
    try:
        ini = generate(n, os.path.join(work, "project"))
        times = []
        for r in range(reps):
            out = os.path.join(work, "migrations%d" % r)
            t0 = time.monotonic()
            p = subprocess.run([migctl, "import", "alembic", ini, "--out", out],
                               capture_output=True, text=True, timeout=600)
            dt = time.monotonic() - t0
            if p.returncode != 0:
                sys.stderr.write(p.stderr)
                return 1
            files = [f for f in os.listdir(out) if f.endswith(".sql")]
            assert len(files) == n, (len(files), n)
            times.append(dt)
            print("run %d: %d revisions imported in %.2f s" % (r + 1, n, dt))
        p = subprocess.run([migctl, "revisions", "-d", out], capture_output=True,
                           text=True, timeout=120)
        if p.returncode != 0:
            sys.stderr.write(p.stderr)
            return 1
        print("migctl import alembic, %d revisions: median %.2f s (min %.2f, max %.2f, "
              "%d runs); the files load (%d lines of migctl revisions)" % (
                  n, statistics.median(times), min(times), max(times), reps,
                  len(p.stdout.splitlines())))
        return 0
    finally:
        if keep:
            print("kept %s" % work)
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
