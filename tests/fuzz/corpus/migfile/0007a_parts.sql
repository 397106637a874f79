-- revision: 0007a
-- down_revision: 0006
-- message: spare parts inventory (one branch)

-- migrate:up
CREATE TABLE work_shop.parts (
    id          bigserial PRIMARY KEY,
    name        text NOT NULL,
    in_stock    integer NOT NULL DEFAULT 0
);

-- migrate:down
DROP TABLE work_shop.parts;
