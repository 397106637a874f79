-- revision: 0003
-- down_revision: 0002
-- message: owners and mechanics

-- migrate:up
CREATE TABLE participants.owners (
    id          bigserial PRIMARY KEY,
    name        text NOT NULL,
    phone       text,
    -- a comment; with a semicolon; inside
    note        text DEFAULT 'call first; never after 8pm'
);

CREATE TABLE participants.mechanics (
    id          bigserial PRIMARY KEY,
    name        text NOT NULL,
    hourly_rate numeric(8, 2) NOT NULL DEFAULT 55.00
);

ALTER TABLE cars.cars ADD COLUMN owner_id bigint REFERENCES participants.owners (id);

-- migrate:down
ALTER TABLE cars.cars DROP COLUMN owner_id;
DROP TABLE participants.mechanics;
DROP TABLE participants.owners;
