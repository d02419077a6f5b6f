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

-- Demo data: a welcome notification for user 1.
INSERT INTO notificacoes (id_usuario, mensagem, lida, criada_ms, origem, chave)
VALUES (1, 'Bem-vindo à Aula! Explore os cursos e agende um plantão de dúvidas.', FALSE, 1735689600000, 'aula', 'demo-boas-vindas-1');
