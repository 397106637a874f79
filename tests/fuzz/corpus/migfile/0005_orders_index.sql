-- revision: 0005
-- down_revision: 0004
-- message: index open orders without locking the table

-- CREATE INDEX CONCURRENTLY cannot run in a transaction: migd detects it
-- with PostgreSQL's parser and runs this revision statement by statement.

-- migrate:up
CREATE INDEX CONCURRENTLY orders_open_idx ON work_shop.orders (car_id) WHERE closed_at IS NULL;

-- migrate:down
DROP INDEX CONCURRENTLY work_shop.orders_open_idx;
