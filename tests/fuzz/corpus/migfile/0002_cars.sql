-- revision: 0002
-- down_revision: 0001
-- message: cars and their models

-- migrate:up
CREATE TABLE cars.models (
    id          bigserial PRIMARY KEY,
    make        text NOT NULL,
    model       text NOT NULL,
    UNIQUE (make, model)
);

CREATE TABLE cars.cars (
    id          bigserial PRIMARY KEY,
    vin         text NOT NULL UNIQUE CHECK (length(vin) = 17),
    model_id    bigint NOT NULL REFERENCES cars.models (id),
    plate       text
);

-- migrate:down
DROP TABLE cars.cars;
DROP TABLE cars.models;
