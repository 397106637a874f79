#!/usr/bin/env python3
"""Generates the benchmark's migrations, the same SQL for every tool.

    gen.py workshop N OUTDIR   N car-workshop migrations, as
        OUTDIR/migd/NNNNN_*.sql         migd revision files
        OUTDIR/dbmate/*.sql             dbmate files (-- migrate:up/down)
        OUTDIR/alembic/...              an Alembic project (op.execute)
        OUTDIR/sqitch/...               a Sqitch project (deploy/revert)
        OUTDIR/floor/up_1tx.sql         every up section, psql -1
        OUTDIR/floor/up_each.sql        BEGIN; up; version UPDATE; COMMIT; each
        OUTDIR/floor/up_nobook.sql      BEGIN; up; COMMIT; each (no bookkeeping)
        OUTDIR/floor/down_1tx.sql, down_each.sql   the same, backwards
        OUTDIR/floor/up_batched.sql, down_batched.sql   each migration as one
                                        multi-statement query (psql "\\;"):
                                        one round trip per migration
    gen.py small N OUTDIR      N tiny revision files (a chain) for the
                               daemon's memory and plan-time figures

Migrations come in units of eight, each unit in its own schema wsU:
customers (with a new schema), cars with a foreign key, added columns,
indexes, work orders with a named foreign key and index, data inserts, more
data and an update, a view and comments.  Down sections undo each one; no
down section drops a schema (migd refuses DROP SCHEMA in a down section, and
the others get the same SQL), so after rollback-all every tool leaves the
same empty schemas.
"""
import os
import sys


def unit_migration(i):
    """Returns (message, [up statements], [down statements]) of migration i."""
    u, k = divmod(i, 8)
    s = "ws%d" % u
    if k == 0:
        return ("customers of workshop %d" % u, [
            "CREATE SCHEMA %s" % s,
            "CREATE TABLE %s.customers (\n"
            "    id         bigserial PRIMARY KEY,\n"
            "    name       text NOT NULL,\n"
            "    email      text UNIQUE,\n"
            "    phone      text,\n"
            "    created_at timestamptz NOT NULL DEFAULT now()\n"
            ")" % s,
        ], ["DROP TABLE %s.customers" % s])
    if k == 1:
        return ("cars of workshop %d" % u, [
            "CREATE TABLE %s.cars (\n"
            "    id          bigserial PRIMARY KEY,\n"
            "    customer_id bigint NOT NULL REFERENCES %s.customers (id),\n"
            "    vin         varchar(17) NOT NULL UNIQUE,\n"
            "    make        text NOT NULL,\n"
            "    model       text NOT NULL,\n"
            "    year        smallint CHECK (year > 1885)\n"
            ")" % (s, s),
        ], ["DROP TABLE %s.cars" % s])
    if k == 2:
        return ("mileage and colour of cars %d" % u, [
            "ALTER TABLE %s.cars ADD COLUMN mileage integer NOT NULL "
            "DEFAULT 0, ADD COLUMN colour text" % s,
            "ALTER TABLE %s.customers ADD COLUMN notes text" % s,
        ], [
            "ALTER TABLE %s.customers DROP COLUMN notes" % s,
            "ALTER TABLE %s.cars DROP COLUMN colour, DROP COLUMN mileage"
            % s,
        ])
    if k == 3:
        return ("indexes of workshop %d" % u, [
            "CREATE INDEX cars_make_model_idx ON %s.cars (make, model)" % s,
            "CREATE INDEX customers_lower_name_idx ON %s.customers "
            "(lower(name))" % s,
        ], [
            "DROP INDEX %s.customers_lower_name_idx" % s,
            "DROP INDEX %s.cars_make_model_idx" % s,
        ])
    if k == 4:
        return ("work orders of workshop %d" % u, [
            "CREATE TABLE %s.work_orders (\n"
            "    id          bigserial PRIMARY KEY,\n"
            "    car_id      bigint NOT NULL,\n"
            "    opened_at   timestamptz NOT NULL DEFAULT now(),\n"
            "    description text,\n"
            "    total       numeric(10,2) NOT NULL DEFAULT 0\n"
            ")" % s,
            "ALTER TABLE %s.work_orders ADD CONSTRAINT work_orders_car_fk "
            "FOREIGN KEY (car_id) REFERENCES %s.cars (id) ON DELETE CASCADE"
            % (s, s),
            "CREATE INDEX work_orders_car_idx ON %s.work_orders (car_id)" % s,
        ], ["DROP TABLE %s.work_orders" % s])
    if k == 5:
        vals = ",\n".join(
            "    ('customer %d-%d', 'c%d-%d@example.org', '+49 30 %07d')"
            % (u, n, u, n, u * 100 + n) for n in range(20))
        return ("customers and cars data %d" % u, [
            "INSERT INTO %s.customers (name, email, phone) VALUES\n%s"
            % (s, vals),
            "INSERT INTO %s.cars (customer_id, vin, make, model, year)\n"
            "SELECT c.id, 'VIN%05d' || lpad(c.id::text, 8, '0'), "
            "(ARRAY['VW', 'Opel', 'BMW', 'Skoda'])[1 + c.id %% 4], "
            "'Model ' || c.id, 2000 + (c.id %% 20)::smallint\n"
            "FROM %s.customers c" % (s, u, s),
        ], [
            "DELETE FROM %s.cars" % s,
            "DELETE FROM %s.customers" % s,
        ])
    if k == 6:
        return ("work orders data %d" % u, [
            "INSERT INTO %s.work_orders (car_id, description, total)\n"
            "SELECT c.id, 'inspection of ' || c.vin, 49.90 + c.id %% 7\n"
            "FROM %s.cars c, generate_series(1, 3)" % (s, s),
            "UPDATE %s.cars SET mileage = 10000 + id * 13" % s,
        ], [
            "UPDATE %s.cars SET mileage = 0" % s,
            "DELETE FROM %s.work_orders" % s,
        ])
    return ("open orders view %d" % u, [
        "CREATE VIEW %s.open_orders AS\n"
        "SELECT o.id, o.opened_at, c.vin, cu.name AS customer, o.total\n"
        "FROM %s.work_orders o JOIN %s.cars c ON c.id = o.car_id\n"
        "JOIN %s.customers cu ON cu.id = c.customer_id" % (s, s, s, s),
        "COMMENT ON TABLE %s.work_orders IS 'one visit of a car'" % s,
    ], [
        "COMMENT ON TABLE %s.work_orders IS NULL" % s,
        "DROP VIEW %s.open_orders" % s,
    ])


def rev(i):
    return "%05d" % (i + 1)


def body(stmts):
    return "".join(st + ";\n" for st in stmts)


def write(path, text):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(text)


def gen_workshop(n, out):
    migs = [unit_migration(i) for i in range(n)]
    # migd
    for i, (msg, up, down) in enumerate(migs):
        write(os.path.join(out, "migd", "%s_m.sql" % rev(i)),
              "-- revision: %s\n-- down_revision: %s\n-- message: %s\n\n"
              "-- migrate:up\n%s\n-- migrate:down\n%s"
              % (rev(i), rev(i - 1) if i else "none", msg, body(up),
                 body(down)))
    # dbmate: the same sections; versions are numbers that sort
    for i, (msg, up, down) in enumerate(migs):
        write(os.path.join(out, "dbmate", "2024%010d_m.sql" % (i + 1)),
              "-- migrate:up\n%s\n-- migrate:down\n%s" % (body(up),
                                                         body(down)))
    # Alembic: one op.execute per statement, as people write them
    a = os.path.join(out, "alembic")
    write(os.path.join(a, "alembic.ini"),
          "[alembic]\nscript_location = %s\n\n"
          "[loggers]\nkeys = root\n[handlers]\nkeys = null\n"
          "[formatters]\nkeys = plain\n"
          "[logger_root]\nlevel = WARN\nhandlers = null\n"
          "[handler_null]\nclass = NullHandler\nargs = ()\n"
          "formatter = plain\n[formatter_plain]\nformat = %%(message)s\n"
          % a)
    write(os.path.join(a, "script.py.mako"), "")
    # transaction_per_migration: each migration in its own transaction,
    # as migd, dbmate and the per-migration floor do (Alembic's default
    # is one transaction for the whole run on PostgreSQL).
    write(os.path.join(a, "env.py"),
          "import os\n"
          "from alembic import context\n"
          "from sqlalchemy import create_engine, pool\n"
          "url = os.environ['BENCH_SQLA_URL']\n"
          "one_tx = os.environ.get('BENCH_ALEMBIC_ONE_TX') == '1'\n"
          "engine = create_engine(url, poolclass=pool.NullPool)\n"
          "with engine.connect() as connection:\n"
          "    context.configure(connection=connection,\n"
          "                      transaction_per_migration=not one_tx)\n"
          "    with context.begin_transaction():\n"
          "        context.run_migrations()\n")
    for i, (msg, up, down) in enumerate(migs):
        def ops(stmts):
            return "".join("    op.execute(%r)\n" % st for st in stmts)
        write(os.path.join(a, "versions", "%s_m.py" % rev(i)),
              "%r\nfrom alembic import op\n\nrevision = %r\n"
              "down_revision = %r\nbranch_labels = None\ndepends_on = None\n"
              "\n\ndef upgrade():\n%s\n\ndef downgrade():\n%s"
              % (msg, "r" + rev(i), "r" + rev(i - 1) if i else None,
                 ops(up), ops(down)))
    # Sqitch: deploy and revert scripts with their own BEGIN/COMMIT, as
    # `sqitch add` writes them; no verify scripts.
    q = os.path.join(out, "sqitch")
    write(os.path.join(q, "sqitch.conf"),
          "[core]\n\tengine = pg\n\tplan_file = sqitch.plan\n"
          "\ttop_dir = .\n[deploy]\n\tverify = false\n[rebase]\n"
          "\tverify = false\n")
    plan = ["%syntax-version=1.0.0", "%project=bench", ""]
    for i, (msg, up, down) in enumerate(migs):
        name = "m" + rev(i)
        plan.append("%s 2024-01-01T00:00:00Z Bench <bench@example.org> # %s"
                    % (name, msg))
        write(os.path.join(q, "deploy", name + ".sql"),
              "BEGIN;\n\n%s\nCOMMIT;\n" % body(up))
        write(os.path.join(q, "revert", name + ".sql"),
              "BEGIN;\n\n%s\nCOMMIT;\n" % body(down))
    write(os.path.join(q, "sqitch.plan"), "\n".join(plan) + "\n")
    # The floors: psql, with a one-row version table (floor_version)
    f = os.path.join(out, "floor")
    ver = "UPDATE public.floor_version SET version_num = '%s'"
    up_all = "".join(body(up) for _, up, _ in migs)
    down_all = "".join(body(down) for _, _, down in reversed(migs))
    write(os.path.join(f, "up_1tx.sql"),
          up_all + (ver % rev(n - 1)) + ";\n")
    write(os.path.join(f, "down_1tx.sql"), down_all + (ver % "") + ";\n")
    write(os.path.join(f, "up_each.sql"), "".join(
        "BEGIN;\n%s%s;\nCOMMIT;\n" % (body(up), ver % rev(i))
        for i, (_, up, _) in enumerate(migs)))
    write(os.path.join(f, "down_each.sql"), "".join(
        "BEGIN;\n%s%s;\nCOMMIT;\n" % (body(migs[i][2]),
                                      ver % (rev(i - 1) if i else ""))
        for i in reversed(range(n))))

    # The same without any bookkeeping: what the statements alone cost.
    write(os.path.join(f, "up_nobook.sql"), "".join(
        "BEGIN;\n%sCOMMIT;\n" % body(up) for _, up, _ in migs))
    write(os.path.join(f, "down_nobook.sql"), "".join(
        "BEGIN;\n%sCOMMIT;\n" % body(migs[i][2])
        for i in reversed(range(n))))

    def batched(stmts, v):
        return " \\;\n".join(["BEGIN"] + stmts + [v, "COMMIT"]) + ";\n"
    write(os.path.join(f, "up_batched.sql"), "".join(
        batched(up, ver % rev(i)) for i, (_, up, _) in enumerate(migs)))
    write(os.path.join(f, "down_batched.sql"), "".join(
        batched(migs[i][2], ver % (rev(i - 1) if i else ""))
        for i in reversed(range(n))))
    write(os.path.join(f, "setup.sql"),
          "CREATE TABLE public.floor_version (version_num varchar(32) "
          "NOT NULL);\nINSERT INTO public.floor_version VALUES ('');\n")
    # the list of schemas, for migd.conf (none: the files create them)
    return migs


def gen_small(n, out):
    """A chain of n tiny revisions; 100 files a directory."""
    for i in range(n):
        d = os.path.join(out, "d%04d" % (i // 100))
        if i % 100 == 0:
            os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, "r%06d.sql" % i), "w") as f:
            f.write("-- revision: r%06d\n-- down_revision: %s\n"
                    "-- message: small %d\n\n-- migrate:up\n"
                    "CREATE TABLE small.t%d (id integer PRIMARY KEY, "
                    "v text);\n\n-- migrate:down\nDROP TABLE small.t%d;\n"
                    % (i, "r%06d" % (i - 1) if i else "none", i, i, i))


def main():
    if len(sys.argv) != 4 or sys.argv[1] not in ("workshop", "small"):
        sys.exit("usage: gen.py workshop|small N OUTDIR")
    n = int(sys.argv[2])
    out = sys.argv[3]
    if sys.argv[1] == "workshop":
        gen_workshop(n, out)
    else:
        gen_small(n, out)


if __name__ == "__main__":
    main()
