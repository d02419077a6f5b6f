-- GetStatus' counts, kept in a row by triggers in the transaction of every write (the insert
-- of SendNotification and NotifySchedule, MarkAsRead, any delete), so that reading them costs
-- the same with two notifications or two million: a COUNT(*) of the table took ~1 s at two
-- million rows. SQLite has one writer at a time, so one row (fatia 0) holds them; the same
-- query as PostgreSQL's, which spreads them over several rows, sums them.
CREATE TABLE contagens (
    fatia INTEGER PRIMARY KEY,
    total BIGINT NOT NULL,
    nao_lidas BIGINT NOT NULL
);

-- Initialised from the rows already there (this migration runs in one write transaction).
INSERT INTO contagens (fatia, total, nao_lidas)
SELECT 0, COUNT(*), COALESCE(SUM(CASE WHEN lida THEN 0 ELSE 1 END), 0) FROM notificacoes;

-- A row skipped by ON CONFLICT DO NOTHING fires no trigger: a retried key counts once.
CREATE TRIGGER contagens_insercao AFTER INSERT ON notificacoes
BEGIN
    UPDATE contagens SET total = total + 1, nao_lidas = nao_lidas + (CASE WHEN NEW.lida THEN 0 ELSE 1 END)
    WHERE fatia = 0;
END;

CREATE TRIGGER contagens_leitura AFTER UPDATE OF lida ON notificacoes
WHEN (OLD.lida <> 0) <> (NEW.lida <> 0)
BEGIN
    UPDATE contagens SET nao_lidas = nao_lidas + (CASE WHEN NEW.lida THEN -1 ELSE 1 END)
    WHERE fatia = 0;
END;

CREATE TRIGGER contagens_remocao AFTER DELETE ON notificacoes
BEGIN
    UPDATE contagens SET total = total - 1, nao_lidas = nao_lidas - (CASE WHEN OLD.lida THEN 0 ELSE 1 END)
    WHERE fatia = 0;
END;
