-- Appointments (office hours). Times are epoch milliseconds. `lembrete_enviado` is claimed
-- with a conditional UPDATE by the reminder worker, so each reminder is sent once however many
-- replicas share the database. The outbox table is created by the runtime's Outbox.
CREATE TABLE agendamentos (
    id BIGSERIAL PRIMARY KEY,
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

-- Demo data: appointment 1 for user 1, at a fixed date far ahead (2030-03-04 17:00 UTC), so a
-- fresh start always has a future appointment to explore and no reminder fires for it.
INSERT INTO agendamentos (id_usuario, titulo, inicio_ms, duracao_minutos, estado, lembrete_enviado, criado_ms)
VALUES (1, 'Plantão de dúvidas de Python', 1898874000000, 60, 'agendado', FALSE, 1735689600000);
