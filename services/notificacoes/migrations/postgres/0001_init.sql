-- Each user's notifications. `chave` is the sender's idempotency key: a retry with the same key
-- is stored once. Times are epoch milliseconds.
CREATE TABLE notificacoes (
    id BIGSERIAL PRIMARY KEY,
    id_usuario BIGINT NOT NULL,
    mensagem TEXT NOT NULL,
    lida BOOLEAN NOT NULL DEFAULT FALSE,
    criada_ms BIGINT NOT NULL,
    origem TEXT NOT NULL,
    chave TEXT UNIQUE
);

CREATE INDEX notificacoes_usuario ON notificacoes (id_usuario, id);

-- Every stored notification is announced on a channel named after the schema (payload: its id),
-- so each replica's subscribers hear about it whichever replica stored it. Rows skipped by
-- ON CONFLICT DO NOTHING fire no trigger, so a retried key is announced once.
CREATE FUNCTION notificacoes_anunciar() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify(TG_TABLE_SCHEMA, NEW.id::text);
    RETURN NEW;
END;
$$;

CREATE TRIGGER notificacoes_anunciar AFTER INSERT ON notificacoes
    FOR EACH ROW EXECUTE FUNCTION notificacoes_anunciar();

-- No rows here: the demo data (the courses, media, appointment and welcome a fresh `aula up`
-- shows) is seeded from ../../demo.sql when AULA_DEMO_DATA=1, so it never reaches a production
-- database. This file's first release inserted it; databases created then keep those rows, and
-- sqlx still sees the checksum they recorded (`released` in src/lib.rs).
