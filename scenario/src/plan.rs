//! Where, when and how each anomaly is injected.
//!
//! Planning happens before any packet is written, from its own RNG
//! sub-stream: it picks an endpoint and a window for every requested
//! anomaly (after the warm-up, never overlapping another anomaly on the
//! same endpoint), adds the attackers' callers to the catalogue, and lists
//! the extra requests to inject. Rate-shaped anomalies (error spikes, size
//! shifts) instead alter the steady requests that fall into their window.

use std::net::Ipv4Addr;

use serde_json::{json, Map, Value};

use crate::anomaly::AnomalyKind;
use crate::catalog::{token, Access, Caller, Catalog, Credential, IdKind, Issuer, Op};
use crate::config::{Config, MIN, SEC};
use crate::rng::{cumulative, Rng};

/// RNG sub-stream of the plan.
const STREAM_PLAN: u64 = 2;
/// Steady requests a rate-shaped window should hold (sets its length).
const WINDOW_REQUESTS: f64 = 60.0;
/// Fewest steady requests a rate-shaped window may hold; quieter
/// endpoints or times are not used for it.
const MIN_WINDOW_REQUESTS: f64 = 30.0;
/// Shortest and longest rate-shaped window.
const MIN_WINDOW_NS: u64 = 5 * MIN;
const MAX_WINDOW_NS: u64 = 60 * MIN;
/// Gap kept free after the last window and around windows.
const END_MARGIN_NS: u64 = 2 * MIN;
const SAME_ENDPOINT_GAP_NS: u64 = 15 * MIN;
const GLOBAL_GAP_NS: u64 = 5 * MIN;
/// Placement attempts: first with no overlap at all, then per endpoint.
const STRICT_ATTEMPTS: u32 = 150;
const RELAXED_ATTEMPTS: u32 = 150;

/// How an injected request authenticates.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum AuthMode {
    /// The caller's own credential.
    Steady,
    /// No credentials at all.
    Anonymous,
    Basic {
        user: String,
        password: String,
    },
    /// `?api_key=<key>`.
    ApiKeyQuery(String),
    /// A JWT for `sub` with this `alg`, with or without `exp`.
    Jwt {
        issuer: Issuer,
        sub: u64,
        alg: &'static str,
        exp: bool,
    },
}

/// One extra request.
#[derive(Clone, Debug)]
pub(crate) struct Injected {
    pub(crate) at_ns: u64,
    pub(crate) endpoint: usize,
    pub(crate) caller: usize,
    pub(crate) auth: AuthMode,
    /// Value of the first path parameter, when forced.
    pub(crate) id: Option<u64>,
    pub(crate) status: u16,
    /// Response body size × this (1 for steady sizes).
    pub(crate) size_factor: f64,
    /// Index of the planned anomaly.
    pub(crate) anomaly: usize,
}

/// What a planned anomaly does to steady traffic in its window.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Effect {
    /// Steady requests get a 5xx (or 4xx) status with probability `rate`.
    ErrorRate { server: bool, rate: f64 },
    /// Steady success bodies are `factor` times larger.
    SizeFactor(f64),
    /// Only the injected requests carry the anomaly.
    Injected,
}

/// A planned anomaly.
#[derive(Clone, Debug)]
pub(crate) struct Planned {
    pub(crate) kind: AnomalyKind,
    pub(crate) endpoint: usize,
    pub(crate) start_ns: u64,
    pub(crate) end_ns: u64,
    pub(crate) effect: Effect,
    pub(crate) params: Map<String, Value>,
}

/// The plan: anomalies and the injected requests, sorted by time.
#[derive(Clone, Debug, Default)]
pub(crate) struct Plan {
    pub(crate) anomalies: Vec<Planned>,
    pub(crate) injected: Vec<Injected>,
    pub(crate) skipped: Vec<AnomalyKind>,
}

/// Plans `config`'s anomalies; adds attacker callers to `catalog`.
pub(crate) fn plan(config: &Config, catalog: &mut Catalog) -> Plan {
    let mut planner = Planner {
        config,
        rng: Rng::new(config.seed, STREAM_PLAN),
        plan: Plan::default(),
        next_attacker: 0,
    };
    for instance in 0..config.anomalies.per_kind {
        for &kind in &config.anomalies.kinds {
            if !planner.place(kind, instance, catalog) {
                planner.plan.skipped.push(kind);
            }
        }
    }
    let mut plan = planner.plan;
    // Start order, with injected requests following their anomaly's new index.
    let mut order: Vec<usize> = (0..plan.anomalies.len()).collect();
    order.sort_by_key(|&i| (plan.anomalies[i].start_ns, i));
    let mut new_index = vec![0; order.len()];
    for (new, &old) in order.iter().enumerate() {
        new_index[old] = new;
    }
    plan.anomalies = order.iter().map(|&i| plan.anomalies[i].clone()).collect();
    for inj in &mut plan.injected {
        inj.anomaly = new_index[inj.anomaly];
    }
    plan.injected.sort_by_key(|i| i.at_ns);
    plan
}

struct Planner<'a> {
    config: &'a Config,
    rng: Rng,
    plan: Plan,
    next_attacker: u32,
}

impl Planner<'_> {
    /// Steady requests per second at `endpoint`, `at_ns` after the start.
    fn endpoint_rate(&self, catalog: &Catalog, endpoint: usize, at_ns: u64) -> f64 {
        self.config.rate * catalog.endpoints[endpoint].share * self.config.load_factor(at_ns)
    }

    /// Places one anomaly; false when it does not fit.
    fn place(&mut self, kind: AnomalyKind, instance: u32, catalog: &mut Catalog) -> bool {
        let variant = instance % 2;
        let candidates = candidates(kind, variant, catalog);
        if candidates.is_empty() {
            return false;
        }
        let warm = self.config.warmup_ns();
        let duration = self.config.duration_ns;
        let Some(room) = duration.checked_sub(warm + END_MARGIN_NS + MIN_WINDOW_NS) else {
            return false;
        };
        for attempt in 0..STRICT_ATTEMPTS + RELAXED_ATTEMPTS {
            let endpoint = self.pick_endpoint(&candidates, catalog);
            let start = warm + self.rng.below(room + 1);
            let start = start - start % SEC;
            // Too quiet here for a window of enough requests, or no room left: retry.
            let Some(len) = self.window_len(kind, catalog, endpoint, start) else {
                continue;
            };
            if start + len + END_MARGIN_NS > duration {
                continue;
            }
            let end = start + len;
            let strict = attempt < STRICT_ATTEMPTS;
            let clash = self.plan.anomalies.iter().any(|a| {
                let gap = if strict {
                    GLOBAL_GAP_NS
                } else if a.endpoint == endpoint {
                    SAME_ENDPOINT_GAP_NS
                } else {
                    return false;
                };
                start < a.end_ns + gap && a.start_ns < end + gap
            });
            if !clash {
                self.build(kind, variant, endpoint, start, end, catalog);
                return true;
            }
        }
        false
    }

    /// A candidate endpoint, weighted by traffic; already used ones are
    /// ten times less likely.
    fn pick_endpoint(&mut self, candidates: &[usize], catalog: &Catalog) -> usize {
        let weights = candidates.iter().map(|&e| {
            let used = self.plan.anomalies.iter().any(|a| a.endpoint == e);
            catalog.endpoints[e].share * if used { 0.1 } else { 1.0 }
        });
        let cum = cumulative(weights);
        candidates[self.rng.pick_cumulative(&cum)]
    }

    /// The window of `kind` on `endpoint` from `start`; `None` when a
    /// rate-shaped window there would hold fewer than
    /// [`MIN_WINDOW_REQUESTS`] steady requests even at its longest.
    fn window_len(
        &self,
        kind: AnomalyKind,
        catalog: &Catalog,
        endpoint: usize,
        start: u64,
    ) -> Option<u64> {
        match kind {
            AnomalyKind::ErrorSpike5xx
            | AnomalyKind::ErrorSpike4xx
            | AnomalyKind::ResponseSizeShift => {
                let rate = self.endpoint_rate(catalog, endpoint, start).max(1e-9);
                let secs = (WINDOW_REQUESTS / rate).ceil();
                let len = ((secs * SEC as f64) as u64).clamp(MIN_WINDOW_NS, MAX_WINDOW_NS);
                // The load may fall during the window: judge by its quieter end.
                let low = rate.min(self.endpoint_rate(catalog, endpoint, start + len));
                (low * (len / SEC) as f64 >= MIN_WINDOW_REQUESTS).then_some(len)
            }
            AnomalyKind::AuthFailureBurst => Some(3 * MIN),
            AnomalyKind::BolaEnumeration => Some(6 * MIN),
            _ => Some(10 * MIN),
        }
    }

    /// A new external caller (documentation address ranges).
    fn attacker(&mut self, credential: Credential, catalog: &mut Catalog) -> usize {
        let n = self.next_attacker;
        self.next_attacker += 1;
        let ip = Ipv4Addr::new(203, 0, (113 + n / 250) as u8, (n % 250 + 1) as u8);
        catalog
            .callers
            .push(Caller::attacker(ip, credential, &mut self.rng));
        catalog.callers.len() - 1
    }

    /// `count` instants spread at random over `[start, end − 1 s)`.
    fn times(&mut self, count: u64, start: u64, end: u64) -> Vec<u64> {
        let span = end.saturating_sub(start + SEC).max(1);
        let mut t: Vec<u64> = (0..count).map(|_| start + self.rng.below(span)).collect();
        t.sort_unstable();
        t
    }

    fn build(
        &mut self,
        kind: AnomalyKind,
        variant: u32,
        endpoint: usize,
        start: u64,
        end: u64,
        catalog: &mut Catalog,
    ) {
        let index = self.plan.anomalies.len();
        let ep = catalog.endpoints[endpoint].clone();
        let mut params = Map::new();
        let inject = |planner: &mut Self, at_ns, caller, auth, id, status, size_factor| {
            planner.plan.injected.push(Injected {
                at_ns,
                endpoint,
                caller,
                auth,
                id,
                status,
                size_factor,
                anomaly: index,
            });
        };
        let ok = ep.success_status();
        let effect = match kind {
            AnomalyKind::ErrorSpike5xx | AnomalyKind::ErrorSpike4xx => {
                let server = kind == AnomalyKind::ErrorSpike5xx;
                let rate = (self.rng.uniform(0.2, 0.6) * 100.0).round() / 100.0;
                params.insert("rate".into(), json!(rate));
                let baseline = if server { ep.p5xx } else { ep.p4xx };
                params.insert("baseline_rate".into(), json!(round4(baseline)));
                let statuses = if server {
                    SERVER_ERRORS
                } else {
                    client_errors(ep.op)
                };
                params.insert("statuses".into(), json!(statuses));
                Effect::ErrorRate { server, rate }
            }
            AnomalyKind::ResponseSizeShift => {
                let factor = (self.rng.uniform(4.0, 8.0) * 10.0).round() / 10.0;
                params.insert("factor".into(), json!(factor));
                params.insert(
                    "baseline_median_bytes".into(),
                    json!(ep.size_median.round()),
                );
                Effect::SizeFactor(factor)
            }
            AnomalyKind::ResponseSizeOutlier => {
                let factor = self.rng.uniform(50.0, 200.0).round();
                let count = self.rng.range(3, 5);
                params.insert("factor".into(), json!(factor));
                params.insert(
                    "baseline_median_bytes".into(),
                    json!(ep.size_median.round()),
                );
                params.insert("count".into(), json!(count));
                for at in self.times(count, start, end) {
                    let caller = catalog.draw_caller(endpoint, &mut self.rng);
                    inject(self, at, caller, AuthMode::Steady, None, ok, factor);
                }
                Effect::Injected
            }
            AnomalyKind::AnonymousSuccess => {
                let count = self.rng.range(20, 50);
                let caller = self.attacker(Credential::Anonymous, catalog);
                params.insert("count".into(), json!(count));
                params.insert("baseline_scheme".into(), json!(ep.access.scheme()));
                params.insert(
                    "client_ip".into(),
                    json!(catalog.callers[caller].ip.to_string()),
                );
                for at in self.times(count, start, end) {
                    inject(self, at, caller, AuthMode::Anonymous, None, ok, 1.0);
                }
                Effect::Injected
            }
            AnomalyKind::NewAuthScheme => {
                let count = self.rng.range(20, 50);
                let caller = self.attacker(Credential::Anonymous, catalog);
                let auth = if variant == 0 && matches!(ep.access, Access::Jwt(_)) {
                    params.insert("scheme".into(), json!("basic"));
                    AuthMode::Basic {
                        user: "svc-legacy".into(),
                        password: token(&mut self.rng, 16),
                    }
                } else {
                    params.insert("scheme".into(), json!("api_key"));
                    params.insert("location".into(), json!("query"));
                    params.insert("param".into(), json!("api_key"));
                    AuthMode::ApiKeyQuery(format!("qk_{}", token(&mut self.rng, 28)))
                };
                params.insert("baseline_scheme".into(), json!(ep.access.scheme()));
                params.insert("count".into(), json!(count));
                params.insert(
                    "client_ip".into(),
                    json!(catalog.callers[caller].ip.to_string()),
                );
                for at in self.times(count, start, end) {
                    inject(self, at, caller, auth.clone(), None, ok, 1.0);
                }
                Effect::Injected
            }
            AnomalyKind::JwtAlgChange | AnomalyKind::JwtWithoutExp => {
                let count = self.rng.range(20, 50);
                let issuer = match ep.access {
                    Access::Jwt(issuer) => issuer,
                    _ => Issuer::Shop,
                };
                let victim = catalog.draw_caller(endpoint, &mut self.rng);
                let sub = match catalog.callers[victim].credential {
                    Credential::Jwt { sub, .. } => sub,
                    _ => 1,
                };
                let (caller, alg, exp) = if kind == AnomalyKind::JwtAlgChange {
                    let alg = if variant == 0 { "none" } else { "HS256" };
                    params.insert("alg".into(), json!(alg));
                    params.insert("baseline_alg".into(), json!("RS256"));
                    // A forged token for a real user, from elsewhere.
                    (self.attacker(Credential::Anonymous, catalog), alg, true)
                } else {
                    // A real user's client that stopped putting `exp` in.
                    (victim, "RS256", false)
                };
                params.insert("count".into(), json!(count));
                params.insert(
                    "client_ip".into(),
                    json!(catalog.callers[caller].ip.to_string()),
                );
                let auth = AuthMode::Jwt {
                    issuer,
                    sub,
                    alg,
                    exp,
                };
                for at in self.times(count, start, end) {
                    inject(self, at, caller, auth.clone(), None, ok, 1.0);
                }
                Effect::Injected
            }
            AnomalyKind::AuthFailureBurst => {
                let expected =
                    self.endpoint_rate(catalog, endpoint, start) * ((end - start) / SEC) as f64;
                let count = ((expected * 0.3) as u64).clamp(40, 3000);
                params.insert("count".into(), json!(count));
                let times = self.times(count, start, end);
                if ep.access == Access::Basic {
                    // Credential stuffing against one account: one user name,
                    // a new password each time, all refused.
                    params.insert("scope".into(), json!("caller"));
                    params.insert("statuses".into(), json!([401]));
                    params.insert("callers".into(), json!(1));
                    params.insert("user".into(), json!("ops-alice"));
                    let caller = self.attacker(Credential::Anonymous, catalog);
                    params.insert(
                        "client_ip".into(),
                        json!(catalog.callers[caller].ip.to_string()),
                    );
                    for at in times {
                        let auth = AuthMode::Basic {
                            user: "ops-alice".into(),
                            password: token(&mut self.rng, 12),
                        };
                        inject(self, at, caller, auth, None, 401, 1.0);
                    }
                } else {
                    // Many stolen or made-up credentials, each tried a few times.
                    let callers = self.rng.range(10, 25);
                    params.insert("scope".into(), json!("overall"));
                    params.insert("statuses".into(), json!([401, 403]));
                    params.insert("callers".into(), json!(callers));
                    let mut ids = Vec::new();
                    for _ in 0..callers {
                        let cred = match ep.access {
                            Access::Jwt(issuer) => Credential::Jwt {
                                issuer,
                                sub: 100_000 + self.rng.below(900_000),
                            },
                            _ => {
                                Credential::ApiKey(format!("pk_live_{}", token(&mut self.rng, 32)))
                            }
                        };
                        ids.push(self.attacker(cred, catalog));
                    }
                    for at in times {
                        let caller = ids[self.rng.below(ids.len() as u64) as usize];
                        let status = if self.rng.chance(0.7) { 401 } else { 403 };
                        inject(self, at, caller, AuthMode::Steady, None, status, 1.0);
                    }
                }
                Effect::Injected
            }
            AnomalyKind::BolaEnumeration => {
                let param = ep.params.first().cloned();
                let pool = param.as_ref().map_or(1000, |p| p.pool);
                let n = self.rng.range(120, 250);
                // Start so that about a fifth of the walk runs past the last object.
                let first = pool.saturating_sub(n * 4 / 5).max(1);
                let caller = catalog.draw_caller(endpoint, &mut self.rng);
                let mut denied = 0u64;
                let times = self.times(n, start, end);
                for (k, at) in times.into_iter().enumerate() {
                    let id = first + k as u64;
                    let owned = param
                        .as_ref()
                        .is_some_and(|p| catalog.callers[caller].owns(p, id));
                    let status = if id > pool {
                        404
                    } else if owned {
                        200
                    } else {
                        let x = self.rng.f64();
                        if x < 0.7 {
                            403
                        } else if x < 0.85 {
                            404
                        } else {
                            200
                        }
                    };
                    denied += u64::from(status != 200);
                    inject(self, at, caller, AuthMode::Steady, Some(id), status, 1.0);
                }
                params.insert("parameter".into(), json!(param.map_or("id", |p| p.name)));
                params.insert("distinct_ids".into(), json!(n));
                params.insert("first_id".into(), json!(first));
                params.insert("last_id".into(), json!(first + n - 1));
                params.insert(
                    "denied_share".into(),
                    json!(round4(denied as f64 / n as f64)),
                );
                params.insert(
                    "client_ip".into(),
                    json!(catalog.callers[caller].ip.to_string()),
                );
                Effect::Injected
            }
        };
        self.plan.anomalies.push(Planned {
            kind,
            endpoint,
            start_ns: start,
            end_ns: end,
            effect,
            params,
        });
    }
}

/// 5xx statuses of an error spike.
pub(crate) const SERVER_ERRORS: &[u16] = &[500, 502, 503, 504];

/// 4xx statuses an endpoint answers steadily (and in a 4xx spike).
pub(crate) fn client_errors(op: Op) -> &'static [u16] {
    match op {
        Op::Create | Op::Update | Op::Action => &[400, 409, 422, 429],
        Op::List => &[400, 429],
        _ => &[404, 400, 429],
    }
}

fn round4(x: f64) -> f64 {
    (x * 10_000.0).round() / 10_000.0
}

/// Endpoints where `kind` makes sense (variant 1 of `new_auth_scheme` is
/// the query API key; of `auth_failure_burst`, the many-caller burst).
fn candidates(kind: AnomalyKind, variant: u32, catalog: &Catalog) -> Vec<usize> {
    let read = |op: Op| matches!(op, Op::Get | Op::List);
    catalog
        .endpoints
        .iter()
        .enumerate()
        .filter(|(_, e)| match kind {
            AnomalyKind::ErrorSpike5xx | AnomalyKind::ErrorSpike4xx => e.op != Op::Health,
            AnomalyKind::ResponseSizeShift => e.op != Op::Health && e.has_body(),
            AnomalyKind::ResponseSizeOutlier => e.op == Op::List,
            AnomalyKind::AnonymousSuccess => e.access != Access::Public && read(e.op),
            AnomalyKind::NewAuthScheme => {
                read(e.op)
                    && match variant {
                        0 => matches!(e.access, Access::Jwt(_)),
                        _ => matches!(e.access, Access::Jwt(_) | Access::ApiKey),
                    }
            }
            AnomalyKind::JwtAlgChange | AnomalyKind::JwtWithoutExp => {
                matches!(e.access, Access::Jwt(_)) && read(e.op)
            }
            AnomalyKind::AuthFailureBurst => {
                read(e.op)
                    && match variant {
                        0 => e.access == Access::Basic,
                        _ => matches!(e.access, Access::Jwt(_) | Access::ApiKey),
                    }
            }
            AnomalyKind::BolaEnumeration => {
                e.op == Op::Get
                    && matches!(e.access, Access::Jwt(_) | Access::ApiKey)
                    && e.params
                        .first()
                        .is_some_and(|p| p.kind == IdKind::Int && !p.shared)
            }
        })
        .map(|(i, _)| i)
        .collect()
}
