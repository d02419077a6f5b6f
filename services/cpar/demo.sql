-- Demo data of cpar, seeded at start-up when AULA_DEMO_DATA=1 (`aula up` and the compose
-- demo set it; a production install leaves it unset). Never in a migration: aula_runtime::demo.
-- Statements both SQLite and PostgreSQL accept, each idempotent (ON CONFLICT DO NOTHING): a
-- restart, a second replica, or a database that already holds these rows changes nothing.

-- Appointment 1 for user 1, at a fixed date far ahead (2030-03-04 17:00 UTC), so a
-- fresh start always has a future appointment to explore and no reminder fires for it.
INSERT INTO agendamentos (id, id_usuario, titulo, inicio_ms, duracao_minutos, estado, lembrete_enviado, criado_ms)
VALUES (1, 1, 'Plantão de dúvidas de Python', 1898874000000, 60, 'agendado', FALSE, 1735689600000)
ON CONFLICT (id) DO NOTHING;
