-- shadowtap analyzer store, schema 1.
-- Portable SQL: the same statements run on SQLite and PostgreSQL.
-- Counts and times are BIGINT (times in nanoseconds since 1970, UTC);
-- documents are JSON text.

-- Settings of this database (the fingerprint key, the schema's creator).
CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

-- Every input analysed into this database, so none is counted twice.
CREATE TABLE inputs (
    id          TEXT PRIMARY KEY,   -- identity: SHA-256 over size and both ends
    kind        TEXT NOT NULL,      -- capture, records, har
    path        TEXT NOT NULL,      -- as given the first time
    bytes       BIGINT NOT NULL,
    ingested_at BIGINT NOT NULL     -- wall-clock seconds since 1970
);

-- Exchanges aggregated by service, method and path key: the evidence that
-- templates are computed from, again on every run.
CREATE TABLE observations (
    service       TEXT NOT NULL,
    method        TEXT NOT NULL,
    path_key      TEXT NOT NULL,
    requests      BIGINT NOT NULL,
    first_seen_ns BIGINT NOT NULL,
    last_seen_ns  BIGINT NOT NULL,
    stats         TEXT NOT NULL,    -- mergeable statistics (JSON)
    schemas       TEXT NOT NULL,    -- request and response body schemas (JSON)
    PRIMARY KEY (service, method, path_key)
);

-- The latest analysis: what `shadowtap report` prints without re-reading
-- any capture. Replaced as a whole by every `analyze`.
CREATE TABLE snapshot_contracts (
    position     BIGINT PRIMARY KEY,
    file         TEXT NOT NULL,
    sha256       TEXT NOT NULL,
    document     TEXT NOT NULL      -- ContractInfo (JSON)
);

CREATE TABLE snapshot_services (
    name     TEXT PRIMARY KEY,
    requests BIGINT NOT NULL,
    contract TEXT
);

CREATE TABLE snapshot_endpoints (
    service       TEXT NOT NULL,
    method        TEXT NOT NULL,
    template      TEXT NOT NULL,
    requests      BIGINT NOT NULL,
    first_seen_ns BIGINT NOT NULL,
    last_seen_ns  BIGINT NOT NULL,
    confidence    DOUBLE PRECISION NOT NULL,
    document      TEXT NOT NULL,    -- EndpointReport (JSON)
    PRIMARY KEY (service, method, template)
);

CREATE TABLE snapshot_findings (
    position BIGINT PRIMARY KEY,
    kind     TEXT NOT NULL,
    severity TEXT NOT NULL,
    service  TEXT NOT NULL,
    method   TEXT,
    template TEXT,
    document TEXT NOT NULL          -- Finding (JSON)
);

CREATE INDEX snapshot_findings_kind ON snapshot_findings (kind);
