//! The store: the only module that speaks SQL.
//!
//! One code path for SQLite (the embedded default) and PostgreSQL, through
//! sqlx's `Any` driver, with the portable migrations in `migrations/`. What
//! is kept: the inputs already analysed (so none is counted twice), the
//! observations (mergeable statistics per service, method and path key, from
//! which templates are recomputed on every run), the fingerprint key, the
//! anomaly detectors' state (baselines and open windows, so detection
//! continues across runs) with the anomalies found, and a snapshot of the
//! latest analysis for `shadowtap report`.

use std::collections::{BTreeMap, HashSet};

use anyhow::Context as _;
use serde::{Deserialize, Serialize};
use sqlx::any::AnyPoolOptions;
use sqlx::{AnyPool, Row};

use shadowtap_proto::record::FingerprintKey;

use crate::anomaly::{Anomaly, DetectorState};
use crate::input::InputIdentity;
use crate::observe::{FieldNames, ObservationKey, PortableSchema, SchemaStats, Stats};
use crate::report::{ContractInfo, EndpointReport, Report, ServiceReport};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../migrations");

/// An open database.
pub struct Store {
    pool: AnyPool,
    /// The URL with any password masked, for messages.
    label: String,
}

/// Turns a `--db` argument into a database URL: `postgres://…` and
/// `sqlite:…` are used as given; anything else is a SQLite file path,
/// created when missing.
pub fn database_url(arg: &str) -> String {
    if arg.starts_with("postgres://")
        || arg.starts_with("postgresql://")
        || arg.starts_with("sqlite:")
    {
        arg.to_owned()
    } else {
        format!("sqlite://{arg}?mode=rwc")
    }
}

/// `postgres://user:secret@host/db` → `postgres://user:***@host/db`.
pub fn mask_password(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let (auth, host) = match rest.split_once('@') {
        Some(parts) => parts,
        None => return url.to_owned(),
    };
    match auth.split_once(':') {
        Some((user, _)) => format!("{scheme}://{user}:***@{host}"),
        None => url.to_owned(),
    }
}

/// What a row of `observations` holds besides the key, as JSON.
#[derive(Serialize, Deserialize)]
struct StoredSchemas {
    request: PortableSchema,
    responses: BTreeMap<u16, PortableSchema>,
}

/// The detectors' header, kept in `meta` under `detectors`.
#[derive(Serialize, Deserialize)]
struct DetectorHeader {
    window_s: u64,
    late_records: u64,
}

/// The snapshot's header, kept in `meta`.
#[derive(Serialize, Deserialize)]
struct SnapshotHeader {
    schema: u32,
    generator: String,
    summary: crate::report::Summary,
    inputs: Vec<crate::report::InputInfo>,
    #[serde(default)]
    anomalies: Vec<crate::anomaly::Anomaly>,
}

fn to_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

fn to_u64(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

impl Store {
    /// Opens (creating a SQLite file if needed) and migrates the database.
    pub async fn open(arg: &str) -> anyhow::Result<Store> {
        sqlx::any::install_default_drivers();
        let url = database_url(arg);
        let label = mask_password(&url);
        let sqlite = url.starts_with("sqlite:");
        let pool = AnyPoolOptions::new()
            // One connection for SQLite: one writer, and an in-memory
            // database lives in its connection.
            .max_connections(if sqlite { 1 } else { 4 })
            .connect(&url)
            .await
            .with_context(|| format!("opening database {label}"))?;
        MIGRATOR
            .run(&pool)
            .await
            .with_context(|| format!("migrating database {label}"))?;
        Ok(Store { pool, label })
    }

    pub fn label(&self) -> &str {
        &self.label
    }

    async fn meta(&self, key: &str) -> anyhow::Result<Option<String>> {
        let row = sqlx::query("SELECT value FROM meta WHERE key = $1")
            .bind(key)
            .fetch_optional(&self.pool)
            .await
            .with_context(|| format!("reading {} from {}", key, self.label))?;
        Ok(row.map(|r| r.get::<String, _>(0)))
    }

    /// The database's fingerprint key, created on first use. Callers are
    /// only comparable across runs when every run uses the same key.
    pub async fn fingerprint_key(&self) -> anyhow::Result<FingerprintKey> {
        if let Some(hex) = self.meta("fingerprint_key").await? {
            let bytes = decode_hex(&hex).context("the stored fingerprint key is not hex")?;
            return FingerprintKey::from_slice(&bytes)
                .context("the stored fingerprint key is too short");
        }
        let mut bytes = [0u8; 32];
        std::io::Read::read_exact(&mut std::fs::File::open("/dev/urandom")?, &mut bytes)
            .context("reading a random fingerprint key")?;
        let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        sqlx::query("INSERT INTO meta (key, value) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING")
            .bind("fingerprint_key")
            .bind(&hex)
            .execute(&self.pool)
            .await
            .with_context(|| format!("writing to {}", self.label))?;
        // Another writer may have won the race: use what is stored.
        let stored = self.meta("fingerprint_key").await?.unwrap_or(hex);
        let bytes = decode_hex(&stored).context("the stored fingerprint key is not hex")?;
        FingerprintKey::from_slice(&bytes).context("the stored fingerprint key is too short")
    }

    /// Identities of every input already analysed.
    pub async fn known_inputs(&self) -> anyhow::Result<HashSet<String>> {
        let rows = sqlx::query("SELECT id FROM inputs")
            .fetch_all(&self.pool)
            .await
            .with_context(|| format!("reading inputs from {}", self.label))?;
        Ok(rows.iter().map(|r| r.get::<String, _>(0)).collect())
    }

    /// Every stored observation, sorted by key; field paths are interned
    /// into `names`.
    pub async fn load_observations(
        &self,
        names: &mut FieldNames,
    ) -> anyhow::Result<Vec<(ObservationKey, Stats)>> {
        let rows = sqlx::query(
            "SELECT service, method, path_key, stats, schemas FROM observations \
             ORDER BY service, method, path_key",
        )
        .fetch_all(&self.pool)
        .await
        .with_context(|| format!("reading observations from {}", self.label))?;
        let mut out = Vec::with_capacity(rows.len());
        for r in rows {
            let key = ObservationKey {
                service: r.get(0),
                method: r.get(1),
                path: r.get(2),
            };
            let stats_json: String = r.get(3);
            let schemas_json: String = r.get(4);
            let mut stats: Stats = serde_json::from_str(&stats_json).with_context(|| {
                format!(
                    "observation {} {} {} in {} is damaged",
                    key.service, key.method, key.path, self.label
                )
            })?;
            let schemas: StoredSchemas =
                serde_json::from_str(&schemas_json).with_context(|| {
                    format!(
                        "observation {} {} {} in {} is damaged",
                        key.service, key.method, key.path, self.label
                    )
                })?;
            stats.request_schema = SchemaStats::from_portable(&schemas.request, names);
            stats.response_schemas = schemas
                .responses
                .iter()
                .map(|(s, p)| (*s, SchemaStats::from_portable(p, names)))
                .collect();
            out.push((key, stats));
        }
        out.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(out)
    }

    /// The anomaly detectors' stored state (empty in a new database).
    pub async fn load_detector_state(&self) -> anyhow::Result<DetectorState> {
        let mut state = DetectorState::default();
        let Some(header) = self.meta("detectors").await? else {
            return Ok(state);
        };
        let header: DetectorHeader = serde_json::from_str(&header)
            .with_context(|| format!("the detector header in {} is damaged", self.label))?;
        state.window_s = header.window_s;
        state.late_records = header.late_records;
        let rows = sqlx::query(
            "SELECT scope, service, method, path_key, state FROM detector_state \
             ORDER BY scope, service, method, path_key",
        )
        .fetch_all(&self.pool)
        .await
        .with_context(|| format!("reading the detector state from {}", self.label))?;
        for r in rows {
            let scope: String = r.get(0);
            let service: String = r.get(1);
            let json: String = r.get(4);
            if scope == "service" {
                state.services.push((service, json));
            } else {
                let key = ObservationKey {
                    service,
                    method: r.get(2),
                    path: r.get(3),
                };
                state.endpoints.push((key, json));
            }
        }
        let rows = sqlx::query("SELECT position, document FROM anomalies ORDER BY position")
            .fetch_all(&self.pool)
            .await
            .with_context(|| format!("reading anomalies from {}", self.label))?;
        for (i, r) in rows.iter().enumerate() {
            let position: i64 = r.get(0);
            let json: String = r.get(1);
            if to_u64(position) != i as u64 {
                anyhow::bail!(
                    "the anomalies in {} are damaged: position {position} where {i} was expected",
                    self.label
                );
            }
            let a: Anomaly = serde_json::from_str(&json)
                .with_context(|| format!("anomaly {position} in {} is damaged", self.label))?;
            state.anomalies.push(a);
        }
        Ok(state)
    }

    /// Records `inputs` as analysed and writes `observations` (already
    /// merged with what was stored) and the detectors' state, in one
    /// transaction: an input is counted exactly when its observations are,
    /// and learned from exactly once.
    pub async fn save_ingest(
        &self,
        inputs: &[(InputIdentity, String)],
        observations: &[(&ObservationKey, &Stats)],
        names: &FieldNames,
        detectors: Option<&DetectorState>,
    ) -> anyhow::Result<()> {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let mut tx = self
            .pool
            .begin()
            .await
            .with_context(|| format!("writing to {}", self.label))?;
        for (id, path) in inputs {
            sqlx::query(
                "INSERT INTO inputs (id, kind, path, bytes, ingested_at) VALUES ($1, $2, $3, $4, $5) \
                 ON CONFLICT (id) DO NOTHING",
            )
            .bind(&id.id)
            .bind(id.kind.as_str())
            .bind(path)
            .bind(to_i64(id.bytes))
            .bind(to_i64(now))
            .execute(&mut *tx)
            .await
            .with_context(|| format!("recording input {path} in {}", self.label))?;
        }
        for (key, stats) in observations {
            let schemas = StoredSchemas {
                request: stats.request_schema.to_portable(names),
                responses: stats
                    .response_schemas
                    .iter()
                    .map(|(s, p)| (*s, p.to_portable(names)))
                    .collect(),
            };
            sqlx::query(
                "INSERT INTO observations \
                 (service, method, path_key, requests, first_seen_ns, last_seen_ns, stats, schemas) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
                 ON CONFLICT (service, method, path_key) DO UPDATE SET \
                 requests = excluded.requests, first_seen_ns = excluded.first_seen_ns, \
                 last_seen_ns = excluded.last_seen_ns, stats = excluded.stats, \
                 schemas = excluded.schemas",
            )
            .bind(&key.service)
            .bind(&key.method)
            .bind(&key.path)
            .bind(to_i64(stats.count))
            .bind(to_i64(stats.first_seen_ns))
            .bind(to_i64(stats.last_seen_ns))
            .bind(serde_json::to_string(stats)?)
            .bind(serde_json::to_string(&schemas)?)
            .execute(&mut *tx)
            .await
            .with_context(|| format!("writing observations to {}", self.label))?;
        }
        if let Some(state) = detectors {
            save_detector_state(&mut tx, state)
                .await
                .with_context(|| format!("writing the detector state to {}", self.label))?;
        }
        tx.commit()
            .await
            .with_context(|| format!("committing to {}", self.label))?;
        Ok(())
    }

    /// Replaces the snapshot with `report`.
    pub async fn save_snapshot(&self, report: &Report) -> anyhow::Result<()> {
        let ctx = || format!("writing the report snapshot to {}", self.label);
        let mut tx = self.pool.begin().await.with_context(ctx)?;
        for table in [
            "snapshot_contracts",
            "snapshot_services",
            "snapshot_endpoints",
            "snapshot_findings",
        ] {
            sqlx::query(&format!("DELETE FROM {table}"))
                .execute(&mut *tx)
                .await
                .with_context(ctx)?;
        }
        let header = SnapshotHeader {
            schema: report.schema,
            generator: report.generator.clone(),
            summary: report.summary.clone(),
            inputs: report.inputs.clone(),
            anomalies: report.anomalies.clone(),
        };
        sqlx::query(
            "INSERT INTO meta (key, value) VALUES ('snapshot', $1) \
             ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        )
        .bind(serde_json::to_string(&header)?)
        .execute(&mut *tx)
        .await
        .with_context(ctx)?;
        for (i, c) in report.contracts.iter().enumerate() {
            sqlx::query(
                "INSERT INTO snapshot_contracts (position, file, sha256, document) VALUES ($1, $2, $3, $4)",
            )
            .bind(i as i64)
            .bind(&c.file)
            .bind(&c.sha256)
            .bind(serde_json::to_string(c)?)
            .execute(&mut *tx)
            .await
            .with_context(ctx)?;
        }
        for s in &report.services {
            sqlx::query(
                "INSERT INTO snapshot_services (name, requests, contract) VALUES ($1, $2, $3)",
            )
            .bind(&s.name)
            .bind(to_i64(s.requests))
            .bind(s.contract.clone())
            .execute(&mut *tx)
            .await
            .with_context(ctx)?;
            for e in &s.endpoints {
                sqlx::query(
                    "INSERT INTO snapshot_endpoints \
                     (service, method, template, requests, first_seen_ns, last_seen_ns, confidence, document) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                )
                .bind(&s.name)
                .bind(&e.method)
                .bind(&e.template)
                .bind(to_i64(e.requests))
                .bind(to_i64(e.first_seen.as_nanos()))
                .bind(to_i64(e.last_seen.as_nanos()))
                .bind(e.confidence)
                .bind(serde_json::to_string(e)?)
                .execute(&mut *tx)
                .await
                .with_context(ctx)?;
            }
        }
        for (i, f) in report.findings.iter().enumerate() {
            sqlx::query(
                "INSERT INTO snapshot_findings (position, kind, severity, service, method, template, document) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7)",
            )
            .bind(i as i64)
            .bind(f.kind.as_str())
            .bind(f.severity.as_str())
            .bind(&f.service)
            .bind(f.method.clone())
            .bind(f.template.clone())
            .bind(serde_json::to_string(f)?)
            .execute(&mut *tx)
            .await
            .with_context(ctx)?;
        }
        tx.commit().await.with_context(ctx)?;
        Ok(())
    }

    /// The latest analysis, as `analyze` wrote it.
    pub async fn load_report(&self) -> anyhow::Result<Report> {
        let ctx = || format!("reading the report snapshot from {}", self.label);
        let header = self.meta("snapshot").await?.with_context(|| {
            format!(
                "{} holds no analysis yet: run `shadowtap analyze --db` first",
                self.label
            )
        })?;
        let header: SnapshotHeader = serde_json::from_str(&header).with_context(ctx)?;
        let mut contracts = Vec::new();
        for r in sqlx::query("SELECT document FROM snapshot_contracts ORDER BY position")
            .fetch_all(&self.pool)
            .await
            .with_context(ctx)?
        {
            let doc: String = r.get(0);
            contracts.push(serde_json::from_str::<ContractInfo>(&doc).with_context(ctx)?);
        }
        let mut services: Vec<ServiceReport> = Vec::new();
        for r in sqlx::query("SELECT name, requests, contract FROM snapshot_services ORDER BY name")
            .fetch_all(&self.pool)
            .await
            .with_context(ctx)?
        {
            services.push(ServiceReport {
                name: r.get(0),
                requests: to_u64(r.get(1)),
                contract: r.get(2),
                endpoints: Vec::new(),
            });
        }
        for r in sqlx::query(
            "SELECT service, document FROM snapshot_endpoints ORDER BY service, template, method",
        )
        .fetch_all(&self.pool)
        .await
        .with_context(ctx)?
        {
            let service: String = r.get(0);
            let doc: String = r.get(1);
            let e: EndpointReport = serde_json::from_str(&doc).with_context(ctx)?;
            if let Some(s) = services.iter_mut().find(|s| s.name == service) {
                s.endpoints.push(e);
            }
        }
        let mut findings = Vec::new();
        for r in sqlx::query("SELECT document FROM snapshot_findings ORDER BY position")
            .fetch_all(&self.pool)
            .await
            .with_context(ctx)?
        {
            let doc: String = r.get(0);
            findings.push(serde_json::from_str(&doc).with_context(ctx)?);
        }
        Ok(Report {
            schema: header.schema,
            generator: header.generator,
            summary: header.summary,
            inputs: header.inputs,
            contracts,
            services,
            findings,
            anomalies: header.anomalies,
        })
    }

    pub async fn close(self) {
        self.pool.close().await;
    }
}

/// Writes the changed detector states and the whole anomaly list.
async fn save_detector_state(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    state: &DetectorState,
) -> anyhow::Result<()> {
    let header = DetectorHeader {
        window_s: state.window_s,
        late_records: state.late_records,
    };
    sqlx::query(
        "INSERT INTO meta (key, value) VALUES ('detectors', $1) \
         ON CONFLICT (key) DO UPDATE SET value = excluded.value",
    )
    .bind(serde_json::to_string(&header)?)
    .execute(&mut **tx)
    .await?;
    if state.replaces_all {
        sqlx::query("DELETE FROM detector_state")
            .execute(&mut **tx)
            .await?;
    }
    let services = state
        .services
        .iter()
        .map(|(name, json)| ("service", name.as_str(), "", "", json));
    let endpoints = state.endpoints.iter().map(|(k, json)| {
        (
            "endpoint",
            k.service.as_str(),
            k.method.as_str(),
            k.path.as_str(),
            json,
        )
    });
    for (scope, service, method, path, json) in services.chain(endpoints) {
        sqlx::query(
            "INSERT INTO detector_state (scope, service, method, path_key, state) \
             VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (scope, service, method, path_key) DO UPDATE SET state = excluded.state",
        )
        .bind(scope)
        .bind(service)
        .bind(method)
        .bind(path)
        .bind(json)
        .execute(&mut **tx)
        .await?;
    }
    // Settled anomalies only grow or get extended: rewrite the list.
    sqlx::query("DELETE FROM anomalies")
        .execute(&mut **tx)
        .await?;
    for (i, a) in state.anomalies.iter().enumerate() {
        sqlx::query(
            "INSERT INTO anomalies \
             (position, kind, severity, service, method, path_key, start_ns, end_ns, document) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(to_i64(i as u64))
        .bind(a.kind.as_str())
        .bind(a.severity.as_str())
        .bind(&a.service)
        .bind(a.method.as_deref())
        .bind(a.path_key.as_deref())
        .bind(to_i64(a.start.as_nanos()))
        .bind(to_i64(a.end.as_nanos()))
        .bind(serde_json::to_string(a)?)
        .execute(&mut **tx)
        .await?;
    }
    Ok(())
}

fn decode_hex(s: &str) -> Option<Vec<u8>> {
    if s.len() % 2 != 0 {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        assert_eq!(database_url("inv.db"), "sqlite://inv.db?mode=rwc");
        assert_eq!(database_url("sqlite::memory:"), "sqlite::memory:");
        assert_eq!(database_url("postgres://u@h/db"), "postgres://u@h/db");
        assert_eq!(
            mask_password("postgres://u:pw@h/db"),
            "postgres://u:***@h/db"
        );
        assert_eq!(mask_password("postgres://u@h/db"), "postgres://u@h/db");
        assert_eq!(decode_hex("0aff"), Some(vec![10, 255]));
        assert_eq!(decode_hex("0g"), None);
    }
}
