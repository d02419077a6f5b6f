-- cursos: the catalogue and the enrolments (the same schema as migrations/postgres).
-- The outbox table is in the runtime's migrations/outbox (`migrations!(outbox)`).
CREATE TABLE cursos (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    nome TEXT NOT NULL,
    descricao TEXT NOT NULL DEFAULT '',
    -- workload in hours
    carga_horaria INTEGER NOT NULL DEFAULT 0 CHECK (carga_horaria >= 0),
    instrutor TEXT NOT NULL DEFAULT '',
    categoria TEXT NOT NULL DEFAULT '',
    -- epoch milliseconds
    criado_ms BIGINT NOT NULL
);

-- One row per (user, course): Enroll is idempotent through this key (INSERT ... ON CONFLICT DO NOTHING).
CREATE TABLE inscricoes (
    id_usuario BIGINT NOT NULL,
    id_curso BIGINT NOT NULL REFERENCES cursos (id) ON DELETE CASCADE,
    -- epoch milliseconds
    criada_ms BIGINT NOT NULL,
    PRIMARY KEY (id_usuario, id_curso)
);

CREATE INDEX inscricoes_por_curso ON inscricoes (id_curso);

-- No rows here: the demo data (the courses, media, appointment and welcome a fresh `aula up`
-- shows) is seeded from ../../demo.sql when AULA_DEMO_DATA=1, so it never reaches a production
-- database. This file's first release inserted it; databases created then keep those rows, and
-- sqlx still sees the checksum they recorded (`released` in src/lib.rs).
