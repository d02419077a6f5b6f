-- GetStatus' counts, kept in rows by triggers in the transaction of every write (Enroll,
-- Unenroll, a course added or removed, the cascade of its enrolments), so that reading them
-- costs the same with ten enrolments or a million: the two COUNT(*) took 24 ms at a million.
-- The counts are spread over 16 rows (fatias), each statement adding to the row of its
-- connection (pg_backend_pid() % 16): concurrent writers rarely wait on the same row, and a
-- transaction only ever locks one, so two of them cannot deadlock on the counts. The reader
-- sums the 16 rows.
CREATE TABLE contagens (
    fatia SMALLINT PRIMARY KEY,
    cursos BIGINT NOT NULL DEFAULT 0,
    inscricoes BIGINT NOT NULL DEFAULT 0
);

-- Writers of older replicas wait until this migration commits, so that no row is missed
-- between the counts below and the triggers taking over.
LOCK TABLE cursos, inscricoes IN SHARE ROW EXCLUSIVE MODE;

INSERT INTO contagens (fatia) SELECT g FROM generate_series(0, 15) AS g;
UPDATE contagens
SET cursos = (SELECT COUNT(*) FROM cursos), inscricoes = (SELECT COUNT(*) FROM inscricoes)
WHERE fatia = 0;

-- Statement-level triggers with transition tables: one update of the counts per statement,
-- none for a statement that changed no row (an enrolment skipped by ON CONFLICT DO NOTHING).
-- `search_path` is the schema's, whoever writes.
CREATE FUNCTION contagens_cursos() RETURNS trigger LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
DECLARE
    n BIGINT;
BEGIN
    IF TG_OP = 'INSERT' THEN
        SELECT COUNT(*) INTO n FROM novas;
    ELSE
        SELECT -COUNT(*) INTO n FROM removidas;
    END IF;
    IF n <> 0 THEN
        UPDATE contagens SET cursos = cursos + n WHERE fatia = pg_backend_pid() % 16;
    END IF;
    RETURN NULL;
END;
$$;

CREATE FUNCTION contagens_inscricoes() RETURNS trigger LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
DECLARE
    n BIGINT;
BEGIN
    IF TG_OP = 'INSERT' THEN
        SELECT COUNT(*) INTO n FROM novas;
    ELSE
        SELECT -COUNT(*) INTO n FROM removidas;
    END IF;
    IF n <> 0 THEN
        UPDATE contagens SET inscricoes = inscricoes + n WHERE fatia = pg_backend_pid() % 16;
    END IF;
    RETURN NULL;
END;
$$;

CREATE TRIGGER contagens_curso_novo AFTER INSERT ON cursos
    REFERENCING NEW TABLE AS novas FOR EACH STATEMENT EXECUTE FUNCTION contagens_cursos();
CREATE TRIGGER contagens_curso_removido AFTER DELETE ON cursos
    REFERENCING OLD TABLE AS removidas FOR EACH STATEMENT EXECUTE FUNCTION contagens_cursos();
CREATE TRIGGER contagens_inscricao_nova AFTER INSERT ON inscricoes
    REFERENCING NEW TABLE AS novas FOR EACH STATEMENT EXECUTE FUNCTION contagens_inscricoes();
CREATE TRIGGER contagens_inscricao_removida AFTER DELETE ON inscricoes
    REFERENCING OLD TABLE AS removidas FOR EACH STATEMENT EXECUTE FUNCTION contagens_inscricoes();
