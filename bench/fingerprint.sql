-- A fingerprint of the workshop schemas: every schema, relation, column,
-- default, index, constraint, view definition and row count outside the
-- tools' own bookkeeping (public: alembic_version, migd_history,
-- schema_migrations, floor_version; sqitch: Sqitch's registry).
-- psql -XAt -f fingerprint.sql prints "md5 objects rows".
WITH ns AS (
    SELECT oid, nspname FROM pg_namespace
    WHERE nspname NOT IN ('public', 'sqitch', 'information_schema')
      AND nspname NOT LIKE 'pg\_%'
), items AS (
    SELECT 'n ' || nspname AS item FROM ns
    UNION ALL
    SELECT format('c %s.%s %s', ns.nspname, c.relname, c.relkind)
    FROM pg_class c JOIN ns ON ns.oid = c.relnamespace
    UNION ALL
    SELECT format('a %s.%s %s %s %s %s', ns.nspname, c.relname, a.attname,
                  format_type(a.atttypid, a.atttypmod), a.attnotnull,
                  pg_get_expr(d.adbin, d.adrelid))
    FROM pg_attribute a
    JOIN pg_class c ON c.oid = a.attrelid
    JOIN ns ON ns.oid = c.relnamespace
    LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
    WHERE a.attnum > 0 AND NOT a.attisdropped
    UNION ALL
    SELECT 'i ' || pg_get_indexdef(i.indexrelid)
    FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
    JOIN ns ON ns.oid = c.relnamespace
    UNION ALL
    SELECT format('k %s.%s %s %s', ns.nspname, co.conname,
                  co.conrelid::regclass, pg_get_constraintdef(co.oid))
    FROM pg_constraint co JOIN ns ON ns.oid = co.connamespace
    UNION ALL
    SELECT format('v %s.%s %s', ns.nspname, c.relname, pg_get_viewdef(c.oid))
    FROM pg_class c JOIN ns ON ns.oid = c.relnamespace
    WHERE c.relkind = 'v'
    UNION ALL
    SELECT format('d %s.%s %s', ns.nspname, c.relname,
                  obj_description(c.oid, 'pg_class'))
    FROM pg_class c JOIN ns ON ns.oid = c.relnamespace
    WHERE obj_description(c.oid, 'pg_class') IS NOT NULL
    UNION ALL
    SELECT format('r %s.%s %s', ns.nspname, c.relname,
                  (xpath('/row/n/text()', query_to_xml(format(
                      'SELECT count(*) AS n FROM %I.%I', ns.nspname,
                      c.relname), false, true, '')))[1]::text)
    FROM pg_class c JOIN ns ON ns.oid = c.relnamespace
    WHERE c.relkind = 'r'
)
SELECT md5(string_agg(item, E'\n' ORDER BY item)) || ' ' || count(*)
FROM items;
