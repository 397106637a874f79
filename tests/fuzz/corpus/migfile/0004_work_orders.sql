-- revision: 0004
-- down_revision: 0003
-- message: work orders and their total

-- migrate:up
CREATE TABLE work_shop.orders (
    id          bigserial PRIMARY KEY,
    car_id      bigint NOT NULL REFERENCES cars.cars (id),
    mechanic_id bigint REFERENCES participants.mechanics (id),
    opened_at   timestamptz NOT NULL DEFAULT now(),
    closed_at   timestamptz,
    hours       numeric(6, 2) NOT NULL DEFAULT 0,
    parts_cost  numeric(10, 2) NOT NULL DEFAULT 0
);

/* A PL/pgSQL function: its dollar-quoted body holds semicolons. */
CREATE FUNCTION work_shop.order_total(order_id bigint) RETURNS numeric
LANGUAGE plpgsql STABLE AS $body$
DECLARE
    total numeric;
BEGIN
    SELECT o.hours * coalesce(m.hourly_rate, 0) + o.parts_cost
      INTO total
      FROM work_shop.orders o
      LEFT JOIN participants.mechanics m ON m.id = o.mechanic_id
     WHERE o.id = order_id;
    RETURN coalesce(total, 0);
END;
$body$;

INSERT INTO cars.models (make, model) VALUES ('Volvo', 'V70; estate'), ('Fiat', 'Panda');

-- migrate:down
DROP FUNCTION work_shop.order_total(bigint);
DROP TABLE work_shop.orders;
DELETE FROM cars.models WHERE (make, model) IN (('Volvo', 'V70; estate'), ('Fiat', 'Panda'));
