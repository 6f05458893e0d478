//! The main loop: steady arrivals merged with injected ones, each turned
//! into a request and response on a connection, packets streamed out in
//! time order.

use std::collections::{BTreeMap, HashMap};
use std::io::{self, BufWriter, Write};
use std::net::SocketAddr;

use shadowtap_proto::Timestamp;

use crate::anomaly::{
    AnomalyKind, DiurnalInfo, EndpointInfo, Expected, ExpectedAnomaly, ServiceInfo, EXPECTED_FORMAT,
};
use crate::catalog::{Access, Catalog, Credential, Endpoint, IdKind, Op};
use crate::config::{Config, ConfigError, HOUR, SEC};
use crate::http::{self, AuthHeader, Request};
use crate::pcap::{PcapWriter, LINKTYPE_ETHERNET};
use crate::plan::{self, client_errors, AuthMode, Effect, Injected, Plan, SERVER_ERRORS};
use crate::rng::{hash_str, Rng};
use crate::tcp::{Network, Peer};

/// RNG sub-stream of the traffic.
const STREAM_TRAFFIC: u64 = 3;
/// RNG sub-stream of the connections.
const STREAM_NETWORK: u64 = 4;
/// Output buffer in front of the caller's writer.
const WRITE_BUFFER_BYTES: usize = 1 << 20;

/// Why a scenario could not be written.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("invalid scenario: {0}")]
    Config(#[from] ConfigError),
    #[error("writing the capture: {0}")]
    Io(#[from] io::Error),
}

/// Counts of what was written.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Summary {
    /// Exchanges (request + response pairs) in the capture.
    pub requests: u64,
    /// Requests that carry an anomaly.
    pub anomalous_requests: u64,
    /// Frames and bytes of the pcap (headers included).
    pub packets: u64,
    pub bytes: u64,
    /// TCP connections opened.
    pub connections: u64,
    /// Responses by status class: index 2 for 2xx … 5 for 5xx.
    pub status_classes: [u64; 6],
    /// Injected anomalies per kind.
    pub anomalies: BTreeMap<AnomalyKind, u32>,
}

/// What [`generate`] returns: the expected anomalies and the counts.
#[derive(Clone, Debug, PartialEq)]
pub struct Report {
    pub expected: Expected,
    pub summary: Summary,
}

/// [`Config::body_scale`] never takes an endpoint's median body below this
/// (or below its own median when that is smaller): a smaller body would be
/// clamped to its fixed fields, and injected size factors would no longer
/// be the factors the expected file states.
const BODY_SCALE_FLOOR_BYTES: f64 = 600.0;

/// Writes `config`'s scenario as a pcap to `out` (streamed through a
/// buffer; memory stays bounded by the requests in flight) and returns
/// the expected anomalies.
pub fn generate<W: Write>(config: &Config, out: W) -> Result<Report, Error> {
    let config = config.clone().validate()?;
    let mut catalog = Catalog::new(config.seed, config.rate);
    for ep in &mut catalog.endpoints {
        ep.size_median =
            (ep.size_median * config.body_scale).max(ep.size_median.min(BODY_SCALE_FLOOR_BYTES));
    }
    let plan = plan::plan(&config, &mut catalog);
    let writer = PcapWriter::new(
        BufWriter::with_capacity(WRITE_BUFFER_BYTES, out),
        LINKTYPE_ETHERNET,
    )?;
    let mut sim = Simulation::new(&config, catalog, plan, Network::new(writer));
    sim.run()?;
    let Simulation {
        net,
        summary,
        catalog,
        plan,
        window_requests,
        anomalous,
        ..
    } = sim;
    let connections = net.connections;
    let writer = net.finish()?;
    let mut summary = summary;
    summary.anomalous_requests = anomalous.iter().sum();
    summary.connections = connections;
    summary.bytes = writer.bytes();
    summary.packets = writer.records();
    writer.into_inner()?.flush()?;
    for a in &plan.anomalies {
        *summary.anomalies.entry(a.kind).or_default() += 1;
    }
    let expected = expected(
        &config,
        &catalog,
        &plan,
        &summary,
        &window_requests,
        &anomalous,
    );
    Ok(Report { expected, summary })
}

/// Everything the main loop keeps.
struct Simulation<'a, W: Write> {
    config: &'a Config,
    catalog: Catalog,
    plan: Plan,
    net: Network<W>,
    rng: Rng,
    net_rng: Rng,
    /// Planned anomalies per endpoint.
    by_endpoint: Vec<Vec<usize>>,
    window_requests: Vec<u64>,
    anomalous: Vec<u64>,
    /// Current token per steady JWT caller: `(hour, token)`.
    tokens: HashMap<usize, (u64, String)>,
    summary: Summary,
}

/// One request about to be built.
struct Call {
    endpoint: usize,
    caller: usize,
    auth: AuthMode,
    id: Option<u64>,
    /// Forced status (injected requests).
    status: Option<u16>,
    size_factor: f64,
    /// Planned anomaly an injected request belongs to.
    anomaly: Option<usize>,
}

impl<'a, W: Write> Simulation<'a, W> {
    fn new(config: &'a Config, catalog: Catalog, plan: Plan, net: Network<W>) -> Self {
        let mut by_endpoint = vec![Vec::new(); catalog.endpoints.len()];
        for (i, a) in plan.anomalies.iter().enumerate() {
            by_endpoint[a.endpoint].push(i);
        }
        let n = plan.anomalies.len();
        Simulation {
            config,
            catalog,
            plan,
            net,
            rng: Rng::new(config.seed, STREAM_TRAFFIC),
            net_rng: Rng::new(config.seed, STREAM_NETWORK),
            by_endpoint,
            window_requests: vec![0; n],
            anomalous: vec![0; n],
            tokens: HashMap::new(),
            summary: Summary::default(),
        }
    }

    fn run(&mut self) -> io::Result<()> {
        let start = self.config.start.as_nanos();
        let end = start + self.config.duration_ns;
        let peak = self.config.rate * self.config.diurnal.map_or(1.0, |d| d.high);
        let mean_gap_ns = SEC as f64 / peak;
        let mut next_steady = start + self.rng.exponential(mean_gap_ns) as u64;
        let injected = std::mem::take(&mut self.plan.injected);
        let mut injected = injected.into_iter().peekable();
        loop {
            let next_injected = injected.peek().map(|i| start + i.at_ns);
            let now = match next_injected {
                Some(t) if t < next_steady => t,
                _ => next_steady,
            };
            if now >= end {
                break;
            }
            self.net.advance(now, &mut self.net_rng)?;
            if next_injected == Some(now) {
                if let Some(inj) = injected.next() {
                    self.injected(now, inj);
                }
                continue;
            }
            next_steady = now + (self.rng.exponential(mean_gap_ns) as u64).max(1);
            // Thinning: a candidate arrival is kept with the load factor's share.
            let keep =
                self.config.load_factor(now - start) / self.config.diurnal.map_or(1.0, |d| d.high);
            if self.config.diurnal.is_some() && !self.rng.chance(keep) {
                continue;
            }
            let endpoint = self.rng.pick_cumulative(&self.catalog.endpoint_cum);
            let caller = self.catalog.draw_caller(endpoint, &mut self.rng);
            let call = Call {
                endpoint,
                caller,
                auth: AuthMode::Steady,
                id: None,
                status: None,
                size_factor: 1.0,
                anomaly: None,
            };
            self.request(now, call);
        }
        Ok(())
    }

    fn injected(&mut self, now: u64, inj: Injected) {
        let call = Call {
            endpoint: inj.endpoint,
            caller: inj.caller,
            auth: inj.auth,
            id: inj.id,
            status: Some(inj.status),
            size_factor: inj.size_factor,
            anomaly: Some(inj.anomaly),
        };
        self.request(now, call);
    }

    /// Builds one exchange and hands it to the network.
    fn request(&mut self, now: u64, call: Call) {
        let ep = &self.catalog.endpoints[call.endpoint];
        let service = &self.catalog.services[ep.service];
        let caller = &self.catalog.callers[call.caller];
        let peer = Peer {
            client: SocketAddr::new(caller.ip.into(), 0),
            server: service.addr,
            rtt_ns: caller.rtt_ns,
            keep_alive: caller.keep_alive,
            idle_ns: caller.idle_ns,
        };
        let slot = self
            .net
            .slot(now, call.caller, ep.service, peer, &mut self.net_rng);
        let since_start = slot.request_ns - self.config.start.as_nanos();

        // Status and size: steady mix, then any anomaly window this request falls into.
        let mut status = call
            .status
            .unwrap_or_else(|| steady_status(ep, &mut self.rng));
        let mut size_factor = call.size_factor;
        for &a in &self.by_endpoint[call.endpoint] {
            let planned = &self.plan.anomalies[a];
            if !(planned.start_ns..planned.end_ns).contains(&since_start) {
                continue;
            }
            self.window_requests[a] += 1;
            if call.anomaly.is_some() {
                continue;
            }
            match planned.effect {
                Effect::ErrorRate { server, rate } if self.rng.chance(rate) => {
                    let set = if server {
                        SERVER_ERRORS
                    } else {
                        client_errors(ep.op)
                    };
                    status = *self.rng.pick(set).unwrap_or(&500);
                    self.anomalous[a] += 1;
                }
                Effect::SizeFactor(f) if (200..300).contains(&status) && ep.has_body() => {
                    size_factor = f;
                    self.anomalous[a] += 1;
                }
                _ => {}
            }
        }
        if let Some(a) = call.anomaly {
            self.anomalous[a] += 1;
        }

        let target = self.target(call.endpoint, call.caller, call.id, &call.auth);
        let auth = self.auth_header(call.caller, &call.auth, slot.request_ns);
        let ep = &self.catalog.endpoints[call.endpoint];
        let caller = &self.catalog.callers[call.caller];
        let body = ep.sends_body().then(|| {
            let mut b = Vec::new();
            let size = self.rng.lognormal(220.0, 0.4) as usize;
            http::object_body(&mut b, &ep.fields, size);
            b
        });
        let mut request = Vec::with_capacity(512 + body.as_ref().map_or(0, Vec::len));
        http::render_request(
            &mut request,
            &Request {
                method: ep.method,
                target: &target,
                host: service_host(&self.catalog, ep),
                user_agent: caller.user_agent,
                auth: &auth,
                body: body.as_deref(),
                close: !caller.keep_alive,
            },
        );

        let mut body = Vec::new();
        if (200..300).contains(&status) {
            if ep.has_body() && status != 204 {
                let size =
                    (self.rng.lognormal(ep.size_median, ep.size_sigma) * size_factor) as usize;
                if ep.op == Op::List {
                    http::list_body(&mut body, &ep.fields, size);
                } else {
                    http::object_body(&mut body, &ep.fields, size);
                }
            }
        } else {
            let size = self.rng.range(70, 180) as usize;
            http::error_body(&mut body, status, size);
        }
        let mut response = Vec::with_capacity(200 + body.len());
        let request_id = self.rng.next_u64();
        http::render_response_head(&mut response, status, body.len(), slot.last, request_id);
        response.extend_from_slice(&body);

        let mut latency_us = self.rng.lognormal(ep.latency_median_us, ep.latency_sigma);
        if status == 504 {
            latency_us = 30_000_000.0;
        } else if status >= 500 {
            latency_us *= 3.0;
        }
        self.summary.requests += 1;
        self.summary.status_classes[usize::from(status / 100).min(5)] += 1;
        self.net
            .exchange(slot, peer, request, response, (latency_us * 1000.0) as u64);
    }

    /// Path and query of a request.
    fn target(
        &mut self,
        endpoint: usize,
        caller: usize,
        forced: Option<u64>,
        auth: &AuthMode,
    ) -> String {
        let ep = &self.catalog.endpoints[endpoint];
        let mut target = String::with_capacity(64);
        let mut params = ep.params.iter();
        for (i, seg) in ep.template.split('/').enumerate() {
            if i > 0 {
                target.push('/');
            }
            if !seg.starts_with('{') {
                target.push_str(seg);
                continue;
            }
            let Some(p) = params.next() else {
                target.push('0');
                continue;
            };
            let id = match forced {
                Some(id) => id,
                None if p.shared => {
                    // Popularity falls off with the id: log-uniform over the pool.
                    ((p.pool as f64).powf(self.rng.f64()) as u64).clamp(1, p.pool)
                }
                None => self.catalog.callers[caller].own_id(p, &mut self.rng),
            };
            match p.kind {
                IdKind::Int => target.push_str(&id.to_string()),
                IdKind::Uuid => target.push_str(&http::uuid(hash_str(p.name), id)),
            }
        }
        let mut query = Vec::new();
        if ep.template == "/v1/search" {
            const WORDS: &[&str] = &["bottle", "tent", "lamp", "boots", "jacket", "stove"];
            query.push(format!("q={}", self.rng.pick(WORDS).unwrap_or(&"bottle")));
        }
        if ep.op == Op::List {
            query.push(format!("page={}&limit=50", self.rng.range(1, 5)));
        }
        if let AuthMode::ApiKeyQuery(key) = auth {
            query.push(format!("api_key={key}"));
        }
        if !query.is_empty() {
            target.push('?');
            target.push_str(&query.join("&"));
        }
        target
    }

    /// The credential header of a request sent at `at_ns`.
    fn auth_header(&mut self, caller: usize, mode: &AuthMode, at_ns: u64) -> AuthHeader {
        match mode {
            AuthMode::Anonymous | AuthMode::ApiKeyQuery(_) => AuthHeader::None,
            AuthMode::Basic { user, password } => {
                AuthHeader::Authorization(http::basic(user, password))
            }
            AuthMode::Jwt {
                issuer,
                sub,
                alg,
                exp,
            } => {
                let iat = at_ns / SEC - 600;
                let exp = exp.then_some(iat + 3600);
                let token = http::jwt(
                    alg,
                    issuer.iss(),
                    issuer.aud(),
                    *sub,
                    iat,
                    exp,
                    &mut self.rng,
                );
                AuthHeader::Authorization(format!("Bearer {token}"))
            }
            AuthMode::Steady => match &self.catalog.callers[caller].credential {
                Credential::Anonymous => AuthHeader::None,
                Credential::ApiKey(key) => AuthHeader::ApiKey(key.clone()),
                Credential::Basic { user, password } => {
                    AuthHeader::Authorization(http::basic(user, password))
                }
                &Credential::Jwt { issuer, sub } => {
                    // Tokens live an hour and are renewed on the hour (offset per caller).
                    let offset = sub % (HOUR / SEC);
                    let hour = (at_ns / SEC + offset) / 3600;
                    let fresh = self.tokens.get(&caller).is_some_and(|(h, _)| *h == hour);
                    if !fresh {
                        let iat = hour * 3600 - offset;
                        let token = http::jwt(
                            "RS256",
                            issuer.iss(),
                            issuer.aud(),
                            sub,
                            iat,
                            Some(iat + 3600),
                            &mut self.rng,
                        );
                        self.tokens.insert(caller, (hour, token));
                    }
                    let token = self.tokens.get(&caller).map_or("", |(_, t)| t.as_str());
                    AuthHeader::Authorization(format!("Bearer {token}"))
                }
            },
        }
    }
}

fn service_host<'c>(catalog: &'c Catalog, ep: &Endpoint) -> &'c str {
    catalog.services[ep.service].host
}

/// A steady status: mostly success, the endpoint's 4xx and 5xx rates.
fn steady_status(ep: &Endpoint, rng: &mut Rng) -> u16 {
    let x = rng.f64();
    if x < ep.p5xx {
        *rng.pick(SERVER_ERRORS).unwrap_or(&500)
    } else if x < ep.p5xx + ep.p4xx {
        // Authenticated endpoints also see expired or revoked credentials.
        if ep.access != Access::Public && rng.chance(0.15) {
            if rng.chance(0.7) {
                401
            } else {
                403
            }
        } else {
            *rng.pick(client_errors(ep.op)).unwrap_or(&400)
        }
    } else {
        ep.success_status()
    }
}

/// The expected-anomaly file of a finished scenario.
fn expected(
    config: &Config,
    catalog: &Catalog,
    plan: &Plan,
    summary: &Summary,
    window_requests: &[u64],
    anomalous: &[u64],
) -> Expected {
    let start = config.start.as_nanos();
    let services = catalog
        .services
        .iter()
        .enumerate()
        .map(|(i, s)| ServiceInfo {
            host: s.host.to_owned(),
            server: s.addr.to_string(),
            endpoints: catalog
                .endpoints
                .iter()
                .filter(|e| e.service == i)
                .map(|e| EndpointInfo {
                    method: e.method.to_owned(),
                    template: e.template.to_owned(),
                    auth: e.access.scheme().to_owned(),
                    share: round6(e.share),
                    rate_4xx: round6(e.p4xx),
                    rate_5xx: round6(e.p5xx),
                    size_median_bytes: e.size_median.round() as u64,
                })
                .collect(),
        })
        .collect();
    let anomalies = plan
        .anomalies
        .iter()
        .enumerate()
        .map(|(i, a)| {
            let ep = &catalog.endpoints[a.endpoint];
            ExpectedAnomaly {
                id: i as u32 + 1,
                kind: a.kind,
                service: catalog.services[ep.service].host.to_owned(),
                method: ep.method.to_owned(),
                template: ep.template.to_owned(),
                start: Timestamp(start + a.start_ns),
                end: Timestamp(start + a.end_ns),
                requests: anomalous[i],
                window_requests: window_requests[i],
                params: a.params.clone(),
                side_effects: a.kind.side_effects().to_vec(),
            }
        })
        .collect();
    Expected {
        format: EXPECTED_FORMAT.to_owned(),
        seed: config.seed,
        start: config.start,
        end: Timestamp(start + config.duration_ns),
        rate: config.rate,
        diurnal: config.diurnal.map(|d| DiurnalInfo {
            period_s: d.period_ns / SEC,
            low: d.low,
            high: d.high,
        }),
        warmup_end: Timestamp(start + config.warmup_ns()),
        requests: summary.requests,
        services,
        anomalies,
        skipped: plan.skipped.clone(),
    }
}

fn round6(x: f64) -> f64 {
    (x * 1e6).round() / 1e6
}
