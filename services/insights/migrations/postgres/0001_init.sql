-- One row per answered question, keyed by the chatbot's interaction id (recording is
-- idempotent). `id_curso` is NULL for interactions registered through the seed's
-- RegisterMetrics, which carries no course. Times are epoch milliseconds.
CREATE TABLE interacoes (
    id_interacao TEXT PRIMARY KEY,
    id_curso BIGINT,
    id_usuario BIGINT,
    latencia_ms BIGINT NOT NULL DEFAULT 0,
    modelo TEXT NOT NULL DEFAULT '',
    sucesso BOOLEAN NOT NULL DEFAULT TRUE,
    criada_ms BIGINT NOT NULL
);

CREATE INDEX interacoes_curso ON interacoes (id_curso);
