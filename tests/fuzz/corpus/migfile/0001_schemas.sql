-- revision: 0001
-- down_revision: none
-- message: create the workshop's schemas

-- The first revision creates the schemas that later revisions fill, as the
-- Alembic project we replace did.  migd also ensures them before every run
-- ([migrations] schemas), and no downgrade ever drops them.

-- migrate:up
CREATE SCHEMA IF NOT EXISTS cars;
CREATE SCHEMA IF NOT EXISTS participants;
CREATE SCHEMA IF NOT EXISTS work_shop;

-- migrate:down
-- Schemas stay: a downgrade never drops one, so no data is lost.
