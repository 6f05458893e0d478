//! Work in progress: the *skeleton* shape scanner.
//!
//! It scans like [`super::shape::ShapeScanner`] (same caps, same merge
//! rules) but builds no [`Shape`](super::Shape) tree: the shape lives in
//! arenas kept by the scanner from body to body (nodes, and the sorted
//! field runs of objects), and [`SkeletonScanner::render`] writes the JSON
//! that `write_json` writes for the equivalent tree. It reaches the
//! record builder's records as a [`BodyShape`] holding that JSON (see
//! docs/sensor-core.md, "perf-skeleton").
//!
//! The arenas are bounded by [`SKELETON_MAX_NODES`] and
//! [`SKELETON_MAX_FIELD_ENTRIES`]; a value that would pass either is
//! described as `any` and its object marked `truncated` (counted in
//! [`SkeletonScanner::arena_full`]).

use std::cmp::Ordering;

use super::keys::KeyTable;
use super::shape::{
    format_of, index_slot, key_cmp, quote_or_backslash, INDEX_SLOTS, MAX_ARRAY_ITEMS, MAX_DEPTH,
    MAX_FIELDS, NUMBER_CHARS, SHORT_STRING,
};
use super::{BodyShape, StringFormat};

/// Most nodes one scan may hold (a scan adds at most one per value seen
/// plus one per merge, so a 4 KiB sample stays far below).
pub const SKELETON_MAX_NODES: usize = 64 * 1024;
/// Most object field entries one scan may hold (runs replaced by merges
/// stay until the end of the scan).
pub const SKELETON_MAX_FIELD_ENTRIES: usize = 256 * 1024;

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
    /// Scans that hit an arena cap.
    pub(crate) arena_full: u64,
}

impl SkeletonScanner {
    /// Scans `b`; the root node of its shape, or `None` if it does not
    /// start with a JSON value. The node is valid until the next scan.
    pub(crate) fn scan(&mut self, b: &[u8]) -> Option<SkeletonRoot> {
        self.keys.trim();
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
            keys: &mut self.keys,
            nodes: &mut self.nodes,
            runs: &mut self.runs,
            stack: &mut self.stack,
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
    pub(crate) fn infer(&mut self, b: &[u8]) -> Option<BodyShape> {
        let root = self.scan(b)?;
        let mut out = Vec::new();
        self.render(root, &mut out);
        // Keys are exported as text and the rest is ASCII: always UTF-8.
        let json = String::from_utf8(out)
            .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned());
        Some(BodyShape::from_json(json.into_boxed_str()))
    }

    /// Appends the JSON of the shape rooted at `root` (from the last scan),
    /// as `write_json` writes the equivalent [`super::Shape`].
    pub(crate) fn render(&self, root: SkeletonRoot, out: &mut Vec<u8>) {
        self.render_node(root.0, out);
    }

    /// Recursion is bounded by the shape's depth (at most [`MAX_DEPTH`] + 1).
    fn render_node(&self, id: NodeId, out: &mut Vec<u8>) {
        match self.nodes[id as usize] {
            Node::Null => out.extend_from_slice(b"{\"type\":\"null\"}"),
            Node::Boolean => out.extend_from_slice(b"{\"type\":\"boolean\"}"),
            Node::Integer => out.extend_from_slice(b"{\"type\":\"integer\"}"),
            Node::Number => out.extend_from_slice(b"{\"type\":\"number\"}"),
            Node::Any => out.extend_from_slice(b"{\"type\":\"any\"}"),
            Node::String(None) => out.extend_from_slice(b"{\"type\":\"string\"}"),
            Node::String(Some(f)) => {
                out.extend_from_slice(b"{\"type\":\"string\",\"format\":\"");
                out.extend_from_slice(f.as_str().as_bytes());
                out.extend_from_slice(b"\"}");
            }
            Node::Array(None) => out.extend_from_slice(b"{\"type\":\"array\"}"),
            Node::Array(Some(items)) => {
                out.extend_from_slice(b"{\"type\":\"array\",\"items\":");
                self.render_node(items, out);
                out.push(b'}');
            }
            Node::Object {
                start,
                len,
                truncated,
            } => {
                out.extend_from_slice(b"{\"type\":\"object\",\"fields\":{");
                let run = &self.runs[start as usize..(start + len) as usize];
                for (i, &(key, node)) in run.iter().enumerate() {
                    if i > 0 {
                        out.push(b',');
                    }
                    out.extend_from_slice(self.keys.member(key));
                    self.render_node(node, out);
                }
                out.push(b'}');
                if truncated {
                    out.extend_from_slice(b",\"truncated\":true");
                }
                out.push(b'}');
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
    stop: bool,
    cut: bool,
    /// An arena cap was hit during this scan.
    full: bool,
    keys: &'s mut KeyTable,
    nodes: &'s mut Vec<Node>,
    runs: &'s mut Vec<(u32, NodeId)>,
    stack: &'s mut Vec<(u32, NodeId)>,
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

    /// A new node; `None` (and `full` set) when the arena is full.
    #[inline]
    fn node(&mut self, n: Node) -> Option<NodeId> {
        if self.nodes.len() >= SKELETON_MAX_NODES {
            self.full = true;
            return None;
        }
        self.nodes.push(n);
        Some(u32::try_from(self.nodes.len() - 1).unwrap_or(u32::MAX))
    }

    /// The node for a value that found the arena full: one `Any` node
    /// past the cap, shared by every such value (`any` absorbs every
    /// merge, so sharing it is safe); the enclosing object is truncated.
    fn overflow(&mut self) -> NodeId {
        self.full = true;
        self.cut = true;
        if self.nodes.len() == SKELETON_MAX_NODES {
            self.nodes.push(Node::Any);
        }
        u32::try_from(SKELETON_MAX_NODES).unwrap_or(u32::MAX)
    }

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
            b'{' | b'[' if depth > MAX_DEPTH => {
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
        let mut index = [0u8; INDEX_SLOTS];
        let mut truncated = false;
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
                    let mut slot = index_slot(id);
                    let mut known = None;
                    while index[slot] != 0 {
                        let i = base + usize::from(index[slot]) - 1;
                        if self.stack[i].0 == id {
                            known = Some(i);
                            break;
                        }
                        slot = (slot + 1) % INDEX_SLOTS;
                    }
                    let len = self.stack.len() - base;
                    if let Some(i) = known {
                        let prev = self.stack[i].1;
                        if !self.merge_value(depth + 1, prev) {
                            truncated = true;
                        }
                    } else if len >= MAX_FIELDS {
                        truncated = true;
                        self.skip_ws();
                        self.skip_value();
                    } else {
                        match self.value(depth + 1) {
                            Some(node) => {
                                index[slot] = u8::try_from(len + 1).unwrap_or(u8::MAX);
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
        let n = Node::Object {
            start,
            len,
            truncated,
        };
        self.node(n).unwrap_or_else(|| self.overflow())
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
            ranked.sort_unstable();
            for (o, &r) in order.iter_mut().zip(ranked.iter()) {
                *o = stack[(r & 0xff) as usize];
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
        self.push_run(order)
    }

    /// Appends `fields` as a run: (start, len), or `None` if the arena is
    /// full.
    fn push_run(&mut self, fields: &[(u32, NodeId)]) -> Option<(u32, u32)> {
        if self.runs.len() + fields.len() > SKELETON_MAX_FIELD_ENTRIES {
            self.full = true;
            return None;
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
                Some(_) if seen >= MAX_ARRAY_ITEMS => self.skip_value(),
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
        self.node(Node::Array(items))
            .unwrap_or_else(|| self.overflow())
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
        match self.push_run(&out[..n]) {
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

    #[inline(always)]
    fn string(&mut self) -> (&'a [u8], bool, bool) {
        let start = self.pos + 1;
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

    fn skip_container(&mut self) {
        let mut open: u64 = 0;
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

#[cfg(test)]
mod tests {
    use super::super::json::shape as write_shape;
    use super::super::shape::ShapeScanner;
    use super::*;

    /// The skeleton renders what `write_json` writes for the tree scanner's
    /// shape of the same bytes.
    fn same(tree: &mut ShapeScanner, skel: &mut SkeletonScanner, b: &[u8]) {
        let want = tree.infer(b).map(|s| {
            let mut out = Vec::new();
            write_shape(&mut out, &s);
            out
        });
        let got = skel.scan(b).map(|r| {
            let mut out = Vec::new();
            skel.render(r, &mut out);
            out
        });
        assert_eq!(
            got.as_deref().map(String::from_utf8_lossy),
            want.as_deref().map(String::from_utf8_lossy),
            "input {:?}",
            String::from_utf8_lossy(b)
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

    #[test]
    fn renders_what_the_tree_writes() {
        let (mut tree, mut skel) = (ShapeScanner::default(), SkeletonScanner::default());
        for doc in DOCS {
            let b = doc.as_bytes();
            // Every prefix, as samples cut a body anywhere.
            for n in 0..=b.len() {
                same(&mut tree, &mut skel, &b[..n]);
            }
        }
    }

    #[test]
    fn wide_objects_and_arrays_hit_the_same_caps() {
        let (mut tree, mut skel) = (ShapeScanner::default(), SkeletonScanner::default());
        let wide: String = (0..100).map(|i| format!("\"k{i:03}\": {i},")).collect();
        let doc = format!("{{{wide} \"end\": 1}}");
        same(&mut tree, &mut skel, doc.as_bytes());
        let items: String = (0..80)
            .map(|i| format!("{{\"f{}\": {i}}},", i % 70))
            .collect();
        let doc = format!("[{items} 1]");
        same(&mut tree, &mut skel, doc.as_bytes());
    }

    #[test]
    fn random_bytes_render_the_same() {
        let (mut tree, mut skel) = (ShapeScanner::default(), SkeletonScanner::default());
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
            same(&mut tree, &mut skel, &b);
        }
    }
}
