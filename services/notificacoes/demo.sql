-- Demo data of notificacoes, seeded at start-up when AULA_DEMO_DATA=1 (`aula up` and the compose
-- demo set it; a production install leaves it unset). Never in a migration: aula_runtime::demo.
-- Statements both SQLite and PostgreSQL accept, each idempotent (ON CONFLICT DO NOTHING): a
-- restart, a second replica, or a database that already holds these rows changes nothing.

-- A welcome notification for user 1.
INSERT INTO notificacoes (id_usuario, mensagem, lida, criada_ms, origem, chave)
VALUES (1, 'Bem-vindo à Aula! Explore os cursos e agende um plantão de dúvidas.', FALSE, 1735689600000, 'aula', 'demo-boas-vindas-1')
ON CONFLICT (chave) DO NOTHING;
