//! The simulated estate: three services with their endpoints, each
//! endpoint's steady behaviour, and the population of callers.
//!
//! Everything here is drawn once from the seed (sub-stream
//! [`STREAM_CATALOG`]) and then stays fixed for the whole scenario.

use std::net::{Ipv4Addr, SocketAddr};

use crate::rng::{cumulative, hash, hash_str, Rng};

/// RNG sub-stream of the catalogue.
const STREAM_CATALOG: u64 = 1;

/// A JWT issuer and audience.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Issuer {
    /// Customers of the shop (`shop.example.com`).
    Shop,
    /// Staff of the internal console (`admin.example.com`).
    Staff,
}

impl Issuer {
    pub(crate) fn iss(self) -> &'static str {
        match self {
            Issuer::Shop => "https://login.shop.example.com/",
            Issuer::Staff => "https://sso.corp.example.com/",
        }
    }

    pub(crate) fn aud(self) -> &'static str {
        match self {
            Issuer::Shop => "shop-api",
            Issuer::Staff => "admin-console",
        }
    }
}

/// Who may call an endpoint, and with what.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Access {
    /// No credentials needed; browsed anonymously and by signed-in users.
    Public,
    /// `Authorization: Bearer <RS256 JWT>` from this issuer.
    Jwt(Issuer),
    /// `X-API-Key` header.
    ApiKey,
    /// `Authorization: Basic`.
    Basic,
}

impl Access {
    /// The sensor's scheme name for what steady callers send.
    pub(crate) fn scheme(self) -> &'static str {
        match self {
            Access::Public => "none",
            Access::Jwt(_) => "bearer_jwt",
            Access::ApiKey => "api_key",
            Access::Basic => "basic",
        }
    }
}

/// What an endpoint does, which decides its body sizes and status codes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Op {
    List,
    Get,
    Create,
    Update,
    Delete,
    Action,
    Health,
}

/// How a path parameter's values look.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum IdKind {
    /// Integers `1..=pool`.
    Int,
    /// UUIDs derived from an index in `1..=pool`.
    Uuid,
}

/// One `{name}` of a template.
#[derive(Clone, Debug)]
pub(crate) struct Param {
    pub(crate) name: &'static str,
    pub(crate) kind: IdKind,
    /// Values are drawn from `1..=pool`.
    pub(crate) pool: u64,
    /// Values are a shared catalogue (skewed popularity), not per-caller objects.
    pub(crate) shared: bool,
}

/// A service: a host name on its own server address.
#[derive(Clone, Debug)]
pub(crate) struct Service {
    pub(crate) host: &'static str,
    pub(crate) addr: SocketAddr,
}

/// An endpoint and its steady behaviour.
#[derive(Clone, Debug)]
pub(crate) struct Endpoint {
    pub(crate) service: usize,
    pub(crate) method: &'static str,
    pub(crate) template: &'static str,
    pub(crate) op: Op,
    pub(crate) access: Access,
    pub(crate) params: Vec<Param>,
    /// Share of all steady requests.
    pub(crate) share: f64,
    /// Steady 4xx and 5xx probabilities.
    pub(crate) p4xx: f64,
    pub(crate) p5xx: f64,
    /// Log-normal response body size (2xx with a body), bytes.
    pub(crate) size_median: f64,
    pub(crate) size_sigma: f64,
    /// Log-normal server latency, microseconds.
    pub(crate) latency_median_us: f64,
    pub(crate) latency_sigma: f64,
    /// JSON fields of one object of this resource, without braces.
    pub(crate) fields: String,
}

impl Endpoint {
    pub(crate) fn success_status(&self) -> u16 {
        match self.op {
            Op::Create => 201,
            Op::Delete => 204,
            Op::Action => 202,
            _ => 200,
        }
    }

    pub(crate) fn has_body(&self) -> bool {
        self.op != Op::Delete
    }

    pub(crate) fn sends_body(&self) -> bool {
        matches!(self.op, Op::Create | Op::Update | Op::Action)
    }
}

/// A caller's credential.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Credential {
    Anonymous,
    Jwt { issuer: Issuer, sub: u64 },
    ApiKey(String),
    Basic { user: String, password: String },
}

/// A caller: one credential, one client address, one connection habit.
#[derive(Clone, Debug)]
pub(crate) struct Caller {
    pub(crate) ip: Ipv4Addr,
    pub(crate) credential: Credential,
    pub(crate) user_agent: &'static str,
    /// Keeps connections open between requests (else one request per connection).
    pub(crate) keep_alive: bool,
    /// How long an idle kept-alive connection lives, ns.
    pub(crate) idle_ns: u64,
    /// Round-trip time to the servers, ns.
    pub(crate) rtt_ns: u64,
    /// Seed of the caller's own object ids.
    pub(crate) id_seed: u64,
}

impl Caller {
    /// A caller with a fresh address and default habits, for injections.
    pub(crate) fn attacker(ip: Ipv4Addr, credential: Credential, rng: &mut Rng) -> Self {
        Caller {
            ip,
            credential,
            user_agent: "python-requests/2.31.0",
            keep_alive: true,
            idle_ns: 30_000_000_000,
            rtt_ns: rng.range(20_000_000, 90_000_000),
            id_seed: rng.next_u64(),
        }
    }

    /// How many values of `param` the caller owns, and the seed they come from.
    fn owned(&self, param: &Param) -> (u64, u64) {
        let seed = hash(&[self.id_seed, hash_str(param.name)]);
        let count = if param.name == "userId" {
            1
        } else {
            3 + seed % 28
        };
        (count, seed)
    }

    /// The caller's `j`-th own value of `param`.
    fn nth_own(param: &Param, seed: u64, j: u64) -> u64 {
        1 + hash(&[seed, j]) % param.pool
    }

    /// One of the caller's own values of a parameter: a small personal set
    /// of objects (exactly one for `userId`).
    pub(crate) fn own_id(&self, param: &Param, rng: &mut Rng) -> u64 {
        let (count, seed) = self.owned(param);
        Self::nth_own(param, seed, rng.below(count))
    }

    /// Whether `id` is one of the caller's own values of `param`.
    pub(crate) fn owns(&self, param: &Param, id: u64) -> bool {
        let (count, seed) = self.owned(param);
        (0..count).any(|j| Self::nth_own(param, seed, j) == id)
    }
}

/// Callers allowed on an endpoint, with cumulative activity weights.
#[derive(Clone, Debug, Default)]
pub(crate) struct Pool {
    pub(crate) callers: Vec<usize>,
    pub(crate) cum: Vec<f64>,
}

/// The whole estate.
#[derive(Clone, Debug)]
pub(crate) struct Catalog {
    pub(crate) services: Vec<Service>,
    pub(crate) endpoints: Vec<Endpoint>,
    /// Cumulative endpoint shares, for drawing a request's endpoint.
    pub(crate) endpoint_cum: Vec<f64>,
    pub(crate) callers: Vec<Caller>,
    /// Pools for [`Access::Public`], shop JWT, staff JWT, API key, Basic.
    pools: [Pool; 5],
}

/// `(service, method, template, op, access, relative popularity)`.
type Spec = (usize, &'static str, &'static str, Op, Access, f64);

const SHOP: Access = Access::Jwt(Issuer::Shop);
const STAFF: Access = Access::Jwt(Issuer::Staff);

/// The endpoints. Parameter names follow the analyzer's naming
/// (`orders` → `orderId`), so its templates read the same.
#[rustfmt::skip]
const SPECS: &[Spec] = &[
    (0, "GET", "/v1/products", Op::List, Access::Public, 9.0),
    (0, "GET", "/v1/products/{productId}", Op::Get, Access::Public, 14.0),
    (0, "GET", "/v1/categories", Op::List, Access::Public, 3.0),
    (0, "GET", "/v1/search", Op::List, Access::Public, 6.0),
    (0, "GET", "/health", Op::Health, Access::Public, 2.0),
    (0, "GET", "/v1/cart", Op::Get, SHOP, 6.0),
    (0, "POST", "/v1/cart/items", Op::Create, SHOP, 2.5),
    (0, "DELETE", "/v1/cart/items/{itemId}", Op::Delete, SHOP, 0.8),
    (0, "GET", "/v1/orders", Op::List, SHOP, 4.0),
    (0, "POST", "/v1/orders", Op::Create, SHOP, 1.5),
    (0, "GET", "/v1/orders/{orderId}", Op::Get, SHOP, 7.0),
    (0, "PUT", "/v1/orders/{orderId}", Op::Update, SHOP, 0.8),
    (0, "DELETE", "/v1/orders/{orderId}", Op::Delete, SHOP, 0.3),
    (0, "GET", "/v1/orders/{orderId}/items", Op::List, SHOP, 3.0),
    (0, "GET", "/v1/users/{userId}", Op::Get, SHOP, 4.0),
    (0, "PUT", "/v1/users/{userId}", Op::Update, SHOP, 0.5),
    (0, "GET", "/v1/users/{userId}/addresses", Op::List, SHOP, 1.5),
    (0, "POST", "/v1/users/{userId}/addresses", Op::Create, SHOP, 0.3),
    (0, "GET", "/v1/payments/{paymentId}", Op::Get, SHOP, 1.5),
    (0, "POST", "/v1/payments", Op::Create, SHOP, 1.2),
    (0, "GET", "/v1/invoices/{invoiceId}", Op::Get, SHOP, 1.0),
    (0, "GET", "/v1/reviews", Op::List, SHOP, 1.0),
    (1, "GET", "/api/v2/inventory", Op::List, Access::ApiKey, 3.0),
    (1, "GET", "/api/v2/inventory/{inventoryId}", Op::Get, Access::ApiKey, 4.0),
    (1, "PUT", "/api/v2/inventory/{inventoryId}", Op::Update, Access::ApiKey, 1.2),
    (1, "GET", "/api/v2/shipments", Op::List, Access::ApiKey, 2.0),
    (1, "POST", "/api/v2/shipments", Op::Create, Access::ApiKey, 1.0),
    (1, "GET", "/api/v2/shipments/{shipmentId}", Op::Get, Access::ApiKey, 3.0),
    (1, "PUT", "/api/v2/shipments/{shipmentId}", Op::Update, Access::ApiKey, 0.6),
    (1, "GET", "/api/v2/rates", Op::List, Access::ApiKey, 1.5),
    (1, "POST", "/api/v2/webhooks", Op::Create, Access::ApiKey, 0.2),
    (1, "DELETE", "/api/v2/webhooks/{webhookId}", Op::Delete, Access::ApiKey, 0.1),
    (1, "GET", "/api/v2/warehouses", Op::List, Access::ApiKey, 0.5),
    (1, "GET", "/api/v2/warehouses/{warehouseId}/stock", Op::List, Access::ApiKey, 1.0),
    (1, "GET", "/api/v2/status", Op::Health, Access::Public, 0.8),
    (2, "GET", "/admin/users", Op::List, Access::Basic, 0.4),
    (2, "GET", "/admin/users/{userId}", Op::Get, Access::Basic, 0.5),
    (2, "POST", "/admin/users/{userId}/disable", Op::Action, Access::Basic, 0.05),
    (2, "GET", "/admin/audit", Op::List, Access::Basic, 0.3),
    (2, "GET", "/internal/v1/reports", Op::List, STAFF, 0.8),
    (2, "GET", "/internal/v1/reports/{reportId}", Op::Get, STAFF, 0.8),
    (2, "POST", "/internal/v1/reports", Op::Create, STAFF, 0.15),
    (2, "GET", "/internal/v1/metrics", Op::Get, STAFF, 1.5),
    (2, "GET", "/internal/v1/tickets", Op::List, STAFF, 1.0),
    (2, "GET", "/internal/v1/tickets/{ticketId}", Op::Get, STAFF, 1.5),
    (2, "PUT", "/internal/v1/tickets/{ticketId}", Op::Update, STAFF, 0.4),
    (2, "POST", "/internal/v1/tickets/{ticketId}/comments", Op::Create, STAFF, 0.3),
];

/// `(name, kind, pool size, shared catalogue)` of every parameter name.
const PARAMS: &[(&str, IdKind, u64, bool)] = &[
    ("productId", IdKind::Int, 20_000, true),
    ("itemId", IdKind::Int, 900_000, false),
    ("orderId", IdKind::Int, 250_000, false),
    ("userId", IdKind::Int, 60_000, false),
    ("paymentId", IdKind::Uuid, 300_000, false),
    ("invoiceId", IdKind::Uuid, 200_000, false),
    ("inventoryId", IdKind::Int, 40_000, true),
    ("shipmentId", IdKind::Uuid, 500_000, false),
    ("webhookId", IdKind::Int, 5_000, false),
    ("warehouseId", IdKind::Int, 40, true),
    ("reportId", IdKind::Uuid, 10_000, true),
    ("ticketId", IdKind::Int, 80_000, true),
];

/// JSON fields an object may carry; each resource takes a stable subset.
const FIELDS: &[&str] = &[
    r#""name":"Stainless steel water bottle""#,
    r#""status":"active""#,
    r#""created_at":"2024-02-11T09:41:07Z""#,
    r#""updated_at":"2024-03-01T17:02:55Z""#,
    r#""email":"jane.doe@example.net""#,
    r#""total":129.5"#,
    r#""currency":"EUR""#,
    r#""quantity":3"#,
    r#""price":19.99"#,
    r#""tags":["outdoor","summer"]"#,
    r#""owner_id":"5b0f4c1e-8d2a-4c43-9a57-1f3e0b7d9c21""#,
    r#""image_url":"https://cdn.example.com/i/8f3a.png""#,
    r#""enabled":true"#,
    r#""count":12"#,
    r#""address":{"city":"Lyon","zip":"69002","country":"FR"}"#,
    r#""links":{"self":"https://api.example.com/x/1"}"#,
];

const BROWSER_UAS: &[&str] = &[
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/122.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_3) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.3 Safari/605.1.15",
    "Mozilla/5.0 (X11; Linux x86_64; rv:123.0) Gecko/20100101 Firefox/123.0",
    "ShopApp/4.12.1 (iPhone; iOS 17.3)",
    "ShopApp/4.12.0 (Android 14; Pixel 8)",
];
const PARTNER_UAS: &[&str] = &[
    "okhttp/4.12.0",
    "Go-http-client/1.1",
    "axios/1.6.7",
    "curl/8.5.0",
];

impl Catalog {
    /// The estate for `seed`, with a caller population sized for `rate`.
    pub(crate) fn new(seed: u64, rate: f64) -> Self {
        let mut rng = Rng::new(seed, STREAM_CATALOG);
        let services = vec![
            service("shop.example.com", [10, 20, 0, 10], 80),
            service("partners.example.com", [10, 20, 0, 20], 8080),
            service("admin.example.com", [10, 20, 0, 30], 80),
        ];
        let total: f64 = SPECS.iter().map(|s| s.5).sum();
        let endpoints: Vec<Endpoint> = SPECS
            .iter()
            .map(|spec| endpoint(spec, total, &mut rng))
            .collect();
        let endpoint_cum = cumulative(endpoints.iter().map(|e| e.share));
        let mut catalog = Catalog {
            services,
            endpoints,
            endpoint_cum,
            callers: Vec::new(),
            pools: Default::default(),
        };
        catalog.populate(rate, &mut rng);
        catalog
    }

    /// Callers: more of them at higher rates, activity skewed (log-normal).
    fn populate(&mut self, rate: f64, rng: &mut Rng) {
        let scaled = |base: f64, per_rps: f64, cap: f64| (base + per_rps * rate).min(cap) as usize;
        let (anon, users, staff, partners) = (
            scaled(30.0, 1.0, 600.0),
            scaled(20.0, 0.6, 400.0),
            scaled(5.0, 0.05, 40.0),
            scaled(4.0, 0.04, 30.0),
        );
        let mut weights: [Vec<f64>; 5] = Default::default();
        for i in 0..anon {
            let ip = Ipv4Addr::new(172, 16 + (i / 250) as u8, (i % 250) as u8, 10);
            let ua = *rng.pick(BROWSER_UAS).unwrap_or(&BROWSER_UAS[0]);
            let idx = self.push(ip, Credential::Anonymous, ua, true, rng);
            self.pools[0].callers.push(idx);
            weights[0].push(rng.lognormal(1.0, 0.8));
        }
        for i in 0..users {
            let ip = Ipv4Addr::new(10, 1 + (i / 250) as u8, (i % 250) as u8, 20);
            let ua = *rng.pick(BROWSER_UAS).unwrap_or(&BROWSER_UAS[0]);
            let sub = 1 + hash(&[rng.next_u64()]) % 60_000;
            let cred = Credential::Jwt {
                issuer: Issuer::Shop,
                sub,
            };
            let idx = self.push(ip, cred, ua, true, rng);
            let w = rng.lognormal(1.0, 0.9);
            self.pools[1].callers.push(idx);
            weights[1].push(w);
            // Signed-in users browse the public catalogue too, token and all.
            self.pools[0].callers.push(idx);
            weights[0].push(w * 0.4);
        }
        for i in 0..staff {
            let ip = Ipv4Addr::new(10, 9, 0, 10 + i as u8);
            let cred = Credential::Jwt {
                issuer: Issuer::Staff,
                sub: 1 + hash(&[rng.next_u64()]) % 60_000,
            };
            let idx = self.push(ip, cred, BROWSER_UAS[0], true, rng);
            self.pools[2].callers.push(idx);
            weights[2].push(rng.lognormal(1.0, 0.6));
        }
        for i in 0..partners {
            let ip = Ipv4Addr::new(198, 18, i as u8, 7);
            let key = format!("pk_live_{}", token(rng, 32));
            let ua = *rng.pick(PARTNER_UAS).unwrap_or(&PARTNER_UAS[0]);
            // A quarter of the partners run scripts that open a connection per request.
            let keep_alive = i % 4 != 3;
            let idx = self.push(ip, Credential::ApiKey(key), ua, keep_alive, rng);
            let w = rng.lognormal(1.0, 0.7);
            self.pools[3].callers.push(idx);
            weights[3].push(w);
            self.pools[0].callers.push(idx);
            weights[0].push(w * 0.05);
        }
        for (i, user) in ["ops-alice", "ops-bob", "ops-carol"].iter().enumerate() {
            let ip = Ipv4Addr::new(10, 9, 1, 10 + i as u8);
            let cred = Credential::Basic {
                user: (*user).to_owned(),
                password: token(rng, 20),
            };
            let idx = self.push(ip, cred, "curl/8.5.0", i != 2, rng);
            self.pools[4].callers.push(idx);
            weights[4].push(1.0);
        }
        for (pool, w) in self.pools.iter_mut().zip(weights) {
            pool.cum = cumulative(w);
        }
    }

    fn push(
        &mut self,
        ip: Ipv4Addr,
        credential: Credential,
        user_agent: &'static str,
        keep_alive: bool,
        rng: &mut Rng,
    ) -> usize {
        self.callers.push(Caller {
            ip,
            credential,
            user_agent,
            keep_alive,
            idle_ns: rng.range(5, 60) * 1_000_000_000,
            rtt_ns: rng.range(200_000, 3_000_000),
            id_seed: rng.next_u64(),
        });
        self.callers.len() - 1
    }

    /// The callers that steadily use `access`.
    pub(crate) fn pool(&self, access: Access) -> &Pool {
        &self.pools[match access {
            Access::Public => 0,
            Access::Jwt(Issuer::Shop) => 1,
            Access::Jwt(Issuer::Staff) => 2,
            Access::ApiKey => 3,
            Access::Basic => 4,
        }]
    }

    /// Draws a steady caller for `endpoint`.
    pub(crate) fn draw_caller(&self, endpoint: usize, rng: &mut Rng) -> usize {
        let pool = self.pool(self.endpoints[endpoint].access);
        pool.callers
            .get(rng.pick_cumulative(&pool.cum))
            .copied()
            .unwrap_or(0)
    }
}

fn service(host: &'static str, ip: [u8; 4], port: u16) -> Service {
    Service {
        host,
        addr: SocketAddr::from((ip, port)),
    }
}

fn endpoint(spec: &Spec, total: f64, rng: &mut Rng) -> Endpoint {
    let &(service, method, template, op, access, weight) = spec;
    let params = template
        .split('/')
        .filter_map(|seg| seg.strip_prefix('{')?.strip_suffix('}'))
        .map(|name| {
            let &(name, kind, pool, shared) =
                PARAMS
                    .iter()
                    .find(|p| p.0 == name)
                    .unwrap_or(&("id", IdKind::Int, 1000, false));
            Param {
                name,
                kind,
                pool,
                shared,
            }
        })
        .collect();
    let (size_median, size_sigma) = match op {
        Op::List => (rng.uniform(1_500.0, 8_000.0), rng.uniform(0.4, 0.7)),
        Op::Get | Op::Update => (rng.uniform(250.0, 1_200.0), rng.uniform(0.2, 0.45)),
        Op::Create => (rng.uniform(200.0, 700.0), rng.uniform(0.15, 0.35)),
        Op::Action => (rng.uniform(60.0, 160.0), 0.1),
        Op::Delete => (0.0, 0.0),
        Op::Health => (rng.uniform(30.0, 60.0), 0.05),
    };
    let latency_median_us = match op {
        Op::Health => rng.uniform(300.0, 900.0),
        Op::List => rng.uniform(15_000.0, 90_000.0),
        Op::Create | Op::Update | Op::Action | Op::Delete => rng.uniform(10_000.0, 60_000.0),
        Op::Get => rng.uniform(3_000.0, 30_000.0),
    };
    let (p4xx, p5xx) = if op == Op::Health {
        (0.0, rng.uniform(0.0, 0.0005))
    } else {
        (rng.uniform(0.01, 0.03), rng.uniform(0.0005, 0.003))
    };
    let resource = hash_str(template);
    let mut fields = String::from(r#""id":4812"#);
    for (i, f) in FIELDS.iter().enumerate() {
        if hash(&[resource, i as u64]) % 3 == 0 {
            fields.push(',');
            fields.push_str(f);
        }
    }
    Endpoint {
        service,
        method,
        template,
        op,
        access,
        params,
        share: weight / total,
        p4xx,
        p5xx,
        size_median,
        size_sigma,
        latency_median_us,
        latency_sigma: rng.uniform(0.35, 0.7),
        fields,
    }
}

/// `n` random characters of `[a-zA-Z0-9]`.
pub(crate) fn token(rng: &mut Rng, n: usize) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    (0..n)
        .map(|_| char::from(ALPHABET[rng.below(ALPHABET.len() as u64) as usize]))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn estate_has_the_documented_shape() {
        let c = Catalog::new(1, 50.0);
        assert_eq!(c.services.len(), 3);
        for s in 0..3 {
            let n = c.endpoints.iter().filter(|e| e.service == s).count();
            assert!((10..=30).contains(&n), "service {s} has {n} endpoints");
        }
        let total: f64 = c.endpoints.iter().map(|e| e.share).sum();
        assert!((total - 1.0).abs() < 1e-9);
        // Every template parameter is a known one.
        assert!(c
            .endpoints
            .iter()
            .flat_map(|e| &e.params)
            .all(|p| p.name != "id"));
        // Every endpoint has callers.
        for e in 0..c.endpoints.len() {
            assert!(!c.pool(c.endpoints[e].access).callers.is_empty());
        }
    }

    #[test]
    fn own_ids_are_stable_and_owned() {
        let c = Catalog::new(2, 5.0);
        let p = &c.endpoints[10].params[0];
        let caller = &c.callers[c.pool(SHOP).callers[0]];
        let mut rng = Rng::new(0, 0);
        for _ in 0..50 {
            let id = caller.own_id(p, &mut rng);
            assert!((1..=p.pool).contains(&id));
            assert!(caller.owns(p, id));
        }
    }
}
