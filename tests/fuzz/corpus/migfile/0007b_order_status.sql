-- revision: 0007b
-- down_revision: 0006
-- message: order status (another branch)

-- migrate:up
DO $$
BEGIN
    -- A DO block: one statement to migd, however many inside.
    IF NOT EXISTS (SELECT 1 FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
                    WHERE t.typname = 'order_status' AND n.nspname = 'work_shop') THEN
        CREATE TYPE work_shop.order_status AS ENUM ('open', 'waiting_parts', 'done');
    END IF;
END
$$;

ALTER TABLE work_shop.orders ADD COLUMN status work_shop.order_status NOT NULL DEFAULT 'open';

-- migrate:down
ALTER TABLE work_shop.orders DROP COLUMN status;
DROP TYPE work_shop.order_status;
