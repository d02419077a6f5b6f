-- GetStatus' counts, kept in a row by triggers in the transaction of every write (Enroll,
-- Unenroll, a course added or removed, the cascade of its enrolments), so that reading them
-- costs the same with ten enrolments or a million: the two COUNT(*) took 24 ms at a million.
-- SQLite has one writer at a time, so one row (fatia 0) holds them; the same query as
-- PostgreSQL's, which spreads them over several rows, sums them.
CREATE TABLE contagens (
    fatia INTEGER PRIMARY KEY,
    cursos BIGINT NOT NULL,
    inscricoes BIGINT NOT NULL
);

-- Initialised from the rows already there (this migration runs in one write transaction).
INSERT INTO contagens (fatia, cursos, inscricoes)
SELECT 0, (SELECT COUNT(*) FROM cursos), (SELECT COUNT(*) FROM inscricoes);

-- A row skipped by ON CONFLICT DO NOTHING (an enrolment that exists) fires no trigger.
CREATE TRIGGER contagens_curso_novo AFTER INSERT ON cursos
BEGIN
    UPDATE contagens SET cursos = cursos + 1 WHERE fatia = 0;
END;

CREATE TRIGGER contagens_curso_removido AFTER DELETE ON cursos
BEGIN
    UPDATE contagens SET cursos = cursos - 1 WHERE fatia = 0;
END;

CREATE TRIGGER contagens_inscricao_nova AFTER INSERT ON inscricoes
BEGIN
    UPDATE contagens SET inscricoes = inscricoes + 1 WHERE fatia = 0;
END;

CREATE TRIGGER contagens_inscricao_removida AFTER DELETE ON inscricoes
BEGIN
    UPDATE contagens SET inscricoes = inscricoes - 1 WHERE fatia = 0;
END;
