-- revision: 0008
-- down_revision: 0007a, 0007b
-- message: merge parts and order status

-- migrate:up

-- migrate:down
