-- Appointments (office hours). Times are epoch milliseconds. `lembrete_enviado` is claimed
-- with a conditional UPDATE by the reminder worker, so each reminder is sent once however many
-- replicas share the database. The outbox table is in the runtime's migrations/outbox.
CREATE TABLE agendamentos (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    id_usuario BIGINT NOT NULL,
    titulo TEXT NOT NULL,
    inicio_ms BIGINT NOT NULL,
    duracao_minutos INTEGER NOT NULL,
    estado TEXT NOT NULL DEFAULT 'agendado',
    lembrete_enviado BOOLEAN NOT NULL DEFAULT FALSE,
    criado_ms BIGINT NOT NULL
);

CREATE INDEX agendamentos_usuario ON agendamentos (id_usuario, id);
CREATE INDEX agendamentos_lembrete ON agendamentos (estado, lembrete_enviado, inicio_ms);

-- No rows here: the demo data (the courses, media, appointment and welcome a fresh `aula up`
-- shows) is seeded from ../../demo.sql when AULA_DEMO_DATA=1, so it never reaches a production
-- database. This file's first release inserted it; databases created then keep those rows, and
-- sqlx still sees the checksum they recorded (`released` in src/lib.rs).
