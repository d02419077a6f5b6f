-- The outbox (services/runtime/src/outbox.rs), as Outbox::start created it before the outbox
-- had migrations: IF NOT EXISTS keeps databases that already have it.
CREATE TABLE IF NOT EXISTS outbox (
    id BIGSERIAL PRIMARY KEY,
    chave TEXT NOT NULL UNIQUE,
    payload TEXT NOT NULL,
    tentativas INTEGER NOT NULL DEFAULT 0,
    proxima_ms BIGINT NOT NULL,
    lease_ms BIGINT NOT NULL DEFAULT 0,
    criado_ms BIGINT NOT NULL,
    traceparent TEXT,
    ultimo_erro TEXT
);
