-- shadowtap analyzer store, schema 2: the anomaly detectors' memory.
-- Portable SQL, like 0001.

-- What the detectors learned per endpoint (scope 'endpoint') and per
-- service (scope 'service'; method and path_key empty), the window still
-- open included, so that baselines grow across runs and a window split
-- between two runs is judged once, whole.
CREATE TABLE detector_state (
    scope    TEXT NOT NULL,
    service  TEXT NOT NULL,
    method   TEXT NOT NULL,
    path_key TEXT NOT NULL,
    state    TEXT NOT NULL,     -- detector state (JSON, internal to the analyzer)
    PRIMARY KEY (scope, service, method, path_key)
);

-- Settled anomalies in the order they were found (a later window may still
-- extend one; the detector state refers to them by position). Provisional
-- verdicts on windows still open are only in the report snapshot.
CREATE TABLE anomalies (
    position BIGINT PRIMARY KEY,
    kind     TEXT NOT NULL,
    severity TEXT NOT NULL,
    service  TEXT NOT NULL,
    method   TEXT,
    path_key TEXT,
    start_ns BIGINT NOT NULL,
    end_ns   BIGINT NOT NULL,
    document TEXT NOT NULL      -- Anomaly (JSON)
);

CREATE INDEX anomalies_kind ON anomalies (kind);
