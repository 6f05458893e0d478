//! The JSON body shape scanner.
//!
//! `serde_json` cannot parse the prefix of a document, and a body sample is
//! usually a prefix. This scanner reads whatever bytes it is given and
//! describes what it saw: keys and value types, never values. Objects cut
//! short (end of sample, syntax error, or a cap) are marked `truncated`.
//!
//! It builds no [`Shape`](super::Shape) tree: the shape lives in arenas kept
//! by the scanner from body to body (12-byte nodes, and the sorted field
//! runs of objects), and [`SkeletonScanner::render`] writes the shape's
//! JSON straight from them, the bytes `write_json` writes for the
//! equivalent tree. The record builder hands that JSON on as a
//! [`BodyShape`]; readers get the tree back from it (see
//! docs/sensor-core.md, "perf-skeleton"). A reader in the same process
//! (the analyzer) gets the shape in its flat form instead
//! ([`super::flat`], [`SkeletonScanner::flat`]), also written straight from
//! the arenas.
//!
//! Every dimension is capped by a named constant: the shape's own caps
//! ([`MAX_DEPTH`], [`MAX_FIELDS`], [`MAX_ARRAY_ITEMS`], and the key caps in
//! [`super::keys`]) and the arenas' ([`SKELETON_MAX_NODES`],
//! [`SKELETON_MAX_FIELD_ENTRIES`]): a value that finds an arena full is
//! `any` and its object `truncated` (the containers already open still
//! close, from a reserve), and the scan is counted in
//! [`SkeletonScanner::arena_full`]. Recursion is bounded by [`MAX_DEPTH`];
//! deeper values are skipped by an iterative bracket counter, so hostile
//! input (`[[[[…`) costs one pass and no stack.
//!
//! The scanner is reused from body to body: it keeps its arenas and the
//! table of keys it has already exported, so a key seen before costs one
//! lookup.

use std::cmp::Ordering;

use super::flat::{FlatBuilder, FlatKind, FlatShape};
use super::keys::{key_cmp, KeyTable};
use super::shape::{format_of, MAX_ARRAY_ITEMS, MAX_DEPTH, MAX_FIELDS};
use super::{BodyShape, StringFormat};

/// Most nodes one scan may hold (a scan adds at most one per value seen,
/// so a 4 KiB sample stays far below). The last `NODE_RESERVE` close the
/// containers that are open when the arena fills up.
pub const SKELETON_MAX_NODES: usize = 64 * 1024;
/// Most object field entries one scan may hold (runs replaced by merges
/// stay until the end of the scan). The last `RUN_RESERVE` hold the
/// fields of the objects that are open when the arena fills up.
pub const SKELETON_MAX_FIELD_ENTRIES: usize = 256 * 1024;

/// Nodes kept back for closing containers: at most [`MAX_DEPTH`] are open
/// at once, and once an arena is full no container opens.
const NODE_RESERVE: usize = MAX_DEPTH + 2;
/// Field entries kept back for closing objects (each holds at most
/// [`MAX_FIELDS`]).
const RUN_RESERVE: usize = (MAX_DEPTH + 1) * MAX_FIELDS;
const _: () = assert!(SKELETON_MAX_NODES > 2 * NODE_RESERVE);
const _: () = assert!(SKELETON_MAX_FIELD_ENTRIES > 2 * RUN_RESERVE);

/// Bytes of a string checked a word at a time before searching with
/// `memchr2` (UUIDs and dates fit).
const SHORT_STRING: usize = 64;

/// Bits of a [`SeenKeys`] entry that hold the field's offset in its object
/// (fewer than [`MAX_FIELDS`] fields are ever before it); the bits above
/// hold the object's serial.
const SEEN_OFFSET_BITS: u32 = 6;
const SEEN_OFFSET_MASK: u32 = (1 << SEEN_OFFSET_BITS) - 1;
const _: () = assert!(MAX_FIELDS <= 1 << SEEN_OFFSET_BITS);

/// The keys the open objects have, for finding a repeated key: one table
/// per depth, indexed by key id, whose entry says which object last had
/// the key (its serial) and where its field is. Objects at one depth never
/// overlap, so an entry is only ever overwritten once its object has
/// ended. A lookup is one load and a compare that is false unless the key
/// repeats, where a probed per-object index branched on the slots that
/// other keys had taken, in the random order the keys come in.
///
/// Bounded by the depth cap and the key table: at most [`MAX_DEPTH`] + 1
/// tables of one `u32` per key id, emptied when the key table is.
#[derive(Default)]
struct SeenKeys {
    /// `entries[depth * ids + id]`: `serial << SEEN_OFFSET_BITS | offset`,
    /// 0 for never (serials start at 1).
    entries: Vec<u32>,
    /// Ids each depth has room for (a power of two).
    ids: usize,
    /// The last object's serial.
    serial: u32,
}

/// Serials there are room for above the offset bits.
const SEEN_SERIALS: u32 = 1 << (32 - SEEN_OFFSET_BITS);
/// More serials than one scan takes: every object it opens ends as a node
/// or opens while the node arena still has room (at most
/// [`SKELETON_MAX_NODES`] of them, and [`MAX_DEPTH`] open at once).
const SEEN_SERIALS_PER_SCAN: u32 = 2 * SKELETON_MAX_NODES as u32;

/// Depths an object can be at (objects deeper than [`MAX_DEPTH`] are not
/// opened).
const SEEN_DEPTHS: usize = MAX_DEPTH + 1;

impl SeenKeys {
    /// Called before a scan: when the serials could run out during it,
    /// every entry is forgotten and they start again. Never during a scan:
    /// the open objects' entries must stay.
    fn start_scan(&mut self) {
        if self.serial >= SEEN_SERIALS - SEEN_SERIALS_PER_SCAN {
            self.entries.fill(0);
            self.serial = 0;
        }
    }

    /// A new serial for an object that opens.
    fn open(&mut self) -> u32 {
        self.serial += 1;
        self.serial
    }

    /// Where key `id`'s entry at `depth` is, making room for it.
    #[inline]
    fn at(&mut self, depth: usize, id: u32) -> usize {
        let id = id as usize;
        if id >= self.ids {
            self.grow(id);
        }
        depth.min(SEEN_DEPTHS - 1) * self.ids + id
    }

    /// Makes room for ids up to `id`, keeping every entry.
    #[cold]
    fn grow(&mut self, id: usize) {
        let ids = (id + 1).next_power_of_two().max(64);
        let mut entries = vec![0; SEEN_DEPTHS * ids];
        if self.ids > 0 {
            for (old, new) in self
                .entries
                .chunks_exact(self.ids)
                .zip(entries.chunks_exact_mut(ids))
            {
                new[..old.len()].copy_from_slice(old);
            }
        }
        self.entries = entries;
        self.ids = ids;
    }

    /// Forgets every entry and gives the memory back.
    fn clear(&mut self) {
        self.entries = Vec::new();
        self.ids = 0;
    }
}

/// Number characters: `1` for the characters of an integer, `2` for those
/// that make it a number (`.`, `e`, `E`), `0` for anything that ends it.
const NUMBER_CHARS: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut c = b'0';
    while c <= b'9' {
        t[c as usize] = 1;
        c += 1;
    }
    t[b'-' as usize] = 1;
    t[b'+' as usize] = 1;
    t[b'.' as usize] = 2;
    t[b'e' as usize] = 2;
    t[b'E' as usize] = 2;
    t
};

/// The bytes of `word` (little-endian) that are `"` or `\`, each marked by
/// its high bit; marks above the lowest one may be false.
fn quote_or_backslash(word: u64) -> u64 {
    super::url::byte_marks(word, b'"') | super::url::byte_marks(word, b'\\')
}

/// Objects with at least this many fields, all of them ranked, are put in
/// key order through a bitmap of their ranks ([`RankBuckets`]) instead of
/// a sort; smaller ones sort faster.
const BUCKET_MIN_FIELDS: usize = 16;
/// Widest span of ranks (from the lowest rank's 64-aligned base to the
/// highest) that [`RankBuckets`] orders; wider objects are sorted.
const BUCKET_SPAN: usize = 4096;

/// Orders an object's fields by rank without comparisons: each field sets
/// the bit of its rank (ranks of distinct keys differ) and notes its
/// offset, then the set bits are read in order. Costs a few instructions
/// per field and per 64 ranks of the span, against the sort's
/// `n log n` comparisons.
#[derive(Default)]
struct RankBuckets {
    /// One bit per rank of the span, all zero between uses.
    bits: Vec<u64>,
    /// The field offset of each rank whose bit is set.
    offset: Vec<u8>,
}

impl RankBuckets {
    /// Writes `stack`'s fields into `order` by rank; `ranked` holds each
    /// field's `(rank << 8) | offset`. False (nothing written that counts)
    /// when the ranks span more than [`BUCKET_SPAN`] or are not distinct.
    fn order(
        &mut self,
        ranked: &[u32],
        stack: &[(u32, NodeId)],
        order: &mut [(u32, NodeId)],
    ) -> bool {
        let (lo, hi) = ranked.iter().fold((u32::MAX, 0), |(lo, hi), &r| {
            (lo.min(r >> 8), hi.max(r >> 8))
        });
        let base = lo & !63;
        let span = hi.wrapping_sub(base) as usize;
        if span >= BUCKET_SPAN {
            return false;
        }
        if self.bits.is_empty() {
            self.bits = vec![0; BUCKET_SPAN / 64];
            self.offset = vec![0; BUCKET_SPAN];
        }
        let (bits, offset) = (&mut self.bits[..=span / 64], &mut self.offset[..=span]);
        for &r in ranked {
            let at = ((r >> 8) - base) as usize;
            if let (Some(word), Some(o)) = (bits.get_mut(at / 64), offset.get_mut(at)) {
                *word |= 1 << (at % 64);
                *o = r as u8;
            }
        }
        let mut n = 0;
        for (w, word) in bits.iter_mut().enumerate() {
            let mut set = std::mem::take(word);
            while set != 0 {
                let at = w * 64 + set.trailing_zeros() as usize;
                set &= set - 1;
                let field = offset.get(at).and_then(|&o| stack.get(usize::from(o)));
                if let (Some(&field), Some(slot)) = (field, order.get_mut(n)) {
                    *slot = field;
                }
                n += 1;
            }
        }
        n == order.len()
    }
}

/// Index of a node in the arena.
type NodeId = u32;

/// One shape node; containers point into the arenas.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Node {
    Null,
    Boolean,
    Integer,
    Number,
    Any,
    String(Option<StringFormat>),
    /// The merged element shape, if any element was seen.
    Array(Option<NodeId>),
    /// Fields `runs[start..start + len]`, sorted by key.
    Object {
        start: u32,
        len: u32,
        truncated: bool,
    },
}

/// The skeleton scanner's state kept between bodies.
#[derive(Default)]
pub(crate) struct SkeletonScanner {
    keys: KeyTable,
    nodes: Vec<Node>,
    /// Sorted field runs of the objects: (key id, node).
    runs: Vec<(u32, NodeId)>,
    /// Fields of the objects being scanned, innermost last.
    stack: Vec<(u32, NodeId)>,
    /// Scratch space for ordering the fields of large objects.
    buckets: RankBuckets,
    /// The keys of the open objects.
    seen: SeenKeys,
    /// The shape's JSON of the last body, kept to render the next one
    /// into (at most [`RENDER_BUFFER_KEEP_BYTES`] of it is kept).
    out: String,
    /// Scans that hit an arena cap.
    pub(crate) arena_full: u64,
    /// Bodies whose shape or form keys describe only a prefix (counted by
    /// the record builder, which decides it).
    pub(crate) sampled: u64,
    /// [`Self::infer`] gives flat shapes ([`FlatShape`]), not rendered JSON.
    pub(crate) flat_shapes: bool,
    /// The buffers flat shapes are written into (at most
    /// [`super::flat::FLAT_BUFFER_KEEP_BYTES`] of them kept between bodies).
    flat_out: FlatBuilder,
}

/// Largest render buffer kept from one body to the next: a shape's JSON is
/// bounded by the arenas (a few MiB for a hostile 64 KiB sample), but real
/// ones stay under a few KiB.
const RENDER_BUFFER_KEEP_BYTES: usize = 64 * 1024;

impl SkeletonScanner {
    /// Scans `b`; the root node of its shape, or `None` if it does not
    /// start with a JSON value. The node is valid until the next scan.
    pub(crate) fn scan(&mut self, b: &[u8]) -> Option<SkeletonRoot> {
        if self.keys.trim() {
            // The ids are given out again from 0; the tables' entries would
            // not match them (older serials), but their memory goes too.
            self.seen.clear();
        }
        self.seen.start_scan();
        self.keys.rank_if_due(b.len());
        self.nodes.clear();
        self.runs.clear();
        self.stack.clear();
        let mut s = Scan {
            b,
            pos: 0,
            stop: false,
            cut: false,
            full: false,
            overflow: None,
            keys: &mut self.keys,
            nodes: &mut self.nodes,
            runs: &mut self.runs,
            stack: &mut self.stack,
            buckets: &mut self.buckets,
            seen: &mut self.seen,
        };
        s.skip_ws();
        if s.b[s.pos..].starts_with(b"\xEF\xBB\xBF") {
            s.pos += 3;
            s.skip_ws();
        }
        if s.pos >= s.b.len() {
            return None;
        }
        let root = s.value(1);
        if s.full {
            self.arena_full += 1;
        }
        root.map(SkeletonRoot)
    }

    /// The shape of the JSON text (or prefix) in `b` as its JSON, or `None`
    /// if it does not start with a JSON value.
    /// A scanner set to give flat shapes ([`Self::flat_shapes`]) writes
    /// that form instead.
    pub(crate) fn infer(&mut self, b: &[u8]) -> Option<BodyShape> {
        if self.flat_shapes {
            return self.infer_flat(b);
        }
        let root = self.scan(b)?;
        // Rendered into the kept buffer and copied out once: growing a new
        // buffer for every body costs more than the copy.
        let mut out = std::mem::take(&mut self.out);
        out.clear();
        self.render(root, &mut out);
        let json: Box<str> = out.as_str().into();
        if out.capacity() <= RENDER_BUFFER_KEEP_BYTES {
            self.out = out;
        }
        Some(BodyShape::from_json(json))
    }

    /// [`Self::infer`] for a reader in the same process (the analyzer): the
    /// shape in its flat form, written straight from the arenas, never
    /// rendered and parsed back nor built as a tree.
    pub(crate) fn infer_flat(&mut self, b: &[u8]) -> Option<BodyShape> {
        let root = self.scan(b)?;
        Some(BodyShape::from(self.flat(root)))
    }

    /// The flat form of the shape rooted at `root` (from the last scan):
    /// the [`super::Shape`] that the JSON [`Self::render`] writes describes.
    /// Written into buffers kept by the scanner and copied out once.
    pub(crate) fn flat(&mut self, root: SkeletonRoot) -> FlatShape {
        let mut out = std::mem::take(&mut self.flat_out);
        out.clear();
        self.flat_node(root.0, 0, None, &mut out);
        let flat = out.finish();
        self.flat_out = out;
        flat
    }

    /// Appends node `id` (at `depth`, with `key` if it is an object's field)
    /// and its children. Recursion is bounded by the shape's depth (at most
    /// [`MAX_DEPTH`] + 1).
    fn flat_node(&self, id: NodeId, depth: usize, key: Option<&str>, out: &mut FlatBuilder) {
        let kind = match self.nodes.get(id as usize) {
            Some(&node) => node,
            // Never: every node id points into the arena.
            None => Node::Any,
        };
        match kind {
            Node::Null => out.push(depth, key, FlatKind::Null),
            Node::Boolean => out.push(depth, key, FlatKind::Boolean),
            Node::Integer => out.push(depth, key, FlatKind::Integer),
            Node::Number => out.push(depth, key, FlatKind::Number),
            Node::Any => out.push(depth, key, FlatKind::Any),
            Node::String(format) => out.push(depth, key, FlatKind::String(format)),
            Node::Array(items) => {
                let kind = FlatKind::Array {
                    items: items.is_some(),
                };
                out.push(depth, key, kind);
                if let Some(item) = items {
                    self.flat_node(item, depth + 1, None, out);
                }
            }
            Node::Object {
                start,
                len,
                truncated,
            } => {
                let run = self
                    .runs
                    .get(start as usize..(start as usize).saturating_add(len as usize))
                    .unwrap_or_default();
                let kind = FlatKind::Object {
                    fields: u8::try_from(run.len()).unwrap_or(u8::MAX),
                    truncated,
                };
                out.push(depth, key, kind);
                for &(key, node) in run {
                    self.flat_node(node, depth + 1, Some(self.keys.text(key)), out);
                }
            }
        }
    }

    /// Appends the JSON of the shape rooted at `root` (from the last scan),
    /// as `write_json` writes the equivalent [`super::Shape`].
    pub(crate) fn render(&self, root: SkeletonRoot, out: &mut String) {
        self.render_node(root.0, out);
    }

    /// Recursion is bounded by the shape's depth (at most [`MAX_DEPTH`] + 1).
    fn render_node(&self, id: NodeId, out: &mut String) {
        match self.nodes[id as usize] {
            Node::Null => out.push_str("{\"type\":\"null\"}"),
            Node::Boolean => out.push_str("{\"type\":\"boolean\"}"),
            Node::Integer => out.push_str("{\"type\":\"integer\"}"),
            Node::Number => out.push_str("{\"type\":\"number\"}"),
            Node::Any => out.push_str("{\"type\":\"any\"}"),
            Node::String(None) => out.push_str("{\"type\":\"string\"}"),
            Node::String(Some(f)) => {
                out.push_str("{\"type\":\"string\",\"format\":\"");
                out.push_str(f.as_str());
                out.push_str("\"}");
            }
            Node::Array(None) => out.push_str("{\"type\":\"array\"}"),
            Node::Array(Some(items)) => {
                out.push_str("{\"type\":\"array\",\"items\":");
                self.render_node(items, out);
                out.push('}');
            }
            Node::Object {
                start,
                len,
                truncated,
            } => {
                out.push_str("{\"type\":\"object\",\"fields\":{");
                let run = &self.runs[start as usize..(start + len) as usize];
                for (i, &(key, node)) in run.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    out.push_str(self.keys.member(key));
                    self.render_node(node, out);
                }
                out.push('}');
                if truncated {
                    out.push_str(",\"truncated\":true");
                }
                out.push('}');
            }
        }
    }
}

/// The root of a scanned shape, valid until the scanner's next scan.
#[derive(Clone, Copy, Debug)]
pub(crate) struct SkeletonRoot(NodeId);

struct Scan<'a, 's> {
    b: &'a [u8],
    pos: usize,
    /// Set at end of input or on a syntax error: every open container ends.
    stop: bool,
    /// A container below the current object was skipped by the depth cap
    /// (or a value found an arena full).
    cut: bool,
    /// An arena reached its reserve during this scan: no value gets a node
    /// of its own and no container opens any more.
    full: bool,
    /// The `any` node shared by the values that found the arena full.
    overflow: Option<NodeId>,
    keys: &'s mut KeyTable,
    nodes: &'s mut Vec<Node>,
    runs: &'s mut Vec<(u32, NodeId)>,
    stack: &'s mut Vec<(u32, NodeId)>,
    buckets: &'s mut RankBuckets,
    seen: &'s mut SeenKeys,
}

impl<'a> Scan<'a, '_> {
    #[inline]
    fn peek(&self) -> Option<u8> {
        self.b.get(self.pos).copied()
    }

    #[inline]
    fn skip_ws(&mut self) {
        while let Some(c) = self.peek() {
            if !matches!(c, b' ' | b'\t' | b'\n' | b'\r') {
                break;
            }
            self.pos += 1;
        }
    }

    /// A new node for a scalar value; `None` (and `full` set) when only the
    /// reserve is left.
    #[inline]
    fn node(&mut self, n: Node) -> Option<NodeId> {
        if self.nodes.len() >= SKELETON_MAX_NODES - NODE_RESERVE {
            self.full = true;
            return None;
        }
        self.nodes.push(n);
        Some(u32::try_from(self.nodes.len() - 1).unwrap_or(u32::MAX))
    }

    /// A new node for a container that ends: it may take from the reserve
    /// (and sets `full` when it does).
    fn close(&mut self, n: Node) -> NodeId {
        if self.nodes.len() >= SKELETON_MAX_NODES - NODE_RESERVE {
            self.full = true;
            if self.nodes.len() >= SKELETON_MAX_NODES {
                return self.overflow();
            }
        }
        self.nodes.push(n);
        u32::try_from(self.nodes.len() - 1).unwrap_or(u32::MAX)
    }

    /// The node for a value that found the arena full: one `Any` node
    /// past the cap, shared by every such value (`any` absorbs every
    /// merge, so sharing it is safe); the enclosing object is truncated.
    fn overflow(&mut self) -> NodeId {
        self.full = true;
        self.cut = true;
        if let Some(id) = self.overflow {
            return id;
        }
        self.nodes.push(Node::Any);
        let id = u32::try_from(self.nodes.len() - 1).unwrap_or(u32::MAX);
        self.overflow = Some(id);
        id
    }

    /// One value starting at `pos` (whitespace skipped), at nesting `depth`.
    fn value(&mut self, depth: usize) -> Option<NodeId> {
        self.skip_ws();
        let c = match self.peek() {
            Some(c) => c,
            None => {
                self.stop = true;
                return None;
            }
        };
        let n = match c {
            b'{' | b'[' if depth > MAX_DEPTH || self.full => {
                self.cut = true;
                self.skip_container();
                Node::Any
            }
            b'{' => return Some(self.object(depth)),
            b'[' => return Some(self.array(depth)),
            b'"' => {
                let (raw, escaped, _complete) = self.string();
                Node::String(format_of(raw, escaped))
            }
            b'-' | b'0'..=b'9' => self.number(),
            b't' | b'f' | b'n' => self.literal(c)?,
            _ => {
                self.stop = true;
                return None;
            }
        };
        Some(self.node(n).unwrap_or_else(|| self.overflow()))
    }

    fn object(&mut self, depth: usize) -> NodeId {
        self.pos += 1; // '{'
        let base = self.stack.len();
        // Keys this object already has are found in `seen` under its serial.
        let serial = self.seen.open();
        let mut truncated = false;
        // Depth cuts are reported by the nearest enclosing object.
        let outer_cut = std::mem::take(&mut self.cut);
        loop {
            self.skip_ws();
            match self.peek() {
                None => {
                    self.stop = true;
                    truncated = true;
                    break;
                }
                Some(b'}') => {
                    self.pos += 1;
                    break;
                }
                Some(b',') => self.pos += 1,
                Some(b'"') if self.stack.len() - base >= MAX_FIELDS => {
                    // The object is full: its further fields are not
                    // looked at, not even a repeated key (see the `object`
                    // row in docs/exchange-record.md). Nothing after the
                    // root's cap can change the shape: the scan ends there.
                    truncated = true;
                    if depth == 1 {
                        self.stop = true;
                    } else {
                        self.skip_rest();
                    }
                    break;
                }
                Some(b'"') => {
                    let (raw, escaped, complete) = self.string();
                    self.skip_ws();
                    if !complete || self.peek() != Some(b':') {
                        self.stop = true;
                        truncated = true;
                        break;
                    }
                    self.pos += 1;
                    let id = self.keys.intern(raw, escaped);
                    let at = self.seen.at(depth, id);
                    let seen = self.seen.entries.get(at).copied().unwrap_or(0);
                    let known = (seen >> SEEN_OFFSET_BITS == serial)
                        .then(|| base + (seen & SEEN_OFFSET_MASK) as usize);
                    let len = self.stack.len() - base;
                    if let Some(i) = known {
                        let prev = self.stack[i].1;
                        if !self.merge_value(depth + 1, prev) {
                            truncated = true;
                        }
                    } else {
                        match self.value(depth + 1) {
                            Some(node) => {
                                // `len` < `MAX_FIELDS`: it fits the offset bits.
                                let at = self.seen.at(depth, id);
                                if let Some(e) = self.seen.entries.get_mut(at) {
                                    *e = serial << SEEN_OFFSET_BITS | len as u32 & SEEN_OFFSET_MASK;
                                }
                                self.stack.push((id, node));
                            }
                            None => truncated = true,
                        }
                    }
                }
                Some(_) => {
                    self.stop = true;
                    truncated = true;
                }
            }
            if self.stop {
                truncated = true;
                break;
            }
        }
        truncated |= self.cut;
        self.cut = outer_cut;
        let (start, len) = match self.take_fields(base) {
            Some(run) => run,
            None => {
                truncated = true;
                (0, 0)
            }
        };
        self.close(Node::Object {
            start,
            len,
            truncated,
        })
    }

    /// Sorts the fields from `base` up by key into a new run (popped).
    fn take_fields(&mut self, base: usize) -> Option<(u32, u32)> {
        let keys = &*self.keys;
        let stack = &self.stack[base..];
        let mut order = [(0u32, 0u32); MAX_FIELDS];
        let order = &mut order[..stack.len()];
        // When every key is ranked, sort (rank, offset) words: the ranks
        // are in key order.
        let mut ranked = [0u32; MAX_FIELDS];
        let ranked = &mut ranked[..stack.len()];
        let all_ranked = ranked
            .iter_mut()
            .zip(stack.iter())
            .enumerate()
            .all(|(i, (o, f))| match keys.rank(f.0) {
                Some(r) => {
                    *o = (r << 8) | u32::try_from(i).unwrap_or(u32::MAX);
                    r < (1 << 24)
                }
                None => false,
            });
        if all_ranked {
            if ranked.len() < BUCKET_MIN_FIELDS || !self.buckets.order(ranked, stack, order) {
                ranked.sort_unstable();
                for (o, &r) in order.iter_mut().zip(ranked.iter()) {
                    *o = stack[(r & 0xff) as usize];
                }
            }
        } else {
            order.copy_from_slice(stack);
            order.sort_unstable_by(|a, b| {
                keys.prefix(a.0)
                    .cmp(&keys.prefix(b.0))
                    .then_with(|| key_cmp(keys.text(a.0).as_bytes(), keys.text(b.0).as_bytes()))
            });
        }
        self.stack.truncate(base);
        self.push_run(order, true)
    }

    /// Appends `fields` as a run: (start, len), or `None` if the arena is
    /// full. Only the fields of an object that ends (`closing`) may take
    /// from the reserve (and set `full` when they do).
    fn push_run(&mut self, fields: &[(u32, NodeId)], closing: bool) -> Option<(u32, u32)> {
        let end = self.runs.len() + fields.len();
        if end > SKELETON_MAX_FIELD_ENTRIES - RUN_RESERVE {
            self.full = true;
            if !closing || end > SKELETON_MAX_FIELD_ENTRIES {
                return None;
            }
        }
        let start = u32::try_from(self.runs.len()).unwrap_or(u32::MAX);
        self.runs.extend_from_slice(fields);
        Some((start, u32::try_from(fields.len()).unwrap_or(u32::MAX)))
    }

    fn array(&mut self, depth: usize) -> NodeId {
        self.pos += 1; // '['
        let mut items: Option<NodeId> = None;
        let mut seen = 0usize;
        loop {
            self.skip_ws();
            match self.peek() {
                None => {
                    self.stop = true;
                    break;
                }
                Some(b']') => {
                    self.pos += 1;
                    break;
                }
                Some(b',') => self.pos += 1,
                // Items past the cap are skipped; at the root nothing
                // after them can change the shape.
                Some(_) if seen >= MAX_ARRAY_ITEMS && depth == 1 => {
                    self.stop = true;
                }
                Some(_) if seen >= MAX_ARRAY_ITEMS => {
                    let at = self.pos;
                    self.skip_value();
                    // A byte no value starts with and `skip_value` does
                    // not pass (`}`): a syntax error, as for the items
                    // before the cap (and no progress would loop forever).
                    if self.pos == at {
                        self.stop = true;
                    }
                }
                Some(_) => {
                    seen += 1;
                    match items {
                        Some(prev) => {
                            self.merge_value(depth + 1, prev);
                        }
                        None => items = self.value(depth + 1),
                    }
                }
            }
            if self.stop {
                break;
            }
        }
        self.close(Node::Array(items))
    }

    /// Scans one value and merges it into node `prev` (in place); false if
    /// there was no value.
    fn merge_value(&mut self, depth: usize, prev: NodeId) -> bool {
        self.skip_ws();
        let p = prev as usize;
        match (self.peek(), self.nodes[p]) {
            (Some(b'"'), Node::String(format)) => {
                let (raw, escaped, _complete) = self.string();
                if format.is_some() && format != format_of(raw, escaped) {
                    self.nodes[p] = Node::String(None);
                }
                true
            }
            (Some(b'"'), _) => {
                self.string();
                self.nodes[p] = Node::Any;
                true
            }
            (Some(b'-' | b'0'..=b'9'), Node::Integer | Node::Number) => {
                if self.number() == Node::Number {
                    self.nodes[p] = Node::Number;
                }
                true
            }
            _ => match self.value(depth) {
                Some(node) => {
                    self.merge(prev, node);
                    true
                }
                None => false,
            },
        }
    }

    /// Merges node `b` into node `a` as `shape::merge` does. Recursion is
    /// bounded by the depth of the shapes.
    fn merge(&mut self, a: NodeId, b: NodeId) {
        let merged = match (self.nodes[a as usize], self.nodes[b as usize]) {
            (Node::Null, Node::Null) => Node::Null,
            (Node::Boolean, Node::Boolean) => Node::Boolean,
            (Node::Integer, Node::Integer) => Node::Integer,
            (Node::Integer | Node::Number, Node::Integer | Node::Number) => Node::Number,
            (Node::String(fa), Node::String(fb)) => Node::String(if fa == fb { fa } else { None }),
            (Node::Array(ia), Node::Array(ib)) => Node::Array(match (ia, ib) {
                (Some(x), Some(y)) => {
                    self.merge(x, y);
                    Some(x)
                }
                (x, y) => x.or(y),
            }),
            (
                Node::Object {
                    start: sa,
                    len: la,
                    truncated: ta,
                },
                Node::Object {
                    start: sb,
                    len: lb,
                    truncated: tb,
                },
            ) => {
                let (start, len, cut) = self.union(sa, la, sb, lb);
                Node::Object {
                    start,
                    len,
                    truncated: ta || tb || cut,
                }
            }
            _ => Node::Any,
        };
        self.nodes[a as usize] = merged;
    }

    /// The union of two sorted runs as `Fields::union` defines it, appended
    /// as a new run: (start, len, some fields of `b` left out). It is built
    /// aside first: merging shared keys appends the runs of nested unions.
    fn union(&mut self, sa: u32, la: u32, sb: u32, lb: u32) -> (u32, u32, bool) {
        let (sa, la, sb, lb) = (sa as usize, la as usize, sb as usize, lb as usize);
        // At most `MAX_FIELDS`: `a` has at most that many, and `b` adds only
        // while there is room.
        let mut out = [(0u32, 0u32); MAX_FIELDS];
        let mut n = 0;
        let mut cut = false;
        let mut room = MAX_FIELDS.saturating_sub(la);
        let (mut i, mut j) = (0, 0);
        loop {
            let x = (i < la).then(|| self.runs[sa + i]);
            let y = (j < lb).then(|| self.runs[sb + j]);
            let order = match (x, y) {
                (Some(x), Some(y)) => self.key_order(x.0, y.0),
                (Some(_), None) => Ordering::Less,
                (None, Some(_)) => Ordering::Greater,
                (None, None) => break,
            };
            let keep = match (order, x, y) {
                (Ordering::Less, Some(x), _) => {
                    i += 1;
                    Some(x)
                }
                (Ordering::Greater, _, Some(y)) => {
                    j += 1;
                    if room > 0 {
                        room -= 1;
                        Some(y)
                    } else {
                        cut = true;
                        None
                    }
                }
                (Ordering::Equal, Some(x), Some(y)) => {
                    self.merge(x.1, y.1);
                    i += 1;
                    j += 1;
                    Some(x)
                }
                _ => break,
            };
            if let Some(f) = keep {
                match out.get_mut(n) {
                    Some(slot) => {
                        *slot = f;
                        n += 1;
                    }
                    None => cut = true,
                }
            }
        }
        match self.push_run(&out[..n], false) {
            Some((start, len)) => (start, len, cut),
            // Arena full: keep `a` as it is; what `b` added is lost.
            None => (sa as u32, la as u32, true),
        }
    }

    /// Byte-wise order of two keys' exported text.
    fn key_order(&self, a: u32, b: u32) -> Ordering {
        if a == b {
            return Ordering::Equal;
        }
        match (self.keys.rank(a), self.keys.rank(b)) {
            (Some(x), Some(y)) => x.cmp(&y),
            _ => self.keys.text(a).cmp(self.keys.text(b)),
        }
    }

    /// A string at `pos` (on its opening quote): the raw bytes between the
    /// quotes, whether it contains escapes, whether the closing quote was seen.
    /// Always inlined: a call's register saves cost as much as a short key.
    #[inline(always)]
    fn string(&mut self) -> (&'a [u8], bool, bool) {
        let start = self.pos + 1;
        // Most keys and values are short: look at a few words before
        // paying for a vectorised search.
        let rest = self.b.get(start..).unwrap_or_default();
        let mut clean = 0;
        for word in rest.chunks_exact(8).take(SHORT_STRING / 8) {
            let word = <[u8; 8]>::try_from(word).map_or(0, u64::from_le_bytes);
            let found = quote_or_backslash(word);
            if found != 0 {
                let at = start + clean + (found.trailing_zeros() / 8) as usize;
                if self.b[at] == b'"' {
                    self.pos = at + 1;
                    return (&self.b[start..at], false, true);
                }
                break;
            }
            clean += 8;
        }
        self.string_slow(start, start + clean)
    }

    /// [`Self::string`] from `from` on, the bytes from `start` to `from`
    /// having neither quote nor backslash.
    fn string_slow(&mut self, start: usize, from: usize) -> (&'a [u8], bool, bool) {
        let mut i = from;
        let mut escaped = false;
        while let Some(off) = memchr::memchr2(b'"', b'\\', &self.b[i.min(self.b.len())..]) {
            let at = i + off;
            if self.b[at] == b'"' {
                self.pos = at + 1;
                return (&self.b[start..at], escaped, true);
            }
            escaped = true;
            i = at + 2;
        }
        self.pos = self.b.len();
        self.stop = true;
        (&self.b[start.min(self.b.len())..], escaped, false)
    }

    #[inline]
    fn number(&mut self) -> Node {
        let mut kinds = 0u8;
        while let Some(c) = self.peek() {
            let k = NUMBER_CHARS[usize::from(c)];
            if k == 0 {
                break;
            }
            kinds |= k;
            self.pos += 1;
        }
        if kinds & 2 == 0 {
            Node::Integer
        } else {
            Node::Number
        }
    }

    fn literal(&mut self, first: u8) -> Option<Node> {
        let word: &[u8] = match first {
            b't' => b"true",
            b'f' => b"false",
            _ => b"null",
        };
        let rest = &self.b[self.pos..];
        let n = rest.len().min(word.len());
        if rest[..n] != word[..n] {
            self.stop = true;
            return None;
        }
        self.pos += n;
        if n < word.len() {
            self.stop = true;
        }
        Some(if first == b'n' {
            Node::Null
        } else {
            Node::Boolean
        })
    }

    /// Skips one value of any depth without recursion.
    fn skip_value(&mut self) {
        match self.peek() {
            Some(b'{' | b'[') => self.skip_container(),
            Some(b'"') => {
                self.string();
            }
            Some(_) => {
                while let Some(c) = self.peek() {
                    if matches!(c, b',' | b'}' | b']') || c.is_ascii_whitespace() {
                        break;
                    }
                    self.pos += 1;
                }
            }
            None => self.stop = true,
        }
    }

    /// Skips a container at `pos` by counting brackets (strings skipped whole).
    fn skip_container(&mut self) {
        self.skip_open(0);
    }

    /// Skips the rest of the container that `pos` is inside of, up to and
    /// including its closing bracket.
    fn skip_rest(&mut self) {
        self.skip_open(1);
    }

    /// Skips up to and including the bracket that closes the `open`
    /// containers already entered (and those it enters on the way).
    fn skip_open(&mut self, mut open: u64) {
        while let Some(c) = self.peek() {
            match c {
                b'"' => {
                    self.string();
                    continue;
                }
                b'{' | b'[' => open += 1,
                b'}' | b']' => {
                    open = open.saturating_sub(1);
                    if open == 0 {
                        self.pos += 1;
                        return;
                    }
                }
                _ => {}
            }
            self.pos += 1;
        }
        self.stop = true;
    }
}

/// The flat shape of `data` (a body sample), from a scanner of its own
/// (`internal::flat_shape`).
pub(crate) fn flat_shape(data: &[u8]) -> Option<FlatShape> {
    let mut scanner = SkeletonScanner::default();
    let root = scanner.scan(data)?;
    Some(scanner.flat(root))
}

/// Scans `data` (a body sample) with a fresh scanner and with one that
/// scanned the first half of it before, and checks the shapes: the same
/// from both, canonical (the JSON parses as a [`Shape`](super::Shape) and
/// writing that tree gives the same bytes), and no larger than the arenas
/// allow. Panics on a violation (the `shape` fuzz target).
pub(crate) fn fuzz_shape(data: &[u8]) {
    let mut reused = SkeletonScanner::default();
    let _ = reused.infer(&data[..data.len() / 2]);
    let fresh = SkeletonScanner::default().infer(data);
    let again = reused.infer(data);
    assert_eq!(fresh, again, "a reused scanner gives another shape");
    assert!(reused.nodes.len() <= SKELETON_MAX_NODES + 1);
    assert!(reused.runs.len() <= SKELETON_MAX_FIELD_ENTRIES);
    if let Some(json) = fresh.as_ref().and_then(BodyShape::json) {
        let tree: super::Shape = match serde_json::from_str(json) {
            Ok(tree) => tree,
            Err(e) => panic!("rendered shape does not parse: {e}: {json}"),
        };
        let mut out = Vec::new();
        super::json::shape(&mut out, &tree);
        assert_eq!(out, json.as_bytes(), "rendered shape is not canonical");
        let mut flat = SkeletonScanner {
            flat_shapes: true,
            ..SkeletonScanner::default()
        };
        let built = flat.infer(data).map(|s| s.flat().into_owned());
        assert_eq!(
            built.as_ref().map(FlatShape::to_tree).as_ref(),
            Some(&tree),
            "flat shape and JSON differ"
        );
        assert_eq!(
            built,
            Some(FlatShape::from_tree(&tree)),
            "flat shape not canonical"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::super::json::shape as write_shape;
    use super::super::{Fields, Shape, MAX_KEY_BYTES};
    use super::*;

    /// The shape of `b` as a tree, with a scanner of its own.
    fn infer(b: &[u8]) -> Option<Shape> {
        SkeletonScanner::default()
            .infer(b)
            .map(BodyShape::into_tree)
    }

    /// The rendered JSON of `b`'s shape, checked to be canonical: it parses
    /// as a [`Shape`] (fields sorted and unique, as [`Fields`] keeps them)
    /// and writing that tree gives the same bytes back.
    fn rendered(scanner: &mut SkeletonScanner, b: &[u8]) -> Option<String> {
        let root = scanner.scan(b)?;
        let mut json = String::new();
        scanner.render(root, &mut json);
        let tree: Shape = serde_json::from_str(&json)
            .unwrap_or_else(|e| panic!("{e}: {json} from {:?}", String::from_utf8_lossy(b)));
        let flat = scanner.flat(root);
        assert_eq!(
            flat.to_tree(),
            tree,
            "the flat shape is not what the JSON says, from {:?}",
            String::from_utf8_lossy(b)
        );
        assert_eq!(
            flat,
            FlatShape::from_tree(&tree),
            "the flat shape is not canonical, from {:?}",
            String::from_utf8_lossy(b)
        );
        let mut again = Vec::new();
        write_shape(&mut again, &tree);
        assert_eq!(
            String::from_utf8_lossy(&again),
            json,
            "not canonical, from {:?}",
            String::from_utf8_lossy(b)
        );
        Some(json)
    }

    fn shape_json(s: &[u8]) -> String {
        serde_json::to_string(&infer(s)).unwrap()
    }

    #[test]
    fn shapes() {
        let cases: &[(&[u8], &str)] = &[
            (b"", "null"),
            (b"  ", "null"),
            (b"nope", "null"),
            (b"1", r#"{"type":"integer"}"#),
            (b"-1.5e3", r#"{"type":"number"}"#),
            (b"true", r#"{"type":"boolean"}"#),
            (b"nu", r#"{"type":"null"}"#),
            (b"\"x\"", r#"{"type":"string"}"#),
            (b"[]", r#"{"type":"array"}"#),
            (b"[1,2.5]", r#"{"type":"array","items":{"type":"number"}}"#),
            (b"[1,\"a\"]", r#"{"type":"array","items":{"type":"any"}}"#),
            (
                b"{\"a\":1,\"b\":{\"c\":null}}",
                r#"{"type":"object","fields":{"a":{"type":"integer"},"b":{"type":"object","fields":{"c":{"type":"null"}}}}}"#,
            ),
            (
                b"{\"a\":1,\"b\":\"trunc",
                r#"{"type":"object","fields":{"a":{"type":"integer"},"b":{"type":"string"}},"truncated":true}"#,
            ),
            (
                b"{\"a\":1,\"b",
                r#"{"type":"object","fields":{"a":{"type":"integer"}},"truncated":true}"#,
            ),
            (
                b"[{\"a\":1},{\"b\":true,\"a\":2.0}]",
                r#"{"type":"array","items":{"type":"object","fields":{"a":{"type":"number"},"b":{"type":"boolean"}}}}"#,
            ),
            (
                b"{\"k\\u0065y\":1,\"q\\\"\":2}",
                r#"{"type":"object","fields":{"key":{"type":"integer"},"q\"":{"type":"integer"}}}"#,
            ),
            (
                b"{\"123\":1,\"alice@example.com\":2,\"a\":3}",
                r#"{"type":"object","fields":{"a":{"type":"integer"},"{key}":{"type":"integer"}}}"#,
            ),
            (b"\xEF\xBB\xBF{}", r#"{"type":"object","fields":{}}"#),
            (
                b"{\"a\" 1}",
                r#"{"type":"object","fields":{},"truncated":true}"#,
            ),
        ];
        for (input, want) in cases {
            assert_eq!(
                shape_json(input),
                *want,
                "{:?}",
                String::from_utf8_lossy(input)
            );
        }
    }

    #[test]
    fn fields_sort_like_strings_and_round_trip() {
        let keys = [
            "amount_10",
            "amount_1",
            "amount_",
            "amount_12",
            "b",
            "a",
            "é",
            "amount_100000",
            "z~",
        ];
        let mut doc = String::from("{");
        for k in keys {
            doc.push_str(&format!("{}:1,", serde_json::to_string(k).unwrap()));
        }
        doc.push_str("\"a\":2.5}");
        let shape = infer(doc.as_bytes()).unwrap();
        let Shape::Object { fields, .. } = &shape else {
            panic!("{shape:?}");
        };
        let mut want: Vec<&str> = keys.to_vec();
        want.sort_unstable();
        assert_eq!(fields.keys().collect::<Vec<_>>(), want);
        assert_eq!(fields.get("a"), Some(&Shape::Number));
        let json = serde_json::to_string(&shape).unwrap();
        let back: Shape = serde_json::from_str(&json).unwrap();
        assert_eq!(back, shape);
        // Collected fields: sorted, the last of duplicate keys wins.
        let f: Fields = [("b", Shape::Null), ("a", Shape::Null), ("b", Shape::Any)]
            .into_iter()
            .collect();
        assert_eq!(
            serde_json::to_string(&f).unwrap(),
            r#"{"a":{"type":"null"},"b":{"type":"any"}}"#
        );
    }

    #[test]
    fn ranked_keys_sort_like_unranked_ones() {
        // A reused scanner ranks its keys once enough bytes were scanned;
        // the shapes stay those of a fresh scanner, new keys included.
        let docs: Vec<String> = (0..200)
            .map(|i| {
                let mut d = String::from("{");
                for k in [
                    "b",
                    "a",
                    "amount_12",
                    "amount_1",
                    "\\u00e9",
                    "Z",
                    "amount_100000000001",
                ] {
                    d.push_str(&format!("\"{k}\":{i},"));
                }
                d.push_str(&format!("\"new_{}\":[{{\"z\":1,\"y{i}\":2}}]}}", i % 7));
                d
            })
            .collect();
        let mut scanner = SkeletonScanner::default();
        for d in &docs {
            let reused = scanner.infer(d.as_bytes()).map(BodyShape::into_tree);
            assert_eq!(reused, infer(d.as_bytes()), "{d}");
        }
        assert!(scanner.keys.rank(0).is_some());
    }

    #[test]
    fn wide_objects_ordered_through_rank_buckets_match_fresh_ones() {
        // Objects of 16 to 64 fields (some keys repeated) in random order:
        // once the keys are ranked, a reused scanner orders them through
        // `RankBuckets`, and the shapes stay those of a fresh scanner.
        let mut next = crate::record::xorshift(0x2545_F491_4F6C_DD1D_u64);
        let mut scanner = SkeletonScanner::default();
        for _ in 0..300 {
            let n = 16 + (next() % 49) as usize;
            let mut d = String::from("{");
            for i in 0..n {
                let k = next() % 300;
                d.push_str(&format!("\"k{k}_{}\":{i},", k % 7));
            }
            d.push_str("\"end\":true}");
            let reused = rendered(&mut scanner, d.as_bytes());
            let fresh = rendered(&mut SkeletonScanner::default(), d.as_bytes());
            assert_eq!(reused, fresh, "{d}");
        }
        assert!(scanner.keys.rank(0).is_some());
    }

    #[test]
    fn rank_buckets_order_by_rank_or_decline() {
        let stack: Vec<(u32, NodeId)> = (0..20).map(|i| (i, 100 + i)).collect();
        // Ranks in reverse order of the offsets, spread over 1 000 ranks.
        let ranked: Vec<u32> = (0..20u32).map(|i| ((1000 - 50 * i) << 8) | i).collect();
        let mut order = vec![(0, 0); 20];
        let mut buckets = RankBuckets::default();
        assert!(buckets.order(&ranked, &stack, &mut order));
        let expected: Vec<(u32, NodeId)> = stack.iter().rev().copied().collect();
        assert_eq!(order, expected);
        assert!(buckets.bits.iter().all(|&w| w == 0), "bits left set");
        // A span of more than `BUCKET_SPAN` ranks is left to the sort.
        let wide: Vec<u32> = (0..20u32)
            .map(|i| ((i * BUCKET_SPAN as u32 / 10) << 8) | i)
            .collect();
        assert!(!buckets.order(&wide, &stack, &mut order));
        // So are ranks that are not distinct.
        let twice: Vec<u32> = (0..20u32).map(|i| ((i / 2) << 8) | i).collect();
        assert!(!buckets.order(&twice, &stack, &mut order));
        assert!(buckets.bits.iter().all(|&w| w == 0), "bits left set");
    }

    #[test]
    fn repeated_keys_are_found_at_every_depth() {
        // A repeated key merges into its field, also when an object in
        // between (at the same depth or deeper) had the key too.
        let doc = br#"{"a":1,"b":{"a":"x","c":{"a":true},"a":"y"},"d":[{"a":1},{"a":2.5,"a":3}],"a":2.5}"#;
        let expected = concat!(
            r#"{"type":"object","fields":{"a":{"type":"number"},"#,
            r#""b":{"type":"object","fields":{"a":{"type":"string"},"#,
            r#""c":{"type":"object","fields":{"a":{"type":"boolean"}}}}},"#,
            r#""d":{"type":"array","items":{"type":"object","fields":{"a":{"type":"number"}}}}}}"#,
        );
        let mut scanner = SkeletonScanner::default();
        assert_eq!(rendered(&mut scanner, doc).as_deref(), Some(expected));
        // Again with the serials about to run out: every entry is
        // forgotten before a scan that could reach the end, and the
        // repeats are still found.
        scanner.seen.serial = SEEN_SERIALS - SEEN_SERIALS_PER_SCAN - 3;
        for _ in 0..3 {
            assert_eq!(rendered(&mut scanner, doc).as_deref(), Some(expected));
        }
        assert!(scanner.seen.serial < 20, "{}", scanner.seen.serial);
        // New keys make the tables grow while an object is open; the
        // entries before are kept.
        let first: String = (0..40).map(|i| format!("\"p{i}\":0,")).collect();
        rendered(&mut scanner, format!("{{{first}\"end\":0}}").as_bytes());
        let middle: String = (0..62).map(|i| format!("\"k{i}\":0,")).collect();
        let doc = format!("{{\"a\":1,{middle}\"a\":2.5}}");
        let reused = rendered(&mut scanner, doc.as_bytes()).unwrap();
        assert!(reused.contains(r#""a":{"type":"number"}"#), "{reused}");
        assert_eq!(
            Some(reused),
            rendered(&mut SkeletonScanner::default(), doc.as_bytes())
        );
    }

    #[test]
    fn strings_end_at_the_first_quote_or_escape() {
        // Quotes and escapes at every offset of the word-wise search.
        for len in 0..80 {
            let text = "k".repeat(len);
            let doc = format!("{{\"{text}\":1,\"{text}\\u0041\":\"v{text}\\\"\"}}");
            let shape = infer(doc.as_bytes()).unwrap();
            let Shape::Object { fields, truncated } = &shape else {
                panic!("{shape:?}");
            };
            assert!(!truncated, "{doc}");
            // Keys are capped at MAX_KEY_BYTES (all ASCII here).
            let cap = |k: String| k[..k.len().min(MAX_KEY_BYTES)].to_owned();
            let mut want = vec![cap(text.clone()), cap(format!("{text}A"))];
            want.sort();
            want.dedup();
            assert_eq!(fields.keys().collect::<Vec<_>>(), want, "{doc}");
        }
        assert_eq!(quote_or_backslash(u64::from_le_bytes(*b"abcdefgh")), 0);
        let found = quote_or_backslash(u64::from_le_bytes(*b"ab\\\"efgh"));
        assert_eq!(found.trailing_zeros() / 8, 2);
    }

    #[test]
    fn a_brace_among_skipped_array_items_ends_the_scan() {
        // Found by the `shape` fuzz target: past MAX_ARRAY_ITEMS, `}`
        // was neither skipped nor an error, and the scan never ended.
        let doc = format!("[{}}}1]", "\"\",".repeat(MAX_ARRAY_ITEMS + 8));
        assert_eq!(
            rendered(&mut SkeletonScanner::default(), doc.as_bytes()).as_deref(),
            Some(r#"{"type":"array","items":{"type":"string"}}"#)
        );
        let doc = format!("{{\"a\":[{}}}, \"b\": 1}}", "1,".repeat(MAX_ARRAY_ITEMS));
        assert_eq!(
            rendered(&mut SkeletonScanner::default(), doc.as_bytes()).as_deref(),
            Some(
                r#"{"type":"object","fields":{"a":{"type":"array","items":{"type":"integer"}}},"truncated":true}"#
            )
        );
    }

    #[test]
    fn hostile_nesting_is_bounded() {
        let deep = vec![b'['; 100_000];
        let s = infer(&deep).unwrap();
        let json = serde_json::to_string(&s).unwrap();
        assert!(json.matches("array").count() <= MAX_DEPTH);
        let mut deep_obj = Vec::new();
        for _ in 0..50_000 {
            deep_obj.extend_from_slice(b"{\"a\":");
        }
        let s = infer(&deep_obj).unwrap();
        assert!(serde_json::to_string(&s).unwrap().contains("truncated"));
        // Closed deep nesting followed by more fields: the scanner resumes.
        let mut v = b"{\"deep\":".to_vec();
        v.extend(std::iter::repeat_n(b'[', 1000));
        v.extend(std::iter::repeat_n(b']', 1000));
        v.extend_from_slice(b",\"after\":1}");
        let json = serde_json::to_string(&infer(&v).unwrap()).unwrap();
        assert!(json.contains("\"after\":{\"type\":\"integer\"}"), "{json}");
        assert!(json.contains("\"truncated\":true"), "{json}");
    }

    #[test]
    fn caps_width_and_keys() {
        let mut v = b"{".to_vec();
        for i in 0..200 {
            v.extend_from_slice(format!("\"field_{i}_x\":{i},").as_bytes());
        }
        v.extend_from_slice(b"\"z\":1}");
        match infer(&v).unwrap() {
            Shape::Object { fields, truncated } => {
                assert_eq!(fields.len(), MAX_FIELDS);
                assert!(truncated);
            }
            other => panic!("{other:?}"),
        }
        let huge = format!("{{\"{}\":1}}", "k_".repeat(50_000));
        match infer(huge.as_bytes()).unwrap() {
            Shape::Object { fields, .. } => {
                assert!(fields.keys().all(|k| k.len() <= MAX_KEY_BYTES));
            }
            other => panic!("{other:?}"),
        }
        let arr = format!("[{}1]", "\"s\",".repeat(1000));
        assert_eq!(
            shape_json(arr.as_bytes()),
            r#"{"type":"array","items":{"type":"string"}}"#
        );
    }

    #[test]
    fn invalid_utf8_and_garbage_never_panic() {
        let inputs: &[&[u8]] = &[
            b"{\"\xff\xfe\":1}",
            b"{\"a\":\"\xff",
            b"[\"\\",
            b"{\"a\":\\u",
            b"{\"\\ud800\":1}",
            b"[tru, fals, nul]",
            b"{,,,:}",
            b"]]]]}}}}",
            b"[-,.,e]",
        ];
        for i in inputs {
            let _ = infer(i);
        }
        // Every prefix of a realistic document.
        let doc = br#"{"user":{"id":1,"email":"a@b.co","tags":["x",{"k":[1,2]}]},"ok":true}"#;
        for n in 0..=doc.len() {
            let _ = infer(&doc[..n]);
        }
        assert_eq!(
            shape_json(b"{\"\xff\":1}"),
            r#"{"type":"object","fields":{"\ufffd":{"type":"integer"}}}"#
                .replace("\\ufffd", "\u{fffd}")
        );
    }

    const DOCS: &[&str] = &[
        r#"{"id": 1, "name": "x", "tags": ["a", "b"], "owner": {"email": "a@b.io", "n": null}}"#,
        r#"[{"a": 1, "b": 2.5}, {"a": 2.0, "c": "2024-01-02"}, {"a": "s"}, 3, [1]]"#,
        r#"{"a": 1, "a": "x", "a": {"b": 1}, "b": [], "b": [1, 2.0], "b": [{"x": 1}, {"y": 2}]}"#,
        r#"{"k\u0041": 1, "k\"q": true, "\n": false, "12345": 1, "alice@example.com": 2}"#,
        r#"[[[[[[[[[[1]]]]]]]]], {"a": {"b": {"c": {"d": {"e": {"f": {"g": {"h": {}}}}}}}}}]"#,
        r#"{"u": "123e4567-e89b-12d3-a456-426614174000", "t": "2024-01-02T03:04:05Z", "i": "10.0.0.1"}"#,
        r#"[{"u": "123e4567-e89b-12d3-a456-426614174000"}, {"u": "x"}, {"u": null}]"#,
        "\u{feff}{\"a\": tru}",
        r#"  {"a": [1, "x", null, true], "b": [[1], [2.5]], "c": [{}, {"z": 1}]}"#,
        r#"[{"a": {"x": 1, "q": [{"m": 1}]}, "b": 1}, {"a": {"y": 1, "q": [{"k": 2}]}, "c": 1}]"#,
        r#"{"o": {"z": {"b": 1}, "y": 2}, "o": {"z": {"a": 1}, "x": 3}, "p": 1}"#,
    ];

    /// The shapes of [`DOCS`], as the tree scanner (the reference this
    /// scanner replaced) wrote them.
    const DOC_SHAPES: &[&str] = &[
        r#"{"type":"object","fields":{"id":{"type":"integer"},"name":{"type":"string"},"owner":{"type":"object","fields":{"email":{"type":"string","format":"email"},"n":{"type":"null"}}},"tags":{"type":"array","items":{"type":"string"}}}}"#,
        r#"{"type":"array","items":{"type":"any"}}"#,
        r#"{"type":"object","fields":{"a":{"type":"any"},"b":{"type":"array","items":{"type":"any"}}}}"#,
        r#"{"type":"object","fields":{"k\"q":{"type":"boolean"},"kA":{"type":"integer"},"{key}":{"type":"integer"},"�":{"type":"boolean"}}}"#,
        r#"{"type":"array","items":{"type":"any"}}"#,
        r#"{"type":"object","fields":{"i":{"type":"string","format":"ipv4"},"t":{"type":"string","format":"date-time"},"u":{"type":"string","format":"uuid"}}}"#,
        r#"{"type":"array","items":{"type":"object","fields":{"u":{"type":"any"}}}}"#,
        r#"{"type":"object","fields":{},"truncated":true}"#,
        r#"{"type":"object","fields":{"a":{"type":"array","items":{"type":"any"}},"b":{"type":"array","items":{"type":"array","items":{"type":"number"}}},"c":{"type":"array","items":{"type":"object","fields":{"z":{"type":"integer"}}}}}}"#,
        r#"{"type":"array","items":{"type":"object","fields":{"a":{"type":"object","fields":{"q":{"type":"array","items":{"type":"object","fields":{"k":{"type":"integer"},"m":{"type":"integer"}}}},"x":{"type":"integer"},"y":{"type":"integer"}}},"b":{"type":"integer"},"c":{"type":"integer"}}}}"#,
        r#"{"type":"object","fields":{"o":{"type":"object","fields":{"x":{"type":"integer"},"y":{"type":"integer"},"z":{"type":"object","fields":{"a":{"type":"integer"},"b":{"type":"integer"}}}}},"p":{"type":"integer"}}}"#,
    ];

    #[test]
    fn merges_unions_and_formats() {
        let mut scanner = SkeletonScanner::default();
        for (doc, want) in DOCS.iter().zip(DOC_SHAPES) {
            assert_eq!(
                rendered(&mut scanner, doc.as_bytes()).as_deref(),
                Some(*want),
                "{doc}"
            );
        }
        // Every prefix, as samples cut a body anywhere: canonical, and the
        // same with a fresh scanner as with a reused one.
        for doc in DOCS {
            let b = doc.as_bytes();
            for n in 0..=b.len() {
                let fresh = rendered(&mut SkeletonScanner::default(), &b[..n]);
                assert_eq!(rendered(&mut scanner, &b[..n]), fresh);
            }
        }
    }

    #[test]
    fn wide_objects_and_arrays_hit_the_caps() {
        let wide: String = (0..100).map(|i| format!("\"k{i:03}\": {i},")).collect();
        let doc = format!("{{{wide} \"end\": 1}}");
        let Some(Shape::Object { fields, truncated }) = infer(doc.as_bytes()) else {
            panic!("not an object");
        };
        assert!(truncated);
        let want: Vec<String> = (0..MAX_FIELDS).map(|i| format!("k{i:03}")).collect();
        assert_eq!(fields.keys().collect::<Vec<_>>(), want);
        // Array elements past MAX_ARRAY_ITEMS are skipped: f32.. never show.
        let items: String = (0..80)
            .map(|i| format!("{{\"f{:02}\": {i}}},", i % 70))
            .collect();
        let doc = format!("[{items} 1]");
        let json = rendered(&mut SkeletonScanner::default(), doc.as_bytes()).unwrap();
        assert!(
            json.contains("\"f31\"") && !json.contains("\"f32\""),
            "{json}"
        );
        // An object of MAX_FIELDS fields merged with one of other fields:
        // the union has no room for them and is truncated.
        let doc = format!("[{{{wide} \"end\": 1}}, {{\"a\": 1, \"zz\": 2}}]");
        let Some(Shape::Array { items: Some(obj) }) = infer(doc.as_bytes()) else {
            panic!("not an array");
        };
        let Shape::Object { fields, truncated } = *obj else {
            panic!("not an object");
        };
        assert_eq!(fields.len(), MAX_FIELDS);
        assert!(truncated);
        assert_eq!(fields.get("a"), None);
    }

    #[test]
    fn a_full_object_is_skipped_unread() {
        let wide: String = (0..MAX_FIELDS)
            .map(|i| format!("\"k{i:03}\":{i},"))
            .collect();
        // A repeated key after the cap does not merge into its field
        // (k000 stays an integer), whatever follows it.
        let doc = format!("{{{wide} \"k000\": \"text\", \"more\": [1, {{]}}");
        let Some(Shape::Object { fields, truncated }) = infer(doc.as_bytes()) else {
            panic!("not an object");
        };
        assert!(truncated);
        assert_eq!(fields.len(), MAX_FIELDS);
        assert_eq!(fields.get("k000"), Some(&Shape::Integer));
        // A full nested object is skipped to its closing brace (strings
        // holding brackets included) and the parent goes on.
        let doc = format!(
            "{{\"inner\": {{{wide} \"x\": {{\"y\": \"}}]\"}}, \"k000\": [1]}}, \"after\": true}}"
        );
        let Some(Shape::Object { fields, truncated }) = infer(doc.as_bytes()) else {
            panic!("not an object");
        };
        assert!(!truncated);
        assert_eq!(fields.get("after"), Some(&Shape::Boolean));
        let Some(Shape::Object {
            fields: inner,
            truncated,
        }) = fields.get("inner")
        else {
            panic!("inner is not an object");
        };
        assert!(*truncated);
        assert_eq!(inner.len(), MAX_FIELDS);
        assert_eq!(inner.get("k000"), Some(&Shape::Integer));
        // A top-level array ends the scan at its cap: what follows the
        // cap, even a syntax error, changes nothing.
        let items: String = (0..MAX_ARRAY_ITEMS).map(|i| format!("{i},")).collect();
        let capped = infer(format!("[{items} \"s\"]").as_bytes());
        assert_eq!(capped, infer(format!("[{items} }}").as_bytes()));
        assert_eq!(
            capped,
            Some(Shape::Array {
                items: Some(Box::new(Shape::Integer))
            })
        );
    }

    #[test]
    fn full_arenas_are_counted_and_bounded() {
        // Each repeated `"a":{}` merges an object of MAX_FIELDS fields with
        // an empty one: a new run of MAX_FIELDS entries for seven bytes.
        let wide: String = (0..MAX_FIELDS).map(|i| format!("\"k{i}\":1,")).collect();
        let mut doc = format!("{{\"a\":{{{}}}", wide.trim_end_matches(','));
        while doc.len() < 64 * 1024 {
            doc.push_str(",\"a\":{}");
        }
        doc.push_str(",\"b\":[1],\"c\":{\"d\":2}}");
        let mut scanner = SkeletonScanner::default();
        let json = rendered(&mut scanner, doc.as_bytes()).unwrap();
        assert_eq!(scanner.arena_full, 1);
        assert!(scanner.runs.len() <= SKELETON_MAX_FIELD_ENTRIES);
        // The open object keeps its fields; the values after the arena
        // filled up are `any` (and `a` merged with one of them).
        assert_eq!(
            json,
            r#"{"type":"object","fields":{"a":{"type":"any"},"b":{"type":"any"},"c":{"type":"any"}},"truncated":true}"#
        );
        // Many small values: the node arena fills first.
        let mut doc = String::from("{\"a\":[");
        while doc.len() < 600 * 1024 {
            doc.push_str("{\"x\":[[1]]},");
        }
        doc.push_str("1]}");
        let json = rendered(&mut scanner, doc.as_bytes()).unwrap();
        assert_eq!(
            scanner.arena_full, 1,
            "only MAX_ARRAY_ITEMS elements are read"
        );
        assert!(json.contains("\"x\""), "{json}");
        let mut doc = String::from("{");
        while doc.len() < 1024 * 1024 {
            doc.push_str("\"a\":{\"b\":[[1]]},");
        }
        doc.push_str("\"z\":1}");
        let json = rendered(&mut scanner, doc.as_bytes()).unwrap();
        assert_eq!(scanner.arena_full, 2);
        assert!(scanner.nodes.len() <= SKELETON_MAX_NODES + 1);
        assert_eq!(
            json,
            r#"{"type":"object","fields":{"a":{"type":"any"},"z":{"type":"any"}},"truncated":true}"#
        );
        // Filled at the deepest level: every open container still closes.
        let mut doc = "{\"a\":".repeat(MAX_DEPTH - 1);
        doc.push('{');
        for _ in 0..SKELETON_MAX_NODES {
            doc.push_str("\"x\":{},");
        }
        doc.push_str("\"y\":1}");
        doc.push_str(&"}".repeat(MAX_DEPTH - 1));
        let json = rendered(&mut scanner, doc.as_bytes()).unwrap();
        assert_eq!(scanner.arena_full, 3);
        let mut want = r#"{"type":"object","fields":{"a":"#.repeat(MAX_DEPTH - 1);
        want.push_str(r#"{"type":"object","fields":{"x":{"type":"any"},"y":{"type":"any"}},"truncated":true}"#);
        // As for depth cuts, only the nearest enclosing object is truncated.
        want.push_str(&"}}".repeat(MAX_DEPTH - 1));
        assert_eq!(json, want);
        // The next body starts with empty arenas.
        let json = rendered(&mut scanner, b"{\"z\":1}").unwrap();
        assert_eq!(
            json,
            r#"{"type":"object","fields":{"z":{"type":"integer"}}}"#
        );
        assert_eq!(scanner.arena_full, 3);
    }

    #[test]
    fn the_render_buffer_kept_is_bounded() {
        // 64 objects of 64 fields with long keys: a shape of ~300 KB.
        let key = |i: usize| format!("{i:0>60}_key");
        let inner: Vec<String> = (0..MAX_FIELDS)
            .map(|j| format!("\"{}\":1", key(j)))
            .collect();
        let inner = format!("{{{}}}", inner.join(","));
        let outer: Vec<String> = (0..MAX_FIELDS)
            .map(|i| format!("\"{}\":{inner}", key(i)))
            .collect();
        let doc = format!("{{{}}}", outer.join(","));
        let mut scanner = SkeletonScanner::default();
        let big = scanner.infer(doc.as_bytes()).unwrap();
        let json = big.json().unwrap();
        assert!(json.len() > RENDER_BUFFER_KEEP_BYTES, "{}", json.len());
        assert!(scanner.out.capacity() <= RENDER_BUFFER_KEEP_BYTES);
        assert_eq!(
            rendered(&mut scanner, doc.as_bytes()).as_deref(),
            Some(json)
        );
        // A small body after it renders into a kept buffer.
        let small = scanner.infer(b"[1]").unwrap();
        assert_eq!(
            small.json(),
            Some(r#"{"type":"array","items":{"type":"integer"}}"#)
        );
        assert!(scanner.out.capacity() > 0);
    }

    #[test]
    fn random_bytes_render_canonical_shapes() {
        let mut scanner = SkeletonScanner::default();
        let alphabet = br#"{}[]:,"\ abe01.-tfnul"#;
        let mut x: u64 = 0x2545_f491_4f6c_dd1d;
        for _ in 0..20_000 {
            let mut b = Vec::new();
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let len = (x % 64) as usize;
            for _ in 0..len {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                b.push(alphabet[(x % alphabet.len() as u64) as usize]);
            }
            let fresh = rendered(&mut SkeletonScanner::default(), &b);
            assert_eq!(rendered(&mut scanner, &b), fresh);
        }
    }
}
