//! Anomaly detection: an incremental, pure stage that watches exchanges go
//! by (in packet time offline, arrival time live) and notices when an
//! endpoint starts behaving differently from its own learned baseline.
//!
//! Endpoints are keyed by observation key (service, method, path key), the
//! identity that is stable across runs even when templates are recomputed;
//! reports show each anomaly under its endpoint's current template.
//!
//! Time is cut into windows of [`DetectorConfig::window_s`] aligned to the
//! epoch. A window is judged when it closes (the next record of the
//! endpoint falls into a later window) and, if it was normal, folded into
//! the baseline: an anomaly never teaches the detector that it is normal.
//! Per-response checks (size outliers, auth changes) run as records arrive,
//! against the baseline as it stands.
//!
//! Detectors (defaults in [`DetectorConfig`]):
//!
//! - **Error spikes** (`error_spike_5xx`, `error_spike_4xx`): a window's
//!   5xx (4xx) rate against the baseline rate, with a minimum volume, a
//!   minimum factor and increase, and a binomial tail test
//!   (`stats::binomial_surprise`) strict enough for thousands of
//!   windows a day. An endpoint without enough baseline is judged against
//!   its service's.
//! - **Response sizes** (`response_size_outlier`, `response_size_shift`):
//!   single 2xx responses far above the endpoint's median on a log scale
//!   (ratio and robust z-score from the quartiles of a quantile sketch),
//!   and windows whose median size moves as a whole.
//! - **Auth patterns** (`anonymous_success`, `new_auth_scheme`,
//!   `jwt_alg_change`, `jwt_without_exp`): an endpoint that always saw
//!   credentials answers 2xx without any; a scheme (or key location) never
//!   seen there appears; a JWT `alg` never seen there (`none` is high
//!   severity); tokens without `exp` where all had one. Each alarms at its
//!   onset; the new pattern is learned when its window closes.
//! - **Auth failure bursts** (`auth_failure_burst`): one caller collecting
//!   many 401/403 in a window, or a service's 401/403 rate spiking.
//! - **BOLA enumeration** (`bola_enumeration`): one caller touching far more
//!   distinct object ids of an endpoint in a window than callers usually do,
//!   or walking sequential integer ids with mostly 403/404 answers.

use std::collections::BTreeMap;

use rustc_hash::FxHashMap;
use serde::{Deserialize, Serialize};

use shadowtap_proto::record::AuthScheme;
use shadowtap_proto::{ExchangeRecord, Timestamp};

use crate::observe::ObservationKey;
use crate::sketch::QuantileSketch;

pub(crate) mod stats;

use stats::binomial_surprise;

/// Sensitivity and minimum volumes. Every field has a documented default
/// (`docs/anomalies.md`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DetectorConfig {
    /// Window length, seconds.
    pub window_s: u64,
    /// Fewest answered requests in a window for a rate test.
    pub min_window_requests: u64,
    /// Fewest requests an endpoint's baseline needs before it is trusted;
    /// until then rates are judged against the service's baseline.
    pub min_baseline_requests: u64,
    /// Fewest errors in a window for an error spike.
    pub min_errors: u64,
    /// The window rate must be at least this many times the baseline rate…
    pub min_rate_factor: f64,
    /// …and at least this much above it (absolute share).
    pub min_rate_increase: f64,
    /// Binomial tail surprise (−ln p) a spike must reach; 18 ≈ p < 1.5·10⁻⁸.
    pub surprise: f64,
    /// Fewest 2xx sizes in the baseline before size checks run.
    pub min_size_baseline: u64,
    /// A single response must be at least this many times the median…
    pub size_outlier_ratio: f64,
    /// …and this many robust standard deviations above it (log scale).
    pub size_outlier_sigmas: f64,
    /// A window's median size at least this many times (or at most one
    /// over this) the baseline median is a level shift…
    pub size_shift_ratio: f64,
    /// …given at least this many sized responses in the window.
    pub min_shift_responses: u64,
    /// Fewest requests before an endpoint's auth pattern is trusted…
    /// (for a scheme the service already uses elsewhere, ten times as many:
    /// a rare but steady client must have had its chance to show up)
    pub min_auth_baseline: u64,
    /// …over at least this many windows (rare but steady schemes must
    /// have had time to show up).
    pub min_auth_windows: u64,
    /// A scheme the service uses elsewhere, new on an endpoint whose
    /// baseline is trusted but not strong, from a caller the service does
    /// not know with it, is an anomaly once it carries this many requests
    /// within one window length of its first.
    pub new_scheme_min_requests: u64,
    /// 401/403 answers one caller must collect in a window for a burst.
    pub caller_failure_burst: u64,
    /// Fewest distinct object ids one caller must touch in a window to be
    /// an enumeration…
    pub bola_min_ids: u64,
    /// …and this many times the endpoint's usual per-caller maximum (p99)…
    pub bola_factor: f64,
    /// …once the endpoint has learned from this many normal caller windows
    /// (a sequential walk with mostly 403/404 needs no baseline).
    pub bola_min_baseline: u64,
}

impl Default for DetectorConfig {
    fn default() -> Self {
        DetectorConfig {
            window_s: 300,
            min_window_requests: 20,
            min_baseline_requests: 200,
            min_errors: 5,
            min_rate_factor: 3.0,
            min_rate_increase: 0.05,
            surprise: 18.0,
            min_size_baseline: 20,
            size_outlier_ratio: 20.0,
            size_outlier_sigmas: 6.0,
            size_shift_ratio: 2.5,
            min_shift_responses: 12,
            min_auth_baseline: 30,
            min_auth_windows: 6,
            new_scheme_min_requests: 5,
            caller_failure_burst: 20,
            bola_min_ids: 30,
            bola_factor: 5.0,
            bola_min_baseline: 20,
        }
    }
}

/// Most callers tracked per endpoint window (beyond: counted, not tracked).
pub const MAX_CALLERS_PER_WINDOW: usize = 4096;
/// Most distinct ids remembered per caller per window.
pub const MAX_IDS_PER_CALLER: usize = 1024;
/// Most consecutive quiet windows pooled into one rate test, so a
/// low-traffic endpoint is still judged (over up to 20 minutes).
pub const MAX_SPAN_WINDOWS: u64 = 4;
/// Most (credential, scheme) pairs remembered per service.
pub const MAX_KNOWN_CREDENTIALS: usize = 100_000;
/// Most new-scheme onsets an endpoint follows at once (see
/// [`DetectorConfig::new_scheme_min_requests`]); further ones are not followed.
pub const MAX_SCHEME_ONSETS: usize = 8;
/// Baseline counts are halved when the total passes this, so old traffic
/// weighs less than recent traffic.
pub const BASELINE_HORIZON: f64 = 200_000.0;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AnomalyKind {
    #[serde(rename = "error_spike_5xx")]
    ErrorSpike5xx,
    #[serde(rename = "error_spike_4xx")]
    ErrorSpike4xx,
    ResponseSizeOutlier,
    ResponseSizeShift,
    AnonymousSuccess,
    NewAuthScheme,
    JwtAlgChange,
    JwtWithoutExp,
    AuthFailureBurst,
    BolaEnumeration,
}

impl AnomalyKind {
    pub const ALL: [AnomalyKind; 10] = [
        AnomalyKind::ErrorSpike5xx,
        AnomalyKind::ErrorSpike4xx,
        AnomalyKind::ResponseSizeOutlier,
        AnomalyKind::ResponseSizeShift,
        AnomalyKind::AnonymousSuccess,
        AnomalyKind::NewAuthScheme,
        AnomalyKind::JwtAlgChange,
        AnomalyKind::JwtWithoutExp,
        AnomalyKind::AuthFailureBurst,
        AnomalyKind::BolaEnumeration,
    ];

    /// The name in reports and `--fail-on` (also the serialized form).
    pub fn as_str(self) -> &'static str {
        match self {
            AnomalyKind::ErrorSpike5xx => "error_spike_5xx",
            AnomalyKind::ErrorSpike4xx => "error_spike_4xx",
            AnomalyKind::ResponseSizeOutlier => "response_size_outlier",
            AnomalyKind::ResponseSizeShift => "response_size_shift",
            AnomalyKind::AnonymousSuccess => "anonymous_success",
            AnomalyKind::NewAuthScheme => "new_auth_scheme",
            AnomalyKind::JwtAlgChange => "jwt_alg_change",
            AnomalyKind::JwtWithoutExp => "jwt_without_exp",
            AnomalyKind::AuthFailureBurst => "auth_failure_burst",
            AnomalyKind::BolaEnumeration => "bola_enumeration",
        }
    }
}

/// Severity of an anomaly.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AnomalySeverity {
    Low,
    Medium,
    High,
}

impl AnomalySeverity {
    /// The name in reports (also the serialized form).
    pub fn as_str(self) -> &'static str {
        match self {
            AnomalySeverity::Low => "low",
            AnomalySeverity::Medium => "medium",
            AnomalySeverity::High => "high",
        }
    }
}

/// One anomaly: where, when, how far from normal, and what it means.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Anomaly {
    pub kind: AnomalyKind,
    pub severity: AnomalySeverity,
    pub service: String,
    /// `None` for service-wide anomalies.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
    /// The endpoint's path key, its identity across runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path_key: Option<String>,
    /// The endpoint's template in the current inventory (set by the report).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template: Option<String>,
    /// First 12 hex digits of the caller's fingerprint, for per-caller kinds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub caller: Option<String>,
    pub start: Timestamp,
    pub end: Timestamp,
    /// The baseline value and the observed one, in the unit of `measure`.
    pub baseline: f64,
    pub observed: f64,
    /// What `baseline` and `observed` measure (`5xx share`, `bytes`, …).
    pub measure: String,
    /// Counts behind the verdict.
    pub counts: BTreeMap<String, u64>,
    /// One line a person can act on.
    pub explanation: String,
    /// Judged on a window that was still open when the run ended: more
    /// traffic from that window (a later run on the same database) may
    /// change the verdict.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub provisional: bool,
}

/// Counts of one window (or of a baseline).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
struct Rates {
    answered: f64,
    c4xx: f64,
    c5xx: f64,
    denied: f64,
}

impl Rates {
    fn add(&mut self, o: &Rates) {
        self.answered += o.answered;
        self.c4xx += o.c4xx;
        self.c5xx += o.c5xx;
        self.denied += o.denied;
    }

    fn decay(&mut self) {
        if self.answered > BASELINE_HORIZON {
            self.answered /= 2.0;
            self.c4xx /= 2.0;
            self.c5xx /= 2.0;
            self.denied /= 2.0;
        }
    }
}

/// One caller's activity on one endpoint in one window.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
struct CallerWindow {
    /// The first 12 characters of the fingerprint, for reporting.
    label: [u8; 12],
    requests: u64,
    denied: u64,
    /// Hashes of the distinct object ids touched (last path parameter),
    /// sorted: most callers touch a handful per window.
    ids: Vec<u64>,
    /// Walks over consecutive integer ids.
    walks: Walks,
}

/// A walk over consecutive integer ids (n, n+1, n+2, …; one skipped id is
/// tolerated) among one caller's requests, with other requests interleaved:
/// the shape of an enumeration even when the caller's normal traffic goes
/// on beside it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
struct Walk {
    /// Hashes of the two ids that would continue the walk (the next one,
    /// or one skipped): hashes like `CallerWindow::ids`, so the detector
    /// state in the database holds no object id.
    #[serde(default)]
    continues: [u64; 2],
    /// Requests in the walk, and how many were answered 401/403/404.
    len: u64,
    denied: u64,
}

/// A walk this long is kept; shorter ones give way to new candidates.
const WALK_STICKS: u64 = 3;

/// Walks followed at once per caller and window, so the caller's other
/// requests (noise) don't break a walk in progress.
const WALKS: usize = 4;

/// The candidate walks of one caller in one window.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
struct Walks([Walk; WALKS]);

impl Walks {
    fn step(&mut self, id: u64, denied: bool) {
        let h = id_hash(id);
        let slot = match self
            .0
            .iter()
            .position(|w| w.len > 0 && w.continues.contains(&h))
        {
            Some(i) => i,
            None => {
                // Start a new walk in the place of the shortest short one.
                let Some((i, _)) = self
                    .0
                    .iter()
                    .enumerate()
                    .filter(|(_, w)| w.len < WALK_STICKS)
                    .min_by_key(|(_, w)| w.len)
                else {
                    return;
                };
                self.0[i] = Walk::default();
                i
            }
        };
        let w = &mut self.0[slot];
        w.len += 1;
        w.denied += u64::from(denied);
        w.continues = [id_hash(id.wrapping_add(1)), id_hash(id.wrapping_add(2))];
    }

    /// The longest walk.
    fn longest(&self) -> Walk {
        self.0
            .iter()
            .copied()
            .max_by_key(|w| w.len)
            .unwrap_or_default()
    }
}

impl CallerWindow {
    fn label_text(&self) -> String {
        self.label
            .iter()
            .take_while(|b| **b != 0)
            .map(|&b| char::from(b))
            .collect()
    }
}

/// The open window of an endpoint or service.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
struct Window {
    index: u64,
    rates: Rates,
    sizes: QuantileSketch,
    /// Per caller (hash of the fingerprint): activity.
    callers: FxHashMap<u64, CallerWindow>,
    untracked_callers: u64,
    /// Auth facts first seen in this window (learned when it closes).
    new_schemes: Vec<String>,
    new_algs: Vec<String>,
    /// Requests with a JWT.
    jwts: u64,
    saw_anonymous_2xx: bool,
    saw_no_exp: bool,
    /// A size outlier or shift made this window's sizes unfit to learn.
    size_anomalous: bool,
}

/// What an endpoint has learned.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
struct Baseline {
    rates: Rates,
    sizes: QuantileSketch,
    requests: u64,
    anonymous: u64,
    schemes: Vec<String>,
    jwts: u64,
    algs: Vec<String>,
    jwts_without_exp: u64,
    /// Distinct ids per caller per window, for normal callers.
    ids_per_caller: QuantileSketch,
    /// Windows learned from.
    windows: u64,
    /// [`log_spread`] of `sizes`, which every 2xx response is checked
    /// against: computed once per change of `sizes`, not per response.
    #[serde(skip)]
    spread: SpreadCache,
}

/// A [`log_spread`] result and the sketch count it was computed at. Derived
/// data: never stored, and equal to any other (two baselines are equal by
/// what they learned).
#[derive(Clone, Copy, Debug, Default)]
struct SpreadCache(Option<(u64, Option<(u64, f64)>)>);

impl PartialEq for SpreadCache {
    fn eq(&self, _: &SpreadCache) -> bool {
        true
    }
}

impl Baseline {
    /// [`log_spread`] of the learned sizes, cached while they are unchanged
    /// (the sketch only grows, and [`Baseline::learn_sizes`] resets it).
    fn size_spread(&mut self) -> Option<(u64, f64)> {
        match self.spread.0 {
            Some((count, spread)) if count == self.sizes.count => spread,
            _ => {
                let spread = log_spread(&self.sizes);
                self.spread.0 = Some((self.sizes.count, spread));
                spread
            }
        }
    }

    fn learn_sizes(&mut self, sizes: &QuantileSketch) {
        self.sizes.merge(sizes);
        self.spread = SpreadCache::default();
    }
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
struct EndpointState {
    baseline: Baseline,
    window: Option<Window>,
    /// The anomaly each kind (and caller) has open, so consecutive
    /// anomalous windows extend one anomaly.
    #[serde(with = "open_anomalies")]
    open: FxHashMap<(AnomalyKind, Option<u64>), OpenAnomaly>,
    /// Rates of closed windows too quiet to judge alone, carried into the
    /// next window's test: (first window index, rates). At most
    /// [`MAX_SPAN_WINDOWS`] windows are pooled.
    pending: Option<(u64, Rates)>,
    /// Services only: hashes of (credential, scheme) pairs seen, so a
    /// known client reaching one more endpoint with its usual scheme is not
    /// a new scheme there. At most [`MAX_KNOWN_CREDENTIALS`].
    known_credentials: rustc_hash::FxHashSet<u64>,
    /// New schemes being followed for volume (at most [`MAX_SCHEME_ONSETS`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    scheme_onsets: Vec<SchemeOnset>,
    /// Changed since it was loaded (only changed states are saved).
    #[serde(skip)]
    touched: bool,
}

/// A scheme seen for the first time on an endpoint, followed until it
/// carries [`DetectorConfig::new_scheme_min_requests`] requests or one window
/// length passes.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct SchemeOnset {
    label: String,
    first: Timestamp,
    requests: u64,
}

/// An anomaly that the next anomalous window of its kind extends.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct OpenAnomaly {
    /// Position in the detectors' anomaly list.
    anomaly: usize,
    /// The window it was last extended in.
    window: u64,
}

/// The open-anomaly map as a sorted list (JSON maps need string keys).
mod open_anomalies {
    use super::{AnomalyKind, OpenAnomaly};
    use rustc_hash::FxHashMap;
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    type Map = FxHashMap<(AnomalyKind, Option<u64>), OpenAnomaly>;

    pub(super) fn serialize<S: Serializer>(map: &Map, s: S) -> Result<S::Ok, S::Error> {
        let mut list: Vec<(AnomalyKind, Option<u64>, OpenAnomaly)> =
            map.iter().map(|(&(k, c), &o)| (k, c, o)).collect();
        list.sort_by_key(|&(k, c, _)| (k, c));
        list.serialize(s)
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Map, D::Error> {
        let list = Vec::<(AnomalyKind, Option<u64>, OpenAnomaly)>::deserialize(d)?;
        Ok(list.into_iter().map(|(k, c, o)| ((k, c), o)).collect())
    }
}

/// The detectors' state: what every endpoint and service has learned, and
/// the anomalies found so far.
#[derive(Debug, Default)]
pub struct Detectors {
    config: DetectorConfig,
    endpoints: FxHashMap<ObservationKey, EndpointState>,
    services: FxHashMap<String, EndpointState>,
    anomalies: Vec<Anomaly>,
    /// Records that fell into an already-closed window (counted in the
    /// open one instead).
    pub late_records: u64,
    /// The stored state was discarded (see [`Detectors::restore`]).
    restarted: bool,
}

fn window_bounds(index: u64, window_s: u64) -> (Timestamp, Timestamp) {
    let w = window_s.max(1) * 1_000_000_000;
    (Timestamp(index * w), Timestamp(index * w + w))
}

fn is_denied(status: u16) -> bool {
    status == 401 || status == 403
}

/// The auth label a record's scheme is learned under: API keys by where
/// they were carried (a key moving into the query string is a change).
fn scheme_label(r: &ExchangeRecord) -> &'static str {
    match (r.auth.scheme, r.auth.key_in) {
        (AuthScheme::ApiKey, Some(shadowtap_proto::record::KeyLocation::Query)) => "api_key:query",
        (AuthScheme::ApiKey, Some(shadowtap_proto::record::KeyLocation::Header)) => {
            "api_key:header"
        }
        (scheme, _) => scheme.as_str(),
    }
}

impl Detectors {
    pub fn new(config: DetectorConfig) -> Detectors {
        Detectors {
            config,
            ..Detectors::default()
        }
    }

    pub fn config(&self) -> &DetectorConfig {
        &self.config
    }

    /// Watches one exchange of endpoint `key`; `params` are the path key's
    /// placeholder values (the last one is taken as the object id).
    pub fn observe(&mut self, r: &ExchangeRecord, key: &ObservationKey, params: &[(u8, &str)]) {
        let Detectors {
            config,
            endpoints,
            services,
            anomalies,
            late_records,
            ..
        } = self;
        let window_s = config.window_s.max(1);
        let index = r.ts.as_nanos() / (window_s * 1_000_000_000);

        // The service rollup first: its windows close on the same clock.
        let service = match services.get_mut(&key.service) {
            Some(s) => s,
            None => services.entry(key.service.clone()).or_default(),
        };
        service.touched = true;
        if let Some(w) = roll(service, index, late_records) {
            close_service_window(config, &key.service, service, w, anomalies);
        }
        let w = service.window.get_or_insert_with(|| Window {
            index,
            ..Window::default()
        });
        count(w, r);
        if let (Some(p), Some(status)) = (&r.principal, r.status) {
            if is_denied(status) {
                if let Some(c) = track_caller(w, p) {
                    c.denied += 1;
                }
            }
        }
        // Whether the service already saw this scheme (on any endpoint), and
        // this credential with it.
        let label = scheme_label(r);
        let scheme_hash = quick_hash(label.as_bytes());
        let scheme_in_service = service.known_credentials.contains(&scheme_hash);
        if !scheme_in_service && r.auth.scheme != AuthScheme::None {
            service.known_credentials.insert(scheme_hash);
        }
        let mut remember = |h: u64| {
            let known = service.known_credentials.contains(&h);
            if !known && service.known_credentials.len() < MAX_KNOWN_CREDENTIALS {
                service.known_credentials.insert(h);
            }
            known
        };
        let known_credential = r
            .principal
            .as_ref()
            .is_some_and(|p| remember(quick_hash(p.as_bytes()) ^ scheme_hash.rotate_left(17)));
        let service_rates = &service.baseline.rates;

        let state = match endpoints.get_mut(key) {
            Some(s) => s,
            None => endpoints.entry(key.clone()).or_default(),
        };
        state.touched = true;
        if let Some(w) = roll(state, index, late_records) {
            close_endpoint_window(config, key, state, w, Some(service_rates), anomalies);
        }
        per_record(
            config,
            anomalies,
            r,
            key,
            state,
            params,
            index,
            Credential {
                known: known_credential,
                scheme_in_service,
            },
        );
    }

    /// Judges every open window as it stands (without learning from it) and
    /// returns all anomalies, sorted by start.
    pub fn finish(mut self) -> Vec<Anomaly> {
        let settled = self.anomalies.len();
        let keys: Vec<ObservationKey> = self.endpoints.keys().cloned().collect();
        for key in keys {
            let mut state = self.endpoints.remove(&key).unwrap_or_default();
            if let Some(w) = state.window.take() {
                let service_rates = self
                    .services
                    .get(&key.service)
                    .map(|s| s.baseline.rates.clone());
                close_endpoint_window(
                    &self.config,
                    &key,
                    &mut state,
                    w,
                    service_rates.as_ref(),
                    &mut self.anomalies,
                );
            }
        }
        let services: Vec<String> = self.services.keys().cloned().collect();
        for name in services {
            let mut state = self.services.remove(&name).unwrap_or_default();
            if let Some(w) = state.window.take() {
                close_service_window(&self.config, &name, &mut state, w, &mut self.anomalies);
            }
        }
        for a in &mut self.anomalies[settled..] {
            a.provisional = true;
        }
        self.anomalies.sort_by(|a, b| {
            (
                a.start,
                a.kind,
                &a.service,
                &a.path_key,
                &a.method,
                &a.caller,
            )
                .cmp(&(
                    b.start,
                    b.kind,
                    &b.service,
                    &b.path_key,
                    &b.method,
                    &b.caller,
                ))
        });
        self.anomalies
    }

    /// What a store keeps so that the next run continues where this one
    /// stopped: the states changed in this run (open windows included, as
    /// they stand before [`Detectors::finish`] judges them) and every
    /// settled anomaly (open ones are extended by later windows).
    pub fn export_state(&self) -> Result<DetectorState, serde_json::Error> {
        fn changed<K: Clone>(
            states: &FxHashMap<K, EndpointState>,
        ) -> Result<Vec<(K, String)>, serde_json::Error> {
            states
                .iter()
                .filter(|(_, s)| s.touched)
                .map(|(k, s)| Ok((k.clone(), serde_json::to_string(s)?)))
                .collect()
        }
        let endpoints = changed(&self.endpoints)?;
        let services = changed(&self.services)?;
        Ok(DetectorState {
            window_s: self.config.window_s,
            late_records: self.late_records,
            replaces_all: self.restarted,
            endpoints,
            services,
            anomalies: self.anomalies.clone(),
        })
    }

    /// Detectors that continue from a stored state. When the state was
    /// built with another window length its windows cannot continue: the
    /// baselines start over (the anomaly history stays), and the returned
    /// note says so.
    pub fn restore(
        config: DetectorConfig,
        state: DetectorState,
    ) -> Result<(Detectors, Option<String>), StateError> {
        let mut d = Detectors::new(config);
        let empty = state.endpoints.is_empty() && state.services.is_empty();
        if state.window_s != d.config.window_s && !empty {
            d.anomalies = state.anomalies;
            d.restarted = true;
            let note = format!(
                "the stored anomaly baselines use {} s windows and these settings {} s: baselines start over",
                state.window_s, d.config.window_s
            );
            return Ok((d, Some(note)));
        }
        d.late_records = state.late_records;
        let n = state.anomalies.len();
        d.anomalies = state.anomalies;
        for (key, json) in state.endpoints {
            let s: EndpointState = serde_json::from_str(&json).map_err(|e| StateError {
                scope: format!("{} {} {}", key.service, key.method, key.path),
                error: e.to_string(),
            })?;
            check_open(&s, n, &key.service)?;
            d.endpoints.insert(key, s);
        }
        for (name, json) in state.services {
            let s: EndpointState = serde_json::from_str(&json).map_err(|e| StateError {
                scope: name.clone(),
                error: e.to_string(),
            })?;
            check_open(&s, n, &name)?;
            d.services.insert(name, s);
        }
        Ok((d, None))
    }
}

/// Open anomalies must point into the anomaly list.
fn check_open(s: &EndpointState, anomalies: usize, scope: &str) -> Result<(), StateError> {
    match s.open.values().find(|o| o.anomaly >= anomalies) {
        Some(o) => Err(StateError {
            scope: scope.to_owned(),
            error: format!("refers to anomaly {} of {anomalies} stored", o.anomaly),
        }),
        None => Ok(()),
    }
}

/// The detectors' state in the form a store keeps: each endpoint's and
/// service's state as a JSON document, and the anomaly list.
#[derive(Clone, Debug, Default)]
pub struct DetectorState {
    /// The window length the state was built with.
    pub window_s: u64,
    pub late_records: u64,
    /// The stored states are obsolete (the window length changed): replace
    /// them all rather than only those in `endpoints` and `services`.
    pub replaces_all: bool,
    /// Endpoint states (only those changed, when exported).
    pub endpoints: Vec<(ObservationKey, String)>,
    pub services: Vec<(String, String)>,
    /// Every settled anomaly, in order (open anomalies refer to positions).
    pub anomalies: Vec<Anomaly>,
}

/// A stored detector state that cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("stored anomaly state of {scope} is not usable: {error}")]
pub struct StateError {
    scope: String,
    error: String,
}

/// What the service knows of a record's credential.
#[derive(Clone, Copy, Debug)]
struct Credential {
    /// This credential was seen in the service with this scheme.
    known: bool,
    /// The scheme was seen in the service (on any endpoint).
    scheme_in_service: bool,
}

/// Per-record checks and window bookkeeping for an endpoint.
#[expect(
    clippy::too_many_arguments,
    reason = "the record, its endpoint and the service's verdicts, split borrows of the detector state"
)]
fn per_record(
    cfg: &DetectorConfig,
    anomalies: &mut Vec<Anomaly>,
    r: &ExchangeRecord,
    key: &ObservationKey,
    state: &mut EndpointState,
    params: &[(u8, &str)],
    index: u64,
    credential: Credential,
) {
    let b = &state.baseline;
    let w = state.window.get_or_insert_with(|| Window {
        index,
        ..Window::default()
    });
    count(w, r);
    let ok = r.status.is_some_and(|s| (200..300).contains(&s));

    // Caller activity, for enumeration: only where the path has an id.
    if let (Some(p), false) = (&r.principal, params.is_empty()) {
        if let Some(c) = track_caller(w, p) {
            c.requests += 1;
            let denied = r.status.is_some_and(|s| is_denied(s) || s == 404);
            c.denied += u64::from(denied);
            if let Some((_, id)) = params.last() {
                let h = quick_hash(id.as_bytes());
                if let Err(at) = c.ids.binary_search(&h) {
                    if c.ids.len() < MAX_IDS_PER_CALLER {
                        c.ids.insert(at, h);
                    }
                }
                if let Ok(n) = id.parse::<u64>() {
                    c.walks.step(n, denied);
                }
            }
        }
    }

    // Single responses far above the usual size.
    if ok {
        if let Some(size) = r
            .response
            .as_ref()
            .map(|m| m.body.decoded_bytes.unwrap_or(m.body.bytes))
        {
            if size > 0 && b.sizes.count >= cfg.min_size_baseline {
                if let Some((median, sigma)) = state.baseline.size_spread() {
                    let ratio = size as f64 / median as f64;
                    let z = ratio.ln() / sigma;
                    if ratio >= cfg.size_outlier_ratio && z >= cfg.size_outlier_sigmas {
                        w.size_anomalous = true;
                        let (start, end) = (r.ts, r.ts);
                        raise(
                            anomalies,
                            state,
                            Raise {
                                kind: AnomalyKind::ResponseSizeOutlier,
                                severity: if ratio >= 100.0 { AnomalySeverity::High } else { AnomalySeverity::Medium },
                                key,
                                caller: None,
                                window: index,
                                first_window: index,
                                start,
                                end,
                                baseline: median as f64,
                                observed: size as f64,
                                measure: "response bytes (median vs response)",
                                counts: &[("responses", 1)],
                                explanation: format!(
                                    "a {size}-byte response is {ratio:.0}× the usual {median} bytes ({z:.1} robust σ): check for bulk data exposure"
                                ),
                            },
                        );
                        return;
                    }
                }
            }
        }
    }

    // Auth patterns: learned in the window, alarmed at their onset once
    // the baseline is trusted.
    let b = &state.baseline;
    let long_enough = b.windows >= cfg.min_auth_windows;
    let trusted = long_enough && b.requests >= cfg.min_auth_baseline;
    let trusted_jwt = long_enough && b.jwts >= cfg.min_auth_baseline;
    let (requests, jwts) = (b.requests, b.jwts);
    // Only an anomaly's explanation lists what was seen: joined on demand.
    let seen_schemes = || b.schemes.join(", ");
    let (known_anonymous, known_no_exp) = (b.anonymous > 0, b.jwts_without_exp > 0);
    let label = scheme_label(r);
    let scheme_known = b.schemes.iter().any(|s| s == label);
    let strong = long_enough && b.requests >= 10 * cfg.min_auth_baseline;
    let alg = r.auth.jwt.as_ref().map(|j| j.alg.as_deref().unwrap_or("?"));
    let alg_known = alg.is_some_and(|a| b.algs.iter().any(|known| known == a));
    let mut raised: Vec<(AnomalyKind, AnomalySeverity, &str, String, u64)> = Vec::new();
    let mut onset_start = None;
    if !state.scheme_onsets.is_empty() {
        let horizon = cfg.window_s.saturating_mul(1_000_000_000);
        state
            .scheme_onsets
            .retain(|o| r.ts.as_nanos().saturating_sub(o.first.as_nanos()) <= horizon);
        if let Some(i) = state.scheme_onsets.iter().position(|o| o.label == label) {
            let o = &mut state.scheme_onsets[i];
            o.requests += 1;
            if o.requests >= cfg.new_scheme_min_requests {
                let o = state.scheme_onsets.swap_remove(i);
                onset_start = Some(o.first);
                raised.push(new_scheme_anomaly(label, &seen_schemes(), requests));
            }
        }
    }
    let w = state.window.as_mut().expect("created above");
    if r.auth.scheme == AuthScheme::None {
        if ok && !w.saw_anonymous_2xx {
            w.saw_anonymous_2xx = true;
            if trusted && !known_anonymous {
                raised.push((
                    AnomalyKind::AnonymousSuccess,
                    AnomalySeverity::High,
                    "anonymous 2xx responses",
                    format!(
                        "answered 2xx to a request without credentials after {requests} requests that all carried them: check that authentication is still enforced"
                    ),
                    requests,
                ));
            }
        }
    } else if !scheme_known && !w.new_schemes.iter().any(|s| s == label) {
        w.new_schemes.push(label.to_owned());
        // A client the service already knows with this scheme, reaching one
        // more endpoint, is not a new scheme appearing. A scheme the
        // service uses elsewhere needs a strong baseline here.
        // A scheme the service uses elsewhere, on an endpoint with a
        // trusted but not strong baseline, alarms once it carries volume.
        if !credential.known && ((trusted && !credential.scheme_in_service) || strong) {
            raised.push(new_scheme_anomaly(label, &seen_schemes(), requests));
        } else if !credential.known && trusted {
            if cfg.new_scheme_min_requests <= 1 {
                raised.push(new_scheme_anomaly(label, &seen_schemes(), requests));
            } else if state.scheme_onsets.len() < MAX_SCHEME_ONSETS {
                state.scheme_onsets.push(SchemeOnset {
                    label: label.to_owned(),
                    first: r.ts,
                    requests: 1,
                });
            }
        }
    }
    if let (Some(jwt), Some(alg)) = (&r.auth.jwt, alg) {
        w.jwts += 1;
        if !alg_known && !w.new_algs.iter().any(|a| a == alg) {
            w.new_algs.push(alg.to_owned());
            if trusted_jwt {
                let severity = if alg.eq_ignore_ascii_case("none") || alg.starts_with("HS") {
                    AnomalySeverity::High
                } else {
                    AnomalySeverity::Medium
                };
                raised.push((
                    AnomalyKind::JwtAlgChange,
                    severity,
                    "tokens with the new alg",
                    format!(
                        "JWT alg `{alg}` appeared where only `{}` was seen: check token validation (alg confusion)",
                        b.algs.join(", ")
                    ),
                    jwts,
                ));
            }
        }
        if !jwt.has_exp && !w.saw_no_exp {
            w.saw_no_exp = true;
            if trusted_jwt && !known_no_exp {
                raised.push((
                    AnomalyKind::JwtWithoutExp,
                    AnomalySeverity::Medium,
                    "tokens without exp",
                    format!(
                        "a JWT without `exp` was accepted after {jwts} tokens that all expired: a never-expiring token is in use"
                    ),
                    jwts,
                ));
            }
        }
    }
    for (kind, severity, measure, explanation, baseline_n) in raised {
        let start = match kind {
            AnomalyKind::NewAuthScheme => onset_start.unwrap_or(r.ts),
            _ => r.ts,
        };
        raise(
            anomalies,
            state,
            Raise {
                kind,
                severity,
                key,
                caller: None,
                window: index,
                first_window: index,
                start,
                end: r.ts,
                baseline: 0.0,
                observed: 1.0,
                measure,
                counts: &[("baseline_requests", baseline_n)],
                explanation,
            },
        );
    }
}

/// The `new_auth_scheme` anomaly for `label` on an endpoint that has seen
/// `seen` over `requests` requests.
fn new_scheme_anomaly(
    label: &str,
    seen: &str,
    requests: u64,
) -> (AnomalyKind, AnomalySeverity, &'static str, String, u64) {
    let severity = if label == "basic" || label == "api_key:query" {
        AnomalySeverity::High
    } else {
        AnomalySeverity::Medium
    };
    (
        AnomalyKind::NewAuthScheme,
        severity,
        "requests with the new scheme",
        format!("auth scheme `{label}` appeared where only `{seen}` was seen"),
        requests,
    )
}

/// The hash of an integer object id, as walks keep it.
fn id_hash(id: u64) -> u64 {
    quick_hash(&id.to_le_bytes())
}

/// A fast 64-bit hash for in-memory sets of callers and ids (FxHash:
/// deterministic, not cryptographic; fingerprints are already keyed hashes).
fn quick_hash(bytes: &[u8]) -> u64 {
    use std::hash::Hasher as _;
    let mut h = rustc_hash::FxHasher::default();
    h.write(bytes);
    h.finish()
}

/// The caller's activity record in `w`, or `None` (counted) when the
/// window already tracks [`MAX_CALLERS_PER_WINDOW`] others.
fn track_caller<'w>(w: &'w mut Window, principal: &str) -> Option<&'w mut CallerWindow> {
    let h = quick_hash(principal.as_bytes());
    if w.callers.len() >= MAX_CALLERS_PER_WINDOW && !w.callers.contains_key(&h) {
        w.untracked_callers += 1;
        return None;
    }
    Some(w.callers.entry(h).or_insert_with(|| {
        let mut label = [0u8; 12];
        let n = principal.len().min(12);
        label[..n].copy_from_slice(&principal.as_bytes()[..n]);
        CallerWindow {
            label,
            ..CallerWindow::default()
        }
    }))
}

/// Counts a record into a window.
fn count(w: &mut Window, r: &ExchangeRecord) {
    let Some(status) = r.status else {
        return;
    };
    w.rates.answered += 1.0;
    match status {
        400..=499 => w.rates.c4xx += 1.0,
        500..=599 => w.rates.c5xx += 1.0,
        _ => {}
    }
    if is_denied(status) {
        w.rates.denied += 1.0;
    }
    if (200..300).contains(&status) {
        if let Some(m) = &r.response {
            let size = m.body.decoded_bytes.unwrap_or(m.body.bytes);
            if size > 0 {
                w.sizes.insert(size);
            }
        }
    }
}

/// Moves `state` to window `index`: returns the window that closed, if any.
fn roll(state: &mut EndpointState, index: u64, late: &mut u64) -> Option<Window> {
    match &state.window {
        Some(w) if index > w.index => {
            let closed = state.window.take();
            state.window = Some(Window {
                index,
                ..Window::default()
            });
            closed
        }
        Some(w) if index < w.index => {
            *late += 1;
            None
        }
        Some(_) => None,
        None => {
            state.window = Some(Window {
                index,
                ..Window::default()
            });
            None
        }
    }
}

/// Median and robust standard deviation (from the quartiles) of a size
/// sketch on a natural-log scale.
fn log_spread(s: &QuantileSketch) -> Option<(u64, f64)> {
    let median = s.quantile(0.5)?.max(1);
    let q1 = s.quantile(0.25)?.max(1) as f64;
    let q3 = s.quantile(0.75)?.max(1) as f64;
    // IQR / 1.349 is σ for a normal distribution; floor it so a constant
    // size doesn't make every byte an outlier.
    let sigma = ((q3.ln() - q1.ln()) / 1.349).max(0.1);
    Some((median, sigma))
}

/// What to raise: one anomaly, or an extension of the same kind's open one.
struct Raise<'a> {
    kind: AnomalyKind,
    severity: AnomalySeverity,
    key: &'a ObservationKey,
    caller: Option<(u64, String)>,
    /// The window being judged, and the first window of its span (the same
    /// unless a quiet endpoint's judgement covers several windows).
    window: u64,
    first_window: u64,
    start: Timestamp,
    end: Timestamp,
    baseline: f64,
    observed: f64,
    measure: &'a str,
    counts: &'a [(&'a str, u64)],
    explanation: String,
}

/// Records an anomaly for an endpoint, extending the open one of the same
/// kind (and caller) when it was raised in this or the previous window
/// (for a judgement spanning several windows: adjacent to its first one).
fn raise(anomalies: &mut Vec<Anomaly>, state: &mut EndpointState, r: Raise<'_>) {
    let open_key = (r.kind, r.caller.as_ref().map(|(h, _)| *h));
    if let Some(open) = state.open.get_mut(&open_key) {
        if r.first_window <= open.window + 1 && open.anomaly < anomalies.len() {
            let a = &mut anomalies[open.anomaly];
            a.end = a.end.max(r.end);
            a.start = a.start.min(r.start);
            // The anomaly keeps its peak: the highest observed value, and
            // the explanation of the window that showed it.
            if r.observed > a.observed {
                a.observed = r.observed;
                a.explanation = r.explanation;
            }
            for (k, v) in r.counts {
                *a.counts.entry((*k).to_owned()).or_insert(0) += v;
            }
            open.window = r.window;
            return;
        }
    }
    anomalies.push(Anomaly {
        kind: r.kind,
        severity: r.severity,
        service: r.key.service.clone(),
        method: (!r.key.method.is_empty()).then(|| r.key.method.clone()),
        path_key: (!r.key.path.is_empty()).then(|| r.key.path.clone()),
        template: None,
        caller: r.caller.map(|(_, label)| label),
        start: r.start,
        end: r.end,
        baseline: r.baseline,
        observed: r.observed,
        measure: r.measure.to_owned(),
        counts: r
            .counts
            .iter()
            .map(|(k, v)| ((*k).to_owned(), *v))
            .collect(),
        explanation: r.explanation,
        provisional: false,
    });
    state.open.insert(
        open_key,
        OpenAnomaly {
            anomaly: anomalies.len() - 1,
            window: r.window,
        },
    );
}

/// The error-rate test of one window against a baseline: `Some(observed
/// share)` when the window is a spike.
fn spike(
    cfg: &DetectorConfig,
    errors: f64,
    answered: f64,
    base_errors: f64,
    base_answered: f64,
) -> Option<(f64, f64)> {
    if answered < cfg.min_window_requests as f64 || errors < cfg.min_errors as f64 {
        return None;
    }
    // A little prior keeps a spotless baseline from making one error a spike.
    let p = (base_errors + 0.5) / (base_answered + 1.0);
    let q = errors / answered;
    if q < p * cfg.min_rate_factor || q < p + cfg.min_rate_increase {
        return None;
    }
    (binomial_surprise(errors as u64, answered as u64, p) >= cfg.surprise).then_some((p, q))
}

fn close_endpoint_window(
    cfg: &DetectorConfig,
    key: &ObservationKey,
    state: &mut EndpointState,
    w: Window,
    service: Option<&Rates>,
    anomalies: &mut Vec<Anomaly>,
) {
    let (_, end) = window_bounds(w.index, cfg.window_s);
    // Pool quiet windows: judge the span once it has enough requests.
    let (first, mut rates) = match state.pending.take() {
        Some((first, mut pooled)) if w.index - first < MAX_SPAN_WINDOWS => {
            pooled.add(&w.rates);
            (first, pooled)
        }
        // A stale pool was too quiet to judge: learn it as it is.
        Some((_, stale)) => {
            state.baseline.rates.add(&stale);
            (w.index, w.rates.clone())
        }
        None => (w.index, w.rates.clone()),
    };
    let judged =
        rates.answered >= cfg.min_window_requests as f64 || w.index - first + 1 >= MAX_SPAN_WINDOWS;
    if !judged {
        state.pending = Some((first, std::mem::take(&mut rates)));
    }
    let (start, _) = window_bounds(first, cfg.window_s);
    let own = state.baseline.rates.answered >= cfg.min_baseline_requests as f64;
    let base = if own {
        Some(state.baseline.rates.clone())
    } else {
        service
            .filter(|s| s.answered >= cfg.min_baseline_requests as f64)
            .cloned()
    };
    let mut rates_anomalous = false;
    if let (Some(base), true) = (&base, judged) {
        for (kind, errors, base_errors, label) in [
            (AnomalyKind::ErrorSpike5xx, rates.c5xx, base.c5xx, "5xx"),
            (AnomalyKind::ErrorSpike4xx, rates.c4xx, base.c4xx, "4xx"),
            (
                AnomalyKind::AuthFailureBurst,
                rates.denied,
                base.denied,
                "401/403",
            ),
        ] {
            if let Some((p, q)) = spike(cfg, errors, rates.answered, base_errors, base.answered) {
                rates_anomalous = true;
                raise(
                    anomalies,
                    state,
                    Raise {
                        kind,
                        severity: if kind == AnomalyKind::ErrorSpike4xx {
                            AnomalySeverity::Medium
                        } else {
                            AnomalySeverity::High
                        },
                        key,
                        caller: None,
                        window: w.index,
                        first_window: first,
                        start,
                        end,
                        baseline: crate::report::round3(p),
                        observed: crate::report::round3(q),
                        measure: match kind {
                            AnomalyKind::ErrorSpike5xx => "5xx share",
                            AnomalyKind::ErrorSpike4xx => "4xx share",
                            _ => "401/403 share",
                        },
                        counts: &[
                            ("requests", rates.answered as u64),
                            ("errors", errors as u64),
                        ],
                        explanation: format!(
                            "{label} rate {:.1}% against a usual {:.1}% ({} of {} requests{})",
                            q * 100.0,
                            p * 100.0,
                            errors as u64,
                            rates.answered as u64,
                            if own {
                                ""
                            } else {
                                "; judged against the service"
                            }
                        ),
                    },
                );
            }
        }
    }

    // Level shift of the window's sizes.
    let mut sizes_anomalous = w.size_anomalous;
    if w.sizes.count >= cfg.min_shift_responses
        && state.baseline.sizes.count >= cfg.min_size_baseline
    {
        if let (Some((base_median, _)), Some(median)) =
            (state.baseline.size_spread(), w.sizes.quantile(0.5))
        {
            let ratio = median.max(1) as f64 / base_median as f64;
            if ratio >= cfg.size_shift_ratio || ratio <= 1.0 / cfg.size_shift_ratio {
                sizes_anomalous = true;
                raise(
                    anomalies,
                    state,
                    Raise {
                        kind: AnomalyKind::ResponseSizeShift,
                        severity: AnomalySeverity::Medium,
                        key,
                        caller: None,
                        window: w.index,
                        first_window: first,
                        start,
                        end,
                        baseline: base_median as f64,
                        observed: median as f64,
                        measure: "median response bytes",
                        counts: &[("responses", w.sizes.count)],
                        explanation: format!(
                            "responses moved as a whole: median {median} bytes against a usual {base_median} ({ratio:.1}×)"
                        ),
                    },
                );
            }
        }
    }

    // Enumeration: callers touching far more ids than callers usually do.
    let usual = state
        .baseline
        .ids_per_caller
        .quantile(0.99)
        .unwrap_or(1)
        .max(1);
    let mut normal_counts = Vec::new();
    let mut callers: Vec<(&u64, &CallerWindow)> = w.callers.iter().collect();
    callers.sort_by_key(|(h, _)| **h);
    for (h, c) in callers {
        let distinct = c.ids.len() as u64;
        let walk = c.walks.longest();
        let sequential = walk.len >= cfg.bola_min_ids / 2 && walk.denied * 2 >= walk.len;
        let wide = distinct >= cfg.bola_min_ids
            && distinct as f64 >= cfg.bola_factor * usual as f64
            && state.baseline.ids_per_caller.count >= cfg.bola_min_baseline;
        if (wide || sequential) && distinct >= cfg.bola_min_ids / 2 {
            let label = c.label_text();
            raise(
                anomalies,
                state,
                Raise {
                    kind: AnomalyKind::BolaEnumeration,
                    severity: AnomalySeverity::High,
                    key,
                    caller: Some((*h, label.clone())),
                    window: w.index,
                    first_window: first,
                    start,
                    end,
                    baseline: usual as f64,
                    observed: distinct as f64,
                    measure: "distinct object ids per caller and window",
                    counts: &[
                        ("requests", c.requests),
                        ("denied_or_not_found", c.denied),
                        ("distinct_ids", distinct),
                        ("walk_length", if sequential { walk.len } else { 0 }),
                    ],
                    explanation: if sequential {
                        format!(
                            "caller {label} walked {} consecutive ids in one window, {} of them answered 401/403/404 ({distinct} distinct ids; callers usually touch up to {usual})",
                            walk.len, walk.denied
                        )
                    } else {
                        format!(
                            "caller {label} touched {distinct} distinct ids in one window (callers usually touch up to {usual}), {} of {} answered 401/403/404",
                            c.denied, c.requests
                        )
                    },
                },
            );
        } else if distinct > 0 {
            normal_counts.push(distinct);
        }
    }

    // Learn from what was normal.
    let b = &mut state.baseline;
    if judged && !rates_anomalous {
        b.rates.add(&rates);
        b.rates.decay();
    }
    if !sizes_anomalous {
        b.learn_sizes(&w.sizes);
    }
    for n in normal_counts {
        b.ids_per_caller.insert(n);
    }
    b.requests += w.rates.answered as u64;
    b.windows += 1;
    if w.saw_anonymous_2xx {
        b.anonymous += 1;
    }
    for s in w.new_schemes {
        if !b.schemes.contains(&s) {
            b.schemes.push(s);
        }
    }
    for a in w.new_algs {
        if !b.algs.contains(&a) {
            b.algs.push(a);
        }
    }
    if w.saw_no_exp {
        b.jwts_without_exp += 1;
    }
    b.jwts += w.jwts;
}

fn close_service_window(
    cfg: &DetectorConfig,
    service: &str,
    state: &mut EndpointState,
    w: Window,
    anomalies: &mut Vec<Anomaly>,
) {
    let (start, end) = window_bounds(w.index, cfg.window_s);
    let key = ObservationKey {
        service: service.to_owned(),
        method: String::new(),
        path: String::new(),
    };
    let mut anomalous = false;
    if state.baseline.rates.answered >= cfg.min_baseline_requests as f64 {
        let base = state.baseline.rates.clone();
        if let Some((p, q)) = spike(
            cfg,
            w.rates.denied,
            w.rates.answered,
            base.denied,
            base.answered,
        ) {
            anomalous = true;
            raise(
                anomalies,
                state,
                Raise {
                    kind: AnomalyKind::AuthFailureBurst,
                    severity: AnomalySeverity::High,
                    key: &key,
                    caller: None,
                    window: w.index,
                    first_window: w.index,
                    start,
                    end,
                    baseline: crate::report::round3(p),
                    observed: crate::report::round3(q),
                    measure: "401/403 share",
                    counts: &[("requests", w.rates.answered as u64), ("denied", w.rates.denied as u64)],
                    explanation: format!(
                        "{:.1}% of the service's requests were refused (401/403) against a usual {:.1}%: credential stuffing or a broken client",
                        q * 100.0,
                        p * 100.0
                    ),
                },
            );
        }
    }
    let mut callers: Vec<(&u64, &CallerWindow)> = w.callers.iter().collect();
    callers.sort_by_key(|(h, _)| **h);
    for (h, c) in callers {
        if c.denied >= cfg.caller_failure_burst {
            let label = c.label_text();
            raise(
                anomalies,
                state,
                Raise {
                    kind: AnomalyKind::AuthFailureBurst,
                    severity: AnomalySeverity::High,
                    key: &key,
                    caller: Some((*h, label.clone())),
                    window: w.index,
                    first_window: w.index,
                    start,
                    end,
                    baseline: cfg.caller_failure_burst as f64,
                    observed: c.denied as f64,
                    measure: "401/403 answers to one caller in a window",
                    counts: &[("denied", c.denied)],
                    explanation: format!(
                        "caller {label} was refused {} times in one window: a guessed or revoked credential being retried",
                        c.denied
                    ),
                },
            );
        }
    }
    if !anomalous {
        state.baseline.rates.add(&w.rates);
        state.baseline.rates.decay();
    }
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod naming {
    use super::AnomalyKind;

    #[test]
    fn serialized_names_are_the_documented_ones() {
        for k in AnomalyKind::ALL {
            assert_eq!(serde_json::to_value(k).unwrap(), k.as_str());
        }
        for s in [
            super::AnomalySeverity::Low,
            super::AnomalySeverity::Medium,
            super::AnomalySeverity::High,
        ] {
            assert_eq!(serde_json::to_value(s).unwrap(), s.as_str());
        }
    }
}
