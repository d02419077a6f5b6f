-- Dead letters: a message notificacoes refused for good (INVALID_ARGUMENT, NOT_FOUND, ...) or
-- that failed the most attempts allowed stays in the table, out of delivery, with the time it
-- was given up (`morta_ms`) and the last error (`ultimo_erro`). Requeue one by setting
-- morta_ms = NULL, tentativas = 0, proxima_ms = 0.
ALTER TABLE outbox ADD COLUMN morta_ms BIGINT;
-- The worker's look for due messages reads live rows only.
CREATE INDEX IF NOT EXISTS outbox_vivas ON outbox (proxima_ms) WHERE morta_ms IS NULL;
