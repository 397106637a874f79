-- revision: 0006
-- down_revision: 0005
-- message: invoices, in a schema no configuration lists

-- No file creates the schema "billing" and migd.conf does not list it:
-- migd finds it by parsing this statement and creates it before the run.

-- migrate:up
CREATE TABLE billing.invoices (
    id          bigserial PRIMARY KEY,
    order_id    bigint NOT NULL REFERENCES work_shop.orders (id),
    amount      numeric(10, 2) NOT NULL,
    issued_at   timestamptz NOT NULL DEFAULT now()
);

-- migrate:down
DROP TABLE billing.invoices;
