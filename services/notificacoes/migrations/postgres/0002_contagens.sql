-- GetStatus' counts, kept in rows by triggers in the transaction of every write (the insert
-- of SendNotification and NotifySchedule, MarkAsRead, any delete), so that reading them costs
-- the same with two notifications or two million: a COUNT(*) of the table took ~1 s at two
-- million rows. The counts are spread over 16 rows (fatias), each statement adding to the row
-- of its connection (pg_backend_pid() % 16): concurrent writers rarely wait on the same row,
-- and a transaction only ever locks one, so two of them cannot deadlock on the counts. The
-- reader sums the 16 rows.
CREATE TABLE contagens (
    fatia SMALLINT PRIMARY KEY,
    total BIGINT NOT NULL DEFAULT 0,
    nao_lidas BIGINT NOT NULL DEFAULT 0
);

-- Writers of older replicas wait until this migration commits, so that no row is missed
-- between the count below and the triggers taking over.
LOCK TABLE notificacoes IN SHARE ROW EXCLUSIVE MODE;

INSERT INTO contagens (fatia) SELECT g FROM generate_series(0, 15) AS g;
UPDATE contagens
SET total = c.total, nao_lidas = c.nao_lidas
FROM (SELECT COUNT(*) AS total, COUNT(*) FILTER (WHERE NOT lida) AS nao_lidas FROM notificacoes) AS c
WHERE fatia = 0;

-- Statement-level triggers with transition tables: one update of the counts per statement
-- (MarkAsRead marks up to a hundred rows at once), none for a statement that changed no row
-- (an insert skipped by ON CONFLICT DO NOTHING). `search_path` is the schema's, whoever writes.
CREATE FUNCTION contagens_insercao() RETURNS trigger LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
BEGIN
    UPDATE contagens
    SET total = contagens.total + n.total, nao_lidas = contagens.nao_lidas + n.nao_lidas
    FROM (SELECT COUNT(*) AS total, COUNT(*) FILTER (WHERE NOT lida) AS nao_lidas FROM novas) AS n
    WHERE fatia = pg_backend_pid() % 16 AND n.total > 0;
    RETURN NULL;
END;
$$;

CREATE FUNCTION contagens_leitura() RETURNS trigger LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
BEGIN
    UPDATE contagens
    SET nao_lidas = contagens.nao_lidas + d.delta
    FROM (SELECT (SELECT COUNT(*) FROM depois WHERE NOT lida) - (SELECT COUNT(*) FROM antes WHERE NOT lida) AS delta) AS d
    WHERE fatia = pg_backend_pid() % 16 AND d.delta <> 0;
    RETURN NULL;
END;
$$;

CREATE FUNCTION contagens_remocao() RETURNS trigger LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
BEGIN
    UPDATE contagens
    SET total = contagens.total - r.total, nao_lidas = contagens.nao_lidas - r.nao_lidas
    FROM (SELECT COUNT(*) AS total, COUNT(*) FILTER (WHERE NOT lida) AS nao_lidas FROM removidas) AS r
    WHERE fatia = pg_backend_pid() % 16 AND r.total > 0;
    RETURN NULL;
END;
$$;

CREATE TRIGGER contagens_insercao AFTER INSERT ON notificacoes
    REFERENCING NEW TABLE AS novas FOR EACH STATEMENT EXECUTE FUNCTION contagens_insercao();
CREATE TRIGGER contagens_leitura AFTER UPDATE ON notificacoes
    REFERENCING OLD TABLE AS antes NEW TABLE AS depois FOR EACH STATEMENT EXECUTE FUNCTION contagens_leitura();
CREATE TRIGGER contagens_remocao AFTER DELETE ON notificacoes
    REFERENCING OLD TABLE AS removidas FOR EACH STATEMENT EXECUTE FUNCTION contagens_remocao();
