//! Observations: exchange records aggregated by service, method and *path
//! key* (the raw path with identifier-like segments replaced by typed
//! placeholders, see [`crate::template::form`]).
//!
//! Observations are what the store keeps. Templates are computed from them
//! (and recomputed whenever more arrive), so every statistic here is
//! mergeable: two observations of the same key merge into exactly what one
//! observation of both streams would be.

use std::collections::BTreeMap;
use std::hash::Hasher as _;

use hashbrown::HashTable;
use rustc_hash::{FxHashMap, FxHasher};
use serde::{Deserialize, Serialize};

use shadowtap_proto::hash::bytes_equal;
use shadowtap_proto::record::{AuthScheme, FlatKind, FlatShape, PathParam, StringFormat};
use shadowtap_proto::ExchangeRecord;

use crate::anomaly::Detectors;
use crate::sketch::{DistinctSketch, QuantileSketch};
use crate::template::form::{self, ParamKind};

/// Most distinct observation keys held at once (across services). New keys
/// beyond it are counted in [`Observations::dropped_records`], never stored.
pub const MAX_OBSERVATIONS: usize = 250_000;
/// Most path segments kept in a key; deeper paths are cut and flagged.
pub const MAX_PATH_SEGMENTS: usize = 32;
/// Most distinct names kept in one counter map (query parameters, content
/// types, auth variants, schema fields); others are counted under `…`.
pub const MAX_NAMES: usize = 256;
/// Name under which entries beyond [`MAX_NAMES`] are counted.
pub const OVERFLOW_NAME: &str = "…";

/// What an observation is keyed by.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ObservationKey {
    /// Host header (lower-cased, port kept), else the server address.
    pub service: String,
    pub method: String,
    /// Path with identifier-like segments as placeholders (`{uuid}`); a
    /// literal `{` or `}` is percent-encoded so it can't look like one.
    pub path: String,
}

/// Mergeable statistics of the exchanges behind one key (an observation)
/// or one template (an endpoint).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Stats {
    pub count: u64,
    /// Packet time of the first and last request, nanoseconds since 1970.
    pub first_seen_ns: u64,
    pub last_seen_ns: u64,
    /// Final status → count; unanswered requests are not in it.
    pub statuses: BTreeMap<u16, u64>,
    pub unanswered: u64,
    pub latency_us: QuantileSketch,
    /// Decoded (else de-chunked) response body bytes.
    pub response_bytes: QuantileSketch,
    pub request_bytes: QuantileSketch,
    pub request_content_types: BTreeMap<String, u64>,
    pub response_content_types: BTreeMap<String, u64>,
    /// Query parameter name → requests that carried it.
    pub query_params: BTreeMap<String, u64>,
    /// Auth scheme (`bearer_jwt`, `none`, …) → requests.
    pub auth_schemes: BTreeMap<String, u64>,
    /// Finer auth facts → requests: `api_key:header:x-api-key`,
    /// `jwt_alg:RS256`, `jwt_no_exp`, `cookie:session`.
    pub auth_variants: BTreeMap<String, u64>,
    /// Requests without credentials that got a 2xx response.
    pub anonymous_2xx: u64,
    /// Distinct caller fingerprints.
    pub callers: DistinctSketch,
    /// Distinct values per placeholder segment (index in the path key).
    pub param_values: BTreeMap<u8, DistinctSketch>,
    /// Exchanges with capture gaps or truncated messages.
    pub incomplete: u64,
    /// Request body schema (stored separately, see [`SchemaStats::to_portable`]).
    #[serde(skip)]
    pub request_schema: SchemaStats,
    /// Response body schemas by final status (stored separately).
    #[serde(skip)]
    pub response_schemas: BTreeMap<u16, SchemaStats>,
}

/// Merged JSON body shapes with per-field presence counts. Field paths are
/// ids in the run's [`FieldNames`].
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SchemaStats {
    /// Bodies whose shape was known (JSON, within the sample).
    pub bodies: u64,
    /// Of those, bodies whose shape came from a prefix of the body.
    pub sampled: u64,
    /// Field id → statistics.
    pub fields: FieldTable,
    /// Field occurrences not kept because of [`MAX_OBSERVATION_FIELDS`],
    /// [`MAX_SCHEMA_FIELDS`] or [`MAX_FIELD_PATHS`].
    pub dropped_fields: u64,
}

/// A schema's fields: path ids in ascending order, and beside them each
/// one's statistics, in vectors about the size of what they hold (at most
/// [`MAX_SCHEMA_FIELDS`] entries; they grow by a quarter at a time). The
/// schemas of thousands of observations and endpoints are most of the
/// analyzer's heap, and a hash table took about twice the memory (buckets
/// at most 7/8 full, rounded up to a power of two) and a cold cache line
/// per lookup.
///
/// A lookup is a binary search over the ids (4 bytes each: a schema's fit
/// in a few cache lines), or none at all when the caller's hint (the slot
/// after the last one it found) is right: a body's paths are met in the
/// order they were first interned, mostly.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct FieldTable {
    ids: Vec<u32>,
    /// `stats[i]` belongs to `ids[i]`.
    stats: Vec<FieldStats>,
}

impl FieldTable {
    fn with_capacity(n: usize) -> Self {
        FieldTable {
            ids: Vec::with_capacity(n),
            stats: Vec::with_capacity(n),
        }
    }

    pub fn len(&self) -> usize {
        self.ids.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// The fields in id order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = (&u32, &FieldStats)> + '_ {
        self.ids.iter().zip(self.stats.iter())
    }

    pub fn get(&self, id: &u32) -> Option<&FieldStats> {
        let at = self.slot(*id, 0).ok()?;
        self.stats.get(at)
    }

    pub fn get_mut(&mut self, id: &u32) -> Option<&mut FieldStats> {
        let at = self.slot(*id, 0).ok()?;
        self.stats.get_mut(at)
    }

    pub fn contains_key(&self, id: &u32) -> bool {
        self.slot(*id, 0).is_ok()
    }

    /// Sets the field `id`, adding it if it is new.
    pub fn insert(&mut self, id: u32, f: FieldStats) {
        match self.slot(id, 0) {
            Ok(at) => {
                if let Some(e) = self.stats.get_mut(at) {
                    *e = f;
                }
            }
            Err(at) => self.insert_at(at, id, f),
        }
    }

    /// Room for `n` more fields, exactly.
    pub fn reserve(&mut self, n: usize) {
        self.ids.reserve_exact(n);
        self.stats.reserve_exact(n);
    }

    /// Where `id` is (`Ok`) or would go (`Err`); `hint` is looked at first.
    #[inline]
    fn slot(&self, id: u32, hint: usize) -> Result<usize, usize> {
        match self.ids.get(hint) {
            Some(&at_hint) if at_hint == id => Ok(hint),
            _ => self.ids.binary_search(&id),
        }
    }

    /// Inserts at `at` (from [`Self::slot`]), growing by a quarter when full.
    fn insert_at(&mut self, at: usize, id: u32, f: FieldStats) {
        if self.ids.len() == self.ids.capacity() {
            self.reserve((self.ids.len() / 4).max(4));
        }
        let at = at.min(self.ids.len());
        self.ids.insert(at, id);
        self.stats.insert(at, f);
    }

    /// Appends a field with an id above all held (merges build tables so).
    fn push(&mut self, id: u32, f: FieldStats) {
        self.ids.push(id);
        self.stats.push(f);
    }
}

/// Most fields one observation's schema keeps (per status).
pub const MAX_OBSERVATION_FIELDS: usize = 128;
/// Most fields a merged (endpoint) schema keeps.
pub const MAX_SCHEMA_FIELDS: usize = 256;
/// Most distinct field paths in one run.
pub const MAX_FIELD_PATHS: usize = 1 << 18;

/// Field paths, interned: every schema of a run refers to them by id.
/// Paths are JSON pointers (`/items/*/id`, with `*` for array elements and
/// `~0`, `~1`, `~2` escaping `~`, `/` and a literal `*`); the root is `""`.
///
/// Walking a body's shape looks each field up by its parent's id and its own
/// key ([`FieldNames::child`]), so the full path is spelled out and hashed
/// only the first time a field is seen.
#[derive(Clone, Debug, Default)]
pub struct FieldNames {
    names: Vec<Box<str>>,
    ids: FxHashMap<Box<str>, u32>,
    /// `(parent id, step)` → id, for the paths interned through
    /// [`FieldNames::child`]: at most one entry per name. Looked up by the
    /// parent and the step as they are, without building a key.
    children: HashTable<Child>,
}

/// One entry of [`FieldNames`]' children: the path `id` is one step below
/// the path `parent` (`key`: into that field; `None`: into the items).
#[derive(Clone, Debug)]
struct Child {
    parent: u32,
    key: Option<Box<str>>,
    id: u32,
}

impl Child {
    fn step(&self) -> FieldStep<'_> {
        match &self.key {
            Some(key) => FieldStep::Key(key),
            None => FieldStep::Items,
        }
    }
}

/// `a == b` without a `memcmp` call per lookup (keys are short).
fn same_step(a: FieldStep<'_>, b: FieldStep<'_>) -> bool {
    match (a, b) {
        (FieldStep::Key(a), FieldStep::Key(b)) => bytes_equal(a.as_bytes(), b.as_bytes()),
        (FieldStep::Items, FieldStep::Items) => true,
        _ => false,
    }
}

/// The hash of a step below `parent` in [`FieldNames`]' children.
fn step_hash(parent: u32, step: FieldStep<'_>) -> u64 {
    let mut h = FxHasher::default();
    h.write_u32(parent);
    match step {
        // A tag byte keeps a key apart from the items step.
        FieldStep::Key(key) => {
            h.write_u8(b'k');
            h.write(key.as_bytes());
        }
        FieldStep::Items => h.write_u8(b'*'),
    }
    h.finish()
}

/// One step down a shape: into an object's field or into an array's items.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FieldStep<'a> {
    Key(&'a str),
    Items,
}

impl FieldNames {
    /// The id of `path`, adding it; `None` once [`MAX_FIELD_PATHS`] are held.
    pub fn intern(&mut self, path: &str) -> Option<u32> {
        if let Some(&id) = self.ids.get(path) {
            return Some(id);
        }
        if self.names.len() >= MAX_FIELD_PATHS {
            return None;
        }
        let id = self.names.len() as u32;
        self.names.push(path.into());
        self.ids.insert(path.into(), id);
        Some(id)
    }

    /// The id of the path one `step` below `parent`'s, adding it; `None`
    /// once [`MAX_FIELD_PATHS`] are held. The same id as [`Self::intern`]
    /// gives the spelled-out path.
    pub fn child(&mut self, parent: u32, step: FieldStep<'_>) -> Option<u32> {
        let hash = step_hash(parent, step);
        if let Some(c) = self
            .children
            .find(hash, |c| c.parent == parent && same_step(c.step(), step))
        {
            return Some(c.id);
        }
        let mut path = String::from(self.name(parent));
        match step {
            FieldStep::Key(key) => {
                path.push('/');
                escape_key(key, &mut path);
            }
            FieldStep::Items => path.push_str("/*"),
        }
        let id = self.intern(&path)?;
        let key = match step {
            FieldStep::Key(key) => Some(key.into()),
            FieldStep::Items => None,
        };
        self.children
            .insert_unique(hash, Child { parent, key, id }, |c| {
                step_hash(c.parent, c.step())
            });
        Some(id)
    }

    pub fn get(&self, path: &str) -> Option<u32> {
        self.ids.get(path).copied()
    }

    /// The path of `id` (`""` for an unknown id).
    pub fn name(&self, id: u32) -> &str {
        self.names.get(id as usize).map_or("", |n| n)
    }
}

/// A schema with its field paths spelled out, for storage.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct PortableSchema {
    pub bodies: u64,
    #[serde(default)]
    pub sampled: u64,
    #[serde(default)]
    pub dropped_fields: u64,
    pub fields: BTreeMap<String, FieldStats>,
}

/// How often a field was present, and with which types.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FieldStats {
    /// Bodies in which the field appeared (once per body).
    pub present: u64,
    /// Union of [`TypeSet`] bits seen.
    pub types: u16,
    /// Union of string format bits seen (see [`format_bit`]).
    pub formats: u16,
}

/// Bits of [`FieldStats::types`].
pub struct TypeSet;

impl TypeSet {
    pub const NULL: u16 = 1;
    pub const BOOLEAN: u16 = 2;
    pub const INTEGER: u16 = 4;
    pub const NUMBER: u16 = 8;
    pub const STRING: u16 = 16;
    pub const ARRAY: u16 = 32;
    pub const OBJECT: u16 = 64;
    /// Mixed or unknown (the sensor's `any`).
    pub const ANY: u16 = 128;

    /// JSON Schema type names of the bits set, in a fixed order.
    pub fn names(bits: u16) -> Vec<&'static str> {
        [
            (Self::OBJECT, "object"),
            (Self::ARRAY, "array"),
            (Self::STRING, "string"),
            (Self::INTEGER, "integer"),
            (Self::NUMBER, "number"),
            (Self::BOOLEAN, "boolean"),
            (Self::NULL, "null"),
        ]
        .into_iter()
        .filter(|(b, _)| bits & b != 0)
        .map(|(_, n)| n)
        .collect()
    }
}

/// String formats by bit of [`FieldStats::formats`].
pub const FORMATS: [&str; 8] = [
    "uuid",
    "date-time",
    "date",
    "email",
    "uri",
    "ipv4",
    "ipv6",
    "jwt",
];

/// The bit of a format label in [`FORMATS`].
pub fn format_bit(label: &str) -> u16 {
    FORMATS
        .iter()
        .position(|f| *f == label)
        .map_or(0, |i| 1 << i)
}

impl Stats {
    pub fn merge(&mut self, o: &Stats) {
        if self.count == 0 {
            self.first_seen_ns = o.first_seen_ns;
            self.last_seen_ns = o.last_seen_ns;
        } else if o.count > 0 {
            self.first_seen_ns = self.first_seen_ns.min(o.first_seen_ns);
            self.last_seen_ns = self.last_seen_ns.max(o.last_seen_ns);
        }
        self.count += o.count;
        add_counts(&mut self.statuses, &o.statuses);
        self.unanswered += o.unanswered;
        self.latency_us.merge(&o.latency_us);
        self.response_bytes.merge(&o.response_bytes);
        self.request_bytes.merge(&o.request_bytes);
        add_names(&mut self.request_content_types, &o.request_content_types);
        add_names(&mut self.response_content_types, &o.response_content_types);
        add_names(&mut self.query_params, &o.query_params);
        add_names(&mut self.auth_schemes, &o.auth_schemes);
        add_names(&mut self.auth_variants, &o.auth_variants);
        self.anonymous_2xx += o.anonymous_2xx;
        self.callers.merge(&o.callers);
        for (i, s) in &o.param_values {
            self.param_values.entry(*i).or_default().merge(s);
        }
        self.incomplete += o.incomplete;
        self.request_schema.merge(&o.request_schema);
        for (status, s) in &o.response_schemas {
            self.response_schemas.entry(*status).or_default().merge(s);
        }
    }

    /// Adds one exchange; `params` are the (segment index, value) pairs of
    /// the path key's placeholders.
    /// `scratch` is a buffer for composed counter names, `parents` one for
    /// walking body shapes (see [`SchemaStats::add`]).
    fn add(
        &mut self,
        r: &ExchangeRecord,
        params: &[(u8, &str)],
        names: &mut FieldNames,
        scratch: &mut String,
        parents: &mut Vec<u32>,
    ) {
        let ts = r.ts.as_nanos();
        if self.count == 0 {
            self.first_seen_ns = ts;
            self.last_seen_ns = ts;
        } else {
            self.first_seen_ns = self.first_seen_ns.min(ts);
            self.last_seen_ns = self.last_seen_ns.max(ts);
        }
        self.count += 1;
        match r.status {
            Some(s) => *self.statuses.entry(s).or_insert(0) += 1,
            None => self.unanswered += 1,
        }
        if let Some(l) = r.latency_us {
            self.latency_us.insert(l);
        }
        let req = &r.request.body;
        self.request_bytes
            .insert(req.decoded_bytes.unwrap_or(req.bytes));
        if let Some(resp) = &r.response {
            self.response_bytes
                .insert(resp.body.decoded_bytes.unwrap_or(resp.body.bytes));
            if let Some(ct) = &resp.content_type {
                bump(&mut self.response_content_types, ct);
            }
            if let (Some(shape), Some(status)) = (&resp.body.shape, r.status) {
                self.response_schemas.entry(status).or_default().add(
                    &shape.flat(),
                    resp.body.sampled,
                    names,
                    parents,
                );
            }
        }
        if let Some(ct) = &r.request.content_type {
            bump(&mut self.request_content_types, ct);
        }
        if let Some(shape) = &r.request.body.shape {
            self.request_schema
                .add(&shape.flat(), r.request.body.sampled, names, parents);
        }
        for q in &r.query_params {
            bump(&mut self.query_params, q);
        }
        let auth = &r.auth;
        bump(&mut self.auth_schemes, auth.scheme.as_str());
        if let (Some(name), Some(loc)) = (&auth.key_name, auth.key_in) {
            let loc = match loc {
                shadowtap_proto::record::KeyLocation::Header => "header",
                shadowtap_proto::record::KeyLocation::Query => "query",
            };
            bump_joined(
                &mut self.auth_variants,
                &["api_key:", loc, ":", name],
                scratch,
            );
        }
        if let Some(jwt) = &auth.jwt {
            let alg = jwt.alg.as_deref().unwrap_or("?");
            bump_joined(&mut self.auth_variants, &["jwt_alg:", alg], scratch);
            if !jwt.has_exp {
                bump(&mut self.auth_variants, "jwt_no_exp");
            }
        }
        if auth.scheme == AuthScheme::None && r.status.is_some_and(|s| (200..300).contains(&s)) {
            self.anonymous_2xx += 1;
        }
        if let Some(p) = &r.principal {
            self.callers.insert_bytes(p.as_bytes());
        }
        for (i, value) in params {
            self.param_values
                .entry(*i)
                .or_default()
                .insert_bytes(value.as_bytes());
        }
        let resp_flags = r.flags;
        if resp_flags.gap || resp_flags.truncated {
            self.incomplete += 1;
        }
    }

    /// The share of answered requests with a status in `lo..=hi`.
    pub fn status_share(&self, lo: u16, hi: u16) -> f64 {
        let answered: u64 = self.statuses.values().sum();
        if answered == 0 {
            return 0.0;
        }
        let n: u64 = self.statuses.range(lo..=hi).map(|(_, c)| c).sum();
        n as f64 / answered as f64
    }
}

fn bump(map: &mut BTreeMap<String, u64>, name: &str) {
    if let Some(c) = map.get_mut(name) {
        *c += 1;
    } else if map.len() < MAX_NAMES {
        map.insert(name.to_owned(), 1);
    } else {
        *map.entry(OVERFLOW_NAME.to_owned()).or_insert(0) += 1;
    }
}

/// [`bump`] of the name `parts` spell, composed in `scratch` (no
/// allocation once the buffer has grown).
fn bump_joined(map: &mut BTreeMap<String, u64>, parts: &[&str], scratch: &mut String) {
    scratch.clear();
    for p in parts {
        scratch.push_str(p);
    }
    bump(map, scratch);
}

fn add_names(into: &mut BTreeMap<String, u64>, from: &BTreeMap<String, u64>) {
    for (name, c) in from {
        if let Some(v) = into.get_mut(name) {
            *v += c;
        } else if into.len() < MAX_NAMES {
            into.insert(name.clone(), *c);
        } else {
            *into.entry(OVERFLOW_NAME.to_owned()).or_insert(0) += c;
        }
    }
}

fn add_counts(into: &mut BTreeMap<u16, u64>, from: &BTreeMap<u16, u64>) {
    for (k, c) in from {
        *into.entry(*k).or_insert(0) += c;
    }
}

impl SchemaStats {
    pub fn merge(&mut self, o: &SchemaStats) {
        self.bodies += o.bodies;
        self.sampled += o.sampled;
        self.dropped_fields += o.dropped_fields;
        // The first merge into an empty schema (every endpoint's first
        // observation) copies the table.
        if self.fields.is_empty() && o.fields.len() <= MAX_SCHEMA_FIELDS {
            self.fields.clone_from(&o.fields);
            return;
        }
        // One pass over both tables in id order. The cap may be reached:
        // the fields kept must not depend on the order the tables were
        // filled in, so of the new fields, those first seen in the run
        // (the lower ids) come first and stay.
        let mine = std::mem::take(&mut self.fields);
        let theirs = &o.fields;
        let new = theirs
            .ids
            .iter()
            .filter(|id| !mine.contains_key(id))
            .count();
        let mut room = new.min(MAX_SCHEMA_FIELDS.saturating_sub(mine.len()));
        let mut merged = FieldTable::with_capacity(mine.len() + room);
        let (mut a, mut b) = (mine.iter().peekable(), theirs.iter().peekable());
        loop {
            let next = match (a.peek(), b.peek()) {
                (Some(&(&ia, fa)), Some(&(&ib, fb))) if ia == ib => {
                    a.next();
                    b.next();
                    Some((
                        ia,
                        FieldStats {
                            present: fa.present + fb.present,
                            types: fa.types | fb.types,
                            formats: fa.formats | fb.formats,
                        },
                    ))
                }
                (Some(&(&ia, &fa)), Some(&(&ib, _))) if ia < ib => {
                    a.next();
                    Some((ia, fa))
                }
                (Some(&(&ia, &fa)), None) => {
                    a.next();
                    Some((ia, fa))
                }
                (_, Some(&(&ib, &fb))) => {
                    b.next();
                    if room > 0 {
                        room -= 1;
                        Some((ib, fb))
                    } else {
                        self.dropped_fields += fb.present;
                        None
                    }
                }
                (None, None) => break,
            };
            if let Some((id, f)) = next {
                merged.push(id, f);
            }
        }
        self.fields = merged;
    }

    /// Adds one body's shape. `parents` is scratch space: the ids of the
    /// path from the root down to the node being counted (at most the
    /// shape's depth, [`shadowtap_proto::record::MAX_DEPTH`] for the
    /// sensor's shapes).
    fn add(
        &mut self,
        shape: &FlatShape,
        sampled: bool,
        names: &mut FieldNames,
        parents: &mut Vec<u32>,
    ) {
        self.bodies += 1;
        if sampled {
            self.sampled += 1;
        }
        if self.fields.is_empty() {
            // Room for the whole body at once (every node is a new field)
            // instead of growing through every power of two.
            self.fields.reserve(shape.len().min(MAX_OBSERVATION_FIELDS));
        }
        // The sensor merges array elements into one item shape, so every
        // path occurs at most once per body. The nodes come in pre-order:
        // a node's parent is `parents[depth - 1]`, and the nodes below one
        // that was not counted (deeper than `skip`, until the next node
        // that is not) are not looked at.
        parents.clear();
        let mut skip = usize::MAX;
        // The table slot after the last field counted: usually the next.
        let mut hint = 0;
        for node in shape.iter() {
            if node.depth > skip {
                continue;
            }
            skip = usize::MAX;
            parents.truncate(node.depth);
            let id = match (node.depth, parents.last()) {
                (0, _) => names.intern(""),
                (depth, Some(&parent)) if parents.len() == depth => {
                    let step = node.key.map_or(FieldStep::Items, FieldStep::Key);
                    names.child(parent, step)
                }
                // Never: a node's parent comes before it.
                _ => None,
            };
            match self.count(id, kind_bits(node.kind), &mut hint) {
                Some(id) => parents.push(id),
                None => skip = node.depth,
            }
        }
    }

    /// Counts one occurrence of the field `id` (`None`: no room for its
    /// path) with its type and format bits; `None` if it was not counted
    /// (no room, or no room for a new field), and then neither is anything
    /// below it. `hint`: the table slot to look at first, set to the one
    /// after the field's.
    #[inline]
    fn count(
        &mut self,
        id: Option<u32>,
        (types, formats): (u16, u16),
        hint: &mut usize,
    ) -> Option<u32> {
        let Some(id) = id else {
            self.dropped_fields += 1;
            return None;
        };
        match self.fields.slot(id, *hint) {
            Ok(at) => {
                if let Some(f) = self.fields.stats.get_mut(at) {
                    f.present += 1;
                    f.types |= types;
                    f.formats |= formats;
                }
                *hint = at + 1;
            }
            Err(at) if self.fields.len() < MAX_OBSERVATION_FIELDS => {
                let f = FieldStats {
                    present: 1,
                    types,
                    formats,
                };
                self.fields.insert_at(at, id, f);
                *hint = at + 1;
            }
            Err(_) => {
                self.dropped_fields += 1;
                return None;
            }
        }
        Some(id)
    }

    /// Presence ratio of a field across the bodies seen.
    pub fn presence(&self, id: u32) -> f64 {
        match (self.fields.get(&id), self.bodies) {
            (Some(f), b) if b > 0 => f.present as f64 / b as f64,
            _ => 0.0,
        }
    }

    /// Statistics of the field at `path`, if seen.
    pub fn field(&self, names: &FieldNames, path: &str) -> Option<&FieldStats> {
        self.fields.get(&names.get(path)?)
    }

    /// Fields by path, sorted.
    pub fn named<'a>(&'a self, names: &'a FieldNames) -> Vec<(&'a str, &'a FieldStats)> {
        let mut v: Vec<_> = self
            .fields
            .iter()
            .map(|(id, f)| (names.name(*id), f))
            .collect();
        v.sort_by(|a, b| a.0.cmp(b.0));
        v
    }

    pub fn to_portable(&self, names: &FieldNames) -> PortableSchema {
        PortableSchema {
            bodies: self.bodies,
            sampled: self.sampled,
            dropped_fields: self.dropped_fields,
            fields: self
                .fields
                .iter()
                .map(|(id, f)| (names.name(*id).to_owned(), *f))
                .collect(),
        }
    }

    pub fn from_portable(p: &PortableSchema, names: &mut FieldNames) -> SchemaStats {
        let mut s = SchemaStats {
            bodies: p.bodies,
            sampled: p.sampled,
            dropped_fields: p.dropped_fields,
            fields: FieldTable::default(),
        };
        s.fields.reserve(p.fields.len());
        for (path, f) in &p.fields {
            match names.intern(path) {
                Some(id) => {
                    s.fields.insert(id, *f);
                }
                None => s.dropped_fields += f.present,
            }
        }
        s
    }
}

/// The [`TypeSet`] and format bits of a shape node.
fn kind_bits(kind: FlatKind) -> (u16, u16) {
    match kind {
        FlatKind::Null => (TypeSet::NULL, 0),
        FlatKind::Boolean => (TypeSet::BOOLEAN, 0),
        FlatKind::Integer => (TypeSet::INTEGER, 0),
        FlatKind::Number => (TypeSet::NUMBER, 0),
        FlatKind::String(format) => (TypeSet::STRING, format.map_or(0, string_format_bit)),
        FlatKind::Array { .. } => (TypeSet::ARRAY, 0),
        FlatKind::Object { .. } => (TypeSet::OBJECT, 0),
        FlatKind::Any => (TypeSet::ANY, 0),
    }
}

/// [`format_bit`] of the format's label, without looking the label up.
fn string_format_bit(f: StringFormat) -> u16 {
    let i = match f {
        StringFormat::Uuid => 0,
        StringFormat::DateTime => 1,
        StringFormat::Date => 2,
        StringFormat::Email => 3,
        StringFormat::Uri => 4,
        StringFormat::Ipv4 => 5,
        StringFormat::Ipv6 => 6,
        StringFormat::Jwt => 7,
    };
    1 << i
}

/// Appends `key` to a JSON-pointer path, escaping `~`, `/` and `*`.
pub fn escape_key(key: &str, out: &mut String) {
    // Nearly every key needs no escape: copy it whole.
    if !key.bytes().any(|b| matches!(b, b'~' | b'/' | b'*')) {
        out.push_str(key);
        return;
    }
    for c in key.chars() {
        match c {
            '~' => out.push_str("~0"),
            '/' => out.push_str("~1"),
            '*' => out.push_str("~2"),
            c => out.push(c),
        }
    }
}

/// Splits a field path into its keys (unescaped; `*` for array elements).
pub fn split_field_path(path: &str) -> Vec<String> {
    if path.is_empty() {
        return Vec::new();
    }
    path[1..]
        .split('/')
        .map(|k| {
            if k == "*" {
                "*".to_owned()
            } else {
                k.replace("~2", "*").replace("~1", "/").replace("~0", "~")
            }
        })
        .collect()
}

/// Builds the path key of `path`, returning the key and the placeholder
/// positions with their raw values.
pub fn path_key(path: &str) -> (String, Vec<(u8, &str)>) {
    let mut key = String::with_capacity(path.len());
    let mut params = Vec::new();
    path_key_into(path, &[], &mut key, &mut params);
    (key, params)
}

/// [`path_key`] into buffers the caller reuses: `key` and `params` are
/// cleared first. `path_params` are the record's: a segment the sensor
/// exported as a placeholder (a token, an email address) is that parameter,
/// with its fingerprint as the value.
pub fn path_key_into<'p>(
    path: &'p str,
    path_params: &'p [PathParam],
    key: &mut String,
    params: &mut Vec<(u8, &'p str)>,
) {
    key.clear();
    params.clear();
    let mut previous: Option<&str> = None;
    let trimmed = path.strip_prefix('/').unwrap_or(path);
    if trimmed.is_empty() {
        key.push('/');
        return;
    }
    for (i, seg) in trimmed.split('/').enumerate() {
        key.push('/');
        if i == MAX_PATH_SEGMENTS {
            key.push_str("{…}");
            break;
        }
        let redacted = path_params
            .iter()
            .find(|p| usize::from(p.index) == i && seg == p.kind.placeholder());
        if let Some(p) = redacted {
            key.push_str(p.kind.placeholder());
            params.push((i as u8, p.fingerprint.as_str()));
            previous = Some(seg);
            continue;
        }
        match form::classify(seg, previous) {
            Some(kind) => {
                key.push_str(kind.placeholder());
                params.push((i as u8, seg));
            }
            None if !seg.bytes().any(|b| b == b'{' || b == b'}') => key.push_str(seg),
            None => {
                for c in seg.chars() {
                    match c {
                        '{' => key.push_str("%7B"),
                        '}' => key.push_str("%7D"),
                        c => key.push(c),
                    }
                }
            }
        }
        previous = Some(seg);
    }
}

/// Splits a path key into segments: a placeholder kind, or literal text
/// (with `{`/`}` decoded again).
pub fn key_segments(key: &str) -> Vec<KeySegment> {
    let trimmed = key.strip_prefix('/').unwrap_or(key);
    if trimmed.is_empty() {
        return Vec::new();
    }
    trimmed
        .split('/')
        .map(|s| match ParamKind::from_placeholder(s) {
            Some(kind) => KeySegment::Param(kind),
            None => KeySegment::Literal(s.replace("%7B", "{").replace("%7D", "}")),
        })
        .collect()
}

/// One segment of a path key.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum KeySegment {
    Literal(String),
    Param(ParamKind),
}

/// Observations in memory, keyed by service, method and path key.
#[derive(Debug, Default)]
pub struct Observations {
    map: FxHashMap<ObservationKey, Stats>,
    /// Field paths of every schema held.
    pub names: FieldNames,
    /// Records not added because [`MAX_OBSERVATIONS`] keys were held.
    pub dropped_records: u64,
    /// Records added.
    pub records: u64,
    /// The key of the record being added, reused so that a record of a
    /// known key allocates nothing for it.
    key: ObservationKey,
    /// Buffer for composed counter names (see [`Stats::add`]).
    scratch: String,
    /// Buffer for walking body shapes (see [`SchemaStats::add`]).
    parents: Vec<u32>,
}

impl Observations {
    /// Adds one record; `detectors`, when given, watch it too (under the
    /// same key).
    pub fn add(&mut self, r: &ExchangeRecord, detectors: Option<&mut Detectors>) {
        let mut params = Vec::new();
        let key = &mut self.key;
        path_key_into(&r.path, &r.path_params, &mut key.path, &mut params);
        key.service.clear();
        key.service.push_str(&r.host);
        key.method.clear();
        key.method.push_str(&r.method);
        if let Some(d) = detectors {
            d.observe(r, key, &params);
        }
        let n = self.map.len();
        let stats = match self.map.get_mut(&*key) {
            Some(s) => s,
            None if n >= MAX_OBSERVATIONS => {
                self.dropped_records += 1;
                return;
            }
            None => self.map.entry(key.clone()).or_default(),
        };
        stats.add(
            r,
            &params,
            &mut self.names,
            &mut self.scratch,
            &mut self.parents,
        );
        self.records += 1;
    }

    /// Merges stored or other observations in.
    pub fn merge(&mut self, key: ObservationKey, stats: &Stats) {
        let n = self.map.len();
        match self.map.get_mut(&key) {
            Some(s) => s.merge(stats),
            None if n >= MAX_OBSERVATIONS => self.dropped_records += stats.count,
            None => {
                self.map.insert(key, stats.clone());
            }
        }
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// All observations, sorted by key (deterministic order).
    pub fn sorted(&self) -> Vec<(&ObservationKey, &Stats)> {
        let mut v: Vec<_> = self.map.iter().collect();
        v.sort_by(|a, b| a.0.cmp(b.0));
        v
    }

    /// All observations sorted by key, and the field names they use.
    pub fn into_sorted(self) -> (Vec<(ObservationKey, Stats)>, FieldNames) {
        let mut v: Vec<_> = self.map.into_iter().collect();
        v.sort_by(|a, b| a.0.cmp(&b.0));
        (v, self.names)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The sensor exports tokens and email addresses in paths as
    /// placeholders with fingerprints: they are parameters of their kind,
    /// and the fingerprint stands for the value (distinct counts, callers'
    /// ids). A placeholder the record does not describe is literal text.
    #[test]
    fn redacted_segments_are_parameters_valued_by_their_fingerprints() {
        let params = [
            PathParam {
                index: 1,
                kind: ParamKind::Email,
                fingerprint: "aaaa".into(),
            },
            PathParam {
                index: 3,
                kind: ParamKind::Token,
                fingerprint: "bbbb".into(),
            },
        ];
        let (mut key, mut values) = (String::new(), Vec::new());
        path_key_into(
            "/users/{email}/reset/{token}/7",
            &params,
            &mut key,
            &mut values,
        );
        assert_eq!(key, "/users/{email}/reset/{token}/{integer}");
        assert_eq!(values, [(1, "aaaa"), (3, "bbbb"), (4, "7")]);
        // Without its description (a client sent the braces), or at another
        // index, a placeholder stays text.
        path_key_into("/users/{email}", &[], &mut key, &mut values);
        assert_eq!(key, "/users/%7Bemail%7D");
        path_key_into("/{email}/x", &params, &mut key, &mut values);
        assert_eq!(key, "/%7Bemail%7D/x");
    }

    #[test]
    fn path_keys_collapse_identifiers_only() {
        let (k, p) = path_key("/api/v1/users/123/orders/d9a1e25f-ca7c-48d4-83db-9009935bab90");
        assert_eq!(k, "/api/v1/users/{integer}/orders/{uuid}");
        assert_eq!(
            p,
            vec![(3, "123"), (5, "d9a1e25f-ca7c-48d4-83db-9009935bab90")]
        );
        assert_eq!(path_key("/").0, "/");
        assert_eq!(path_key("").0, "/");
        assert_eq!(
            path_key("/plans/by-slug/gold-annual-42").0,
            "/plans/by-slug/gold-annual-42"
        );
        assert_eq!(path_key("/a/{integer}/").0, "/a/%7Binteger%7D/");
        assert_eq!(
            key_segments("/a/%7Binteger%7D/{uuid}"),
            vec![
                KeySegment::Literal("a".into()),
                KeySegment::Literal("{integer}".into()),
                KeySegment::Param(ParamKind::Uuid)
            ]
        );
    }

    #[test]
    fn merges_past_the_cap_keep_the_first_seen_fields_in_any_table_order() {
        let stats = |present| FieldStats {
            present,
            types: TypeSet::STRING,
            formats: 0,
        };
        let extra = 40u32;
        let total = MAX_SCHEMA_FIELDS as u32 + extra;
        // The same observation built in two insertion orders (and so two
        // table layouts); the endpoint already holds `extra` other fields.
        let mut up = SchemaStats::default();
        let mut down = SchemaStats::default();
        for id in 0..total - extra {
            up.fields.insert(id, stats(1));
        }
        for id in (0..total - extra).rev() {
            down.fields.insert(id, stats(1));
        }
        let mut held = SchemaStats::default();
        for id in total - extra..total {
            held.fields.insert(id, stats(2));
        }
        let mut a = held.clone();
        a.merge(&up);
        let mut b = held;
        b.merge(&down);
        for merged in [&a, &b] {
            assert_eq!(merged.fields.len(), MAX_SCHEMA_FIELDS);
            assert_eq!(merged.dropped_fields, u64::from(extra));
            // Dropped: the last-seen fields of the observation.
            assert!((0..total - 2 * extra).all(|id| merged.fields.contains_key(&id)));
            assert!((total - 2 * extra..total - extra).all(|id| !merged.fields.contains_key(&id)));
        }
        // Into an empty schema the observation comes in whole.
        let mut empty = SchemaStats::default();
        empty.merge(&a);
        assert_eq!(empty.fields, a.fields);
        assert_eq!(empty.dropped_fields, a.dropped_fields);
    }

    #[test]
    fn deep_paths_are_cut() {
        let deep = "/x".repeat(100);
        let (k, _) = path_key(&deep);
        assert_eq!(k.matches('/').count(), MAX_PATH_SEGMENTS + 1);
        assert!(k.ends_with("/{…}"));
    }

    #[test]
    fn child_steps_agree_with_spelled_out_paths() {
        let mut names = FieldNames::default();
        let root = names.intern("").unwrap();
        let items = names.child(root, FieldStep::Key("items")).unwrap();
        assert_eq!(names.name(items), "/items");
        let each = names.child(items, FieldStep::Items).unwrap();
        assert_eq!(names.name(each), "/items/*");
        // A key spelled `*` is not the items step.
        let star = names.child(items, FieldStep::Key("*")).unwrap();
        assert_eq!(names.name(star), "/items/~2");
        assert_ne!(star, each);
        let odd = names.child(each, FieldStep::Key("a/b~c")).unwrap();
        assert_eq!(names.name(odd), "/items/*/a~1b~0c");
        assert_eq!(names.get("/items/*/a~1b~0c"), Some(odd));
        // Found again by step, and by path from a stored schema.
        assert_eq!(names.child(items, FieldStep::Items), Some(each));
        assert_eq!(names.intern("/items/*"), Some(each));
        // A path interned spelled out first keeps its id when stepped to.
        let late = names.intern("/late").unwrap();
        assert_eq!(names.child(root, FieldStep::Key("late")), Some(late));
        assert_eq!(names.names.len(), 6);
    }

    #[test]
    fn child_steps_stop_at_the_path_limit() {
        let mut names = FieldNames::default();
        let root = names.intern("").unwrap();
        for i in 1..MAX_FIELD_PATHS {
            names.intern(&format!("/f{i}")).unwrap();
        }
        assert_eq!(names.child(root, FieldStep::Key("new")), None);
        assert_eq!(names.child(root, FieldStep::Key("f7")), names.get("/f7"));
    }

    #[test]
    fn field_paths_escape_and_split() {
        let mut p = String::new();
        escape_key("a/b~c*", &mut p);
        assert_eq!(p, "a~1b~0c~2");
        assert_eq!(
            split_field_path("/items/*/a~1b~0c~2"),
            vec!["items", "*", "a/b~c*"]
        );
    }

    use shadowtap_proto::record::{BodyShape, Fields, Shape};

    /// The walk over a [`Shape`] tree that [`SchemaStats::add`] replaced:
    /// the reference its walk over the flat form must match.
    fn add_tree(s: &mut SchemaStats, shape: &Shape, sampled: bool, names: &mut FieldNames) {
        s.bodies += 1;
        if sampled {
            s.sampled += 1;
        }
        if s.fields.is_empty() {
            let top = match shape {
                Shape::Object { fields, .. } => fields.len() + 1,
                _ => 2,
            };
            s.fields.reserve(top.min(MAX_OBSERVATION_FIELDS));
        }
        walk_tree(s, shape, names.intern(""), names);
    }

    fn walk_tree(s: &mut SchemaStats, shape: &Shape, id: Option<u32>, names: &mut FieldNames) {
        let (types, formats) = match shape {
            Shape::Null => (TypeSet::NULL, 0),
            Shape::Boolean => (TypeSet::BOOLEAN, 0),
            Shape::Integer => (TypeSet::INTEGER, 0),
            Shape::Number => (TypeSet::NUMBER, 0),
            Shape::String { format } => (
                TypeSet::STRING,
                format.map_or(0, |f| format_bit(f.as_str())),
            ),
            Shape::Array { .. } => (TypeSet::ARRAY, 0),
            Shape::Object { .. } => (TypeSet::OBJECT, 0),
            Shape::Any => (TypeSet::ANY, 0),
        };
        let Some(id) = id else {
            s.dropped_fields += 1;
            return;
        };
        if let Some(f) = s.fields.get_mut(&id) {
            f.present += 1;
            f.types |= types;
            f.formats |= formats;
        } else if s.fields.len() < MAX_OBSERVATION_FIELDS {
            s.fields.insert(
                id,
                FieldStats {
                    present: 1,
                    types,
                    formats,
                },
            );
        } else {
            s.dropped_fields += 1;
            return;
        }
        match shape {
            Shape::Object { fields, .. } => {
                for (key, child) in fields.iter() {
                    let child_id = names.child(id, FieldStep::Key(key));
                    walk_tree(s, child, child_id, names);
                }
            }
            Shape::Array { items: Some(item) } => {
                let item_id = names.child(id, FieldStep::Items);
                walk_tree(s, item, item_id, names);
            }
            _ => {}
        }
    }

    /// xorshift64*: deterministic test input.
    struct Rng(u64);

    impl Rng {
        fn below(&mut self, n: usize) -> usize {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            (self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 33) as usize % n.max(1)
        }
    }

    const KEYS: [&str; 10] = ["id", "a", "b", "*", "a/b", "~", "", "name", "x~1", "ü"];
    const ALL_FORMATS: [StringFormat; 8] = StringFormat::ALL;

    fn key(rng: &mut Rng) -> String {
        match rng.below(3) {
            0 => format!("k{}", rng.below(400)),
            _ => KEYS[rng.below(KEYS.len())].to_owned(),
        }
    }

    /// A random shape, sometimes wide (past [`MAX_OBSERVATION_FIELDS`]) and
    /// deeper than the sensor's shapes get.
    fn random_shape(rng: &mut Rng, depth: usize) -> Shape {
        let pick = if depth >= 10 {
            rng.below(6)
        } else {
            rng.below(10)
        };
        match pick {
            0 => Shape::Null,
            1 => Shape::Boolean,
            2 => Shape::Integer,
            3 => Shape::Number,
            4 => Shape::Any,
            5 => Shape::String {
                format: rng
                    .below(2)
                    .eq(&0)
                    .then(|| ALL_FORMATS[rng.below(ALL_FORMATS.len())]),
            },
            6 | 7 => {
                let width = if rng.below(20) == 0 { 200 } else { 6 };
                let n = rng.below(width);
                let fields: Fields = (0..n)
                    .map(|_| (key(rng), random_shape(rng, depth + 1)))
                    .collect();
                Shape::Object {
                    fields,
                    truncated: rng.below(4) == 0,
                }
            }
            _ => Shape::Array {
                items: (rng.below(4) != 0).then(|| Box::new(random_shape(rng, depth + 1))),
            },
        }
    }

    /// Adds `shapes` to one schema through the flat form and to another
    /// through the tree walk, with copies of `names`, checking after each
    /// body that the statistics and the path ids agree. Returns the
    /// statistics and the names.
    fn check_same(shapes: &[Shape], names: &FieldNames) -> (SchemaStats, FieldNames) {
        let (mut flat_names, mut tree_names) = (names.clone(), names.clone());
        let (mut by_flat, mut by_tree) = (SchemaStats::default(), SchemaStats::default());
        let mut parents = Vec::new();
        for (i, shape) in shapes.iter().enumerate() {
            let sampled = i % 3 == 0;
            let flat = BodyShape::from(shape.clone()).flat().into_owned();
            assert_eq!(flat.to_tree(), *shape);
            by_flat.add(&flat, sampled, &mut flat_names, &mut parents);
            add_tree(&mut by_tree, shape, sampled, &mut tree_names);
            assert_eq!(by_flat, by_tree, "body {i}: {shape:?}");
            assert_eq!(flat_names.names, tree_names.names, "body {i}");
            assert!(parents.len() <= flat.len());
        }
        (by_flat, flat_names)
    }

    #[test]
    fn flat_walks_count_what_tree_walks_count() {
        let t = |json: &str| -> Shape { serde_json::from_str(json).unwrap() };
        let hand = [
            t(r#"{"type":"null"}"#),
            t(r#"{"type":"array"}"#),
            t(r#"{"type":"string","format":"uuid"}"#),
            t(
                r#"{"type":"object","fields":{"a":{"type":"integer"},"b":{"type":"array","items":{"type":"object","fields":{"c":{"type":"string","format":"email"},"d":{"type":"any"}},"truncated":true}}}}"#,
            ),
            t(
                r#"{"type":"array","items":{"type":"array","items":{"type":"object","fields":{"*":{"type":"null"},"":{"type":"boolean"},"a/b~":{"type":"number"}}}}}"#,
            ),
            t(
                r#"{"type":"object","fields":{"a":{"type":"object","fields":{}},"b":{"type":"array"}},"truncated":true}"#,
            ),
        ];
        let (stats, _) = check_same(&hand, &FieldNames::default());
        assert_eq!(stats.dropped_fields, 0);
        let mut capped = 0;
        for seed in 1..=40u64 {
            let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15));
            let shapes: Vec<Shape> = (0..60).map(|_| random_shape(&mut rng, 0)).collect();
            let (stats, _) = check_same(&shapes, &FieldNames::default());
            if stats.fields.len() == MAX_OBSERVATION_FIELDS && stats.dropped_fields > 0 {
                capped += 1;
            }
        }
        // Most schemas reach the cap of fields per observation.
        assert!(capped > 20, "{capped}");
    }

    #[test]
    fn flat_walks_stop_at_the_path_limit_like_tree_walks() {
        // Room for only sixty new paths: walks reach the limit
        // mid-body, below fields they could still count.
        let mut names = FieldNames::default();
        names.intern("").unwrap();
        for i in 1..MAX_FIELD_PATHS - 60 {
            names.intern(&format!("/f{i}")).unwrap();
        }
        let mut rng = Rng(7);
        let shapes: Vec<Shape> = (0..80).map(|_| random_shape(&mut rng, 0)).collect();
        let (stats, names) = check_same(&shapes, &names);
        assert_eq!(names.names.len(), MAX_FIELD_PATHS);
        assert!(stats.dropped_fields > 0);
    }

    /// A random JSON document (keys repeat, arrays mix element shapes,
    /// objects get wider and deeper than the scanner's caps).
    fn random_json(rng: &mut Rng, depth: usize, out: &mut String) {
        let pick = if depth >= 12 {
            rng.below(6)
        } else {
            rng.below(9)
        };
        match pick {
            0 => out.push_str("null"),
            1 => out.push_str(if rng.below(2) == 0 { "true" } else { "false" }),
            2 => out.push_str("-12"),
            3 => out.push_str("3.5e2"),
            4 => out.push_str(
                [
                    "\"d9a1e25f-ca7c-48d4-83db-9009935bab90\"",
                    "\"2024-01-02\"",
                    "\"a@b.example\"",
                    "\"plain\"",
                    "\"esc\\\"aped\"",
                ][rng.below(5)],
            ),
            5 | 6 => {
                let width = if rng.below(15) == 0 { 90 } else { 5 };
                out.push('{');
                for i in 0..rng.below(width) {
                    if i > 0 {
                        out.push(',');
                    }
                    out.push('"');
                    out.push_str(&key(rng).replace('~', "\\u007e"));
                    out.push_str("\":");
                    random_json(rng, depth + 1, out);
                }
                out.push('}');
            }
            _ => {
                out.push('[');
                for i in 0..rng.below(5) {
                    if i > 0 {
                        out.push(',');
                    }
                    random_json(rng, depth + 1, out);
                }
                out.push(']');
            }
        }
    }

    #[test]
    fn scanned_flat_shapes_count_what_their_trees_count() {
        let mut rng = Rng(0x5EED);
        let mut shapes = Vec::new();
        let mut flats = Vec::new();
        for _ in 0..400 {
            let mut doc = String::new();
            random_json(&mut rng, 0, &mut doc);
            // Whole, and cut short as a body sample is.
            let cut = rng.below(doc.len() + 1);
            for b in [doc.as_bytes(), &doc.as_bytes()[..cut]] {
                if let Some(flat) = shadowtap_proto::internal::flat_shape(b) {
                    shapes.push(flat.to_tree());
                    flats.push(flat);
                }
            }
        }
        assert!(shapes.len() > 600);
        // The trees' flat forms are the scanner's.
        for (flat, tree) in flats.iter().zip(&shapes) {
            assert_eq!(*flat, FlatShape::from_tree(tree));
        }
        let (stats, _) = check_same(&shapes, &FieldNames::default());
        assert!(stats.fields.len() > 50);
    }

    #[test]
    fn field_tables_stay_sorted_and_find_with_or_without_a_hint() {
        let stats = |present| FieldStats {
            present,
            types: TypeSet::NULL,
            formats: 0,
        };
        let mut t = FieldTable::default();
        let ids: Vec<u32> = (0..300u32)
            .map(|i| i.wrapping_mul(2_654_435_761) % 1000)
            .collect();
        for &id in &ids {
            t.insert(id, stats(u64::from(id)));
        }
        let mut want: Vec<u32> = ids;
        want.sort_unstable();
        want.dedup();
        assert_eq!(t.iter().map(|(id, _)| *id).collect::<Vec<_>>(), want);
        // Room for a quarter more at most (and the growth step).
        assert!(t.ids.capacity() <= want.len() + want.len() / 4 + 4);
        assert_eq!(t.ids.capacity(), t.stats.capacity());
        for (at, &id) in want.iter().enumerate() {
            assert_eq!(t.get(&id), Some(&stats(u64::from(id))));
            assert_eq!(t.slot(id, at), Ok(at));
            assert_eq!(t.slot(id, at + 1), Ok(at));
            assert_eq!(t.slot(id, usize::MAX), Ok(at));
        }
        assert_eq!(t.slot(1000, 0), Err(want.len()));
        assert!(!t.contains_key(&1000));
        t.insert(want[3], stats(7));
        assert_eq!(t.get(&want[3]), Some(&stats(7)));
        assert_eq!(t.len(), want.len());
    }

    #[test]
    fn merges_keep_what_field_by_field_merges_kept() {
        // The merge before tables were sorted: field by field in id order
        // (or any order while there is room for all). Returns the
        // occurrences dropped.
        fn reference(into: &mut FieldTable, o: &FieldTable) -> u64 {
            let mut dropped = 0;
            for (&id, f) in o.iter() {
                if let Some(mine) = into.get_mut(&id) {
                    mine.present += f.present;
                    mine.types |= f.types;
                    mine.formats |= f.formats;
                } else if into.len() < MAX_SCHEMA_FIELDS {
                    into.insert(id, *f);
                } else {
                    dropped += f.present;
                }
            }
            dropped
        }
        let mut rng = Rng(99);
        let table = |rng: &mut Rng| {
            let mut s = SchemaStats {
                bodies: rng.below(9) as u64,
                dropped_fields: rng.below(3) as u64,
                ..SchemaStats::default()
            };
            let (n, range) = (rng.below(MAX_SCHEMA_FIELDS + 1), 50 + rng.below(600));
            for _ in 0..n {
                let f = FieldStats {
                    present: 1 + rng.below(5) as u64,
                    types: 1 << rng.below(8),
                    formats: rng.below(3) as u16,
                };
                s.fields.insert(rng.below(range) as u32, f);
            }
            s
        };
        let mut capped = 0;
        for _ in 0..300 {
            let (a, b) = (table(&mut rng), table(&mut rng));
            let mut want = a.fields.clone();
            let dropped = reference(&mut want, &b.fields);
            let mut got = a.clone();
            got.merge(&b);
            assert_eq!(got.fields, want);
            assert_eq!(
                got.dropped_fields,
                a.dropped_fields + b.dropped_fields + dropped
            );
            assert_eq!(got.bodies, a.bodies + b.bodies);
            capped += usize::from(got.fields.len() == MAX_SCHEMA_FIELDS);
        }
        assert!(capped > 15, "{capped}");
    }

    #[test]
    fn format_bits_by_enum_and_by_label_agree() {
        for f in ALL_FORMATS {
            assert_eq!(string_format_bit(f), format_bit(f.as_str()), "{f:?}");
            assert_ne!(string_format_bit(f), 0);
        }
    }
}
