-- midia: the media of each course (the same schema as migrations/postgres).
CREATE TABLE midias (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    id_curso BIGINT NOT NULL,
    titulo TEXT NOT NULL,
    tipo TEXT NOT NULL CHECK (tipo IN ('video', 'slides', 'texto')),
    url TEXT NOT NULL,
    duracao_segundos INTEGER NOT NULL DEFAULT 0 CHECK (duracao_segundos >= 0),
    ordem INTEGER NOT NULL,
    descricao TEXT NOT NULL DEFAULT '',
    -- epoch milliseconds
    criada_ms BIGINT NOT NULL
);

CREATE INDEX midias_por_curso ON midias (id_curso, ordem, id);

-- No rows here: the demo data (the courses, media, appointment and welcome a fresh `aula up`
-- shows) is seeded from ../../demo.sql when AULA_DEMO_DATA=1, so it never reaches a production
-- database. This file's first release inserted it; databases created then keep those rows, and
-- sqlx still sees the checksum they recorded (`released` in src/lib.rs).
