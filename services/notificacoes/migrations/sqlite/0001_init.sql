-- Each user's notifications. `chave` is the sender's idempotency key: a retry with the same key
-- is stored once. Times are epoch milliseconds.
CREATE TABLE notificacoes (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    id_usuario BIGINT NOT NULL,
    mensagem TEXT NOT NULL,
    lida BOOLEAN NOT NULL DEFAULT FALSE,
    criada_ms BIGINT NOT NULL,
    origem TEXT NOT NULL,
    chave TEXT UNIQUE
);

CREATE INDEX notificacoes_usuario ON notificacoes (id_usuario, id);

-- No rows here: the demo data (the courses, media, appointment and welcome a fresh `aula up`
-- shows) is seeded from ../../demo.sql when AULA_DEMO_DATA=1, so it never reaches a production
-- database. This file's first release inserted it; databases created then keep those rows, and
-- sqlx still sees the checksum they recorded (`released` in src/lib.rs).
