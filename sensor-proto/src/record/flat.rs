//! Flat body shapes: a shape as a pre-order list of nodes, for a reader in
//! the same process (the analyzer) that walks every shape once and drops it.
//!
//! A [`Shape`] tree costs two allocations per object and one per array item
//! shape, and its reader chases a pointer per node. A [`FlatShape`] costs
//! two allocations per body (its nodes and its keys) and is read front to
//! back. The shape scanner writes it straight from its arenas
//! ([`super::skeleton`], `SkeletonScanner::flat`); [`FlatShape::from_tree`]
//! and [`FlatShape::to_tree`] convert from and to the tree, so every form of
//! a record's shape can be read flat ([`super::BodyShape::flat`]).
//!
//! ```text
//! {"a":1,"b":[{"c":"x"}]}       depth  key   kind
//!                                0      -     object (2 fields)
//!                                1      a     integer
//!                                1      b     array (items)
//!                                2      -     object (1 field)
//!                                3      c     string
//! ```
//!
//! Nodes come in pre-order: a node, then its children (an object's fields in
//! key order, an array's item shape), each with its depth (the root is 0)
//! and, for an object's field, its key. A node's parent is the nearest node
//! before it that is one level up, so a reader keeps one parent per depth.
//! Keys are the exported keys (cleaned, capped, redacted), never values.
//!
//! Bounds: the scanner writes one node per node reachable in its arenas
//! ([`super::SKELETON_MAX_NODES`], [`super::SKELETON_MAX_FIELD_ENTRIES`]),
//! its depth is at most [`super::MAX_DEPTH`], and each key at most
//! [`super::MAX_KEY_BYTES`] bytes (or [`super::REDACTED_NAME`]). A tree
//! converted with [`FlatShape::from_tree`] gives one node per tree node.

use super::{Fields, Shape, StringFormat};

/// What a node of a [`FlatShape`] is, without its children.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FlatKind {
    Null,
    Boolean,
    Integer,
    Number,
    String(Option<StringFormat>),
    /// `items`: the array's item shape follows (an element was seen).
    Array {
        items: bool,
    },
    /// `fields` follow, in key order (the count saturates at `u8::MAX`;
    /// the scanner keeps at most [`super::MAX_FIELDS`]).
    Object {
        fields: u8,
        truncated: bool,
    },
    Any,
}

/// One stored node: 12 bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct FlatNode {
    /// End of this node's key in [`FlatShape::keys`]; its key starts where
    /// the previous node's ends (a node without a key ends it there too).
    key_end: u32,
    /// Nesting depth (the root is 0), saturating at `u16::MAX`.
    depth: u16,
    /// An object's field (it has a key, maybe empty), not the root or an
    /// array's items.
    keyed: bool,
    kind: FlatKind,
}

/// A body's shape as a pre-order list of nodes (see the module docs).
/// Equal flat shapes are equal trees: the scanner's fields are sorted and
/// unique, and the order of the nodes follows from the tree.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FlatShape {
    nodes: Box<[FlatNode]>,
    /// The keys of the object fields, concatenated in pre-order.
    keys: Box<str>,
}

/// One node of a [`FlatShape`], as [`FlatShape::iter`] gives it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FlatEntry<'a> {
    /// Nesting depth: 0 for the root, its parent's plus one otherwise.
    pub depth: usize,
    /// The key of an object's field; `None` for the root and for an
    /// array's item shape.
    pub key: Option<&'a str>,
    pub kind: FlatKind,
}

/// Appends nodes to the buffers a [`FlatShape`] is made from.
#[derive(Default)]
pub(crate) struct FlatBuilder {
    nodes: Vec<FlatNode>,
    keys: String,
}

/// Largest [`FlatBuilder`] buffers kept from one body to the next (bytes of
/// nodes plus keys): real shapes stay far below, a hostile one is bounded by
/// the scanner's arenas.
pub(crate) const FLAT_BUFFER_KEEP_BYTES: usize = 64 * 1024;

impl FlatBuilder {
    /// Empties the buffers, giving their memory back if they grew past
    /// [`FLAT_BUFFER_KEEP_BYTES`].
    pub(crate) fn clear(&mut self) {
        let held = self.nodes.capacity() * std::mem::size_of::<FlatNode>() + self.keys.capacity();
        if held > FLAT_BUFFER_KEEP_BYTES {
            *self = FlatBuilder::default();
        }
        self.nodes.clear();
        self.keys.clear();
    }

    /// Appends a node at `depth`, with `key` if it is an object's field.
    #[inline]
    pub(crate) fn push(&mut self, depth: usize, key: Option<&str>, kind: FlatKind) {
        if let Some(key) = key {
            self.keys.push_str(key);
        }
        self.nodes.push(FlatNode {
            key_end: u32::try_from(self.keys.len()).unwrap_or(u32::MAX),
            depth: u16::try_from(depth).unwrap_or(u16::MAX),
            keyed: key.is_some(),
            kind,
        });
    }

    /// The shape of the nodes appended since [`Self::clear`], copied out
    /// (one allocation for the nodes, one for the keys if there are any).
    pub(crate) fn finish(&self) -> FlatShape {
        FlatShape {
            nodes: self.nodes.as_slice().into(),
            keys: self.keys.as_str().into(),
        }
    }
}

impl FlatShape {
    /// The flat form of `tree`.
    pub fn from_tree(tree: &Shape) -> FlatShape {
        let mut b = FlatBuilder::default();
        push_tree(&mut b, tree, 0, None);
        b.finish()
    }

    /// The tree this flat shape describes.
    pub fn to_tree(&self) -> Shape {
        let mut it = self.iter().peekable();
        match it.next() {
            Some(root) => build_tree(&mut it, root),
            // Never: a flat shape has at least its root.
            None => Shape::Any,
        }
    }

    /// Number of nodes.
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// True if there are no nodes (never, for a shape made by this crate).
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// The root's kind.
    pub fn root(&self) -> Option<FlatKind> {
        self.nodes.first().map(|n| n.kind)
    }

    /// The nodes in pre-order.
    pub fn iter(&self) -> FlatIter<'_> {
        FlatIter {
            nodes: self.nodes.iter(),
            keys: &self.keys,
            key_start: 0,
        }
    }
}

/// Iterator over a [`FlatShape`]'s nodes, in pre-order.
#[derive(Clone, Debug)]
pub struct FlatIter<'a> {
    nodes: std::slice::Iter<'a, FlatNode>,
    keys: &'a str,
    key_start: usize,
}

impl<'a> Iterator for FlatIter<'a> {
    type Item = FlatEntry<'a>;

    #[inline]
    fn next(&mut self) -> Option<FlatEntry<'a>> {
        let n = self.nodes.next()?;
        let end = n.key_end as usize;
        let key = if n.keyed {
            // Always in range and on char boundaries (the builder wrote
            // whole keys); `get` keeps a broken invariant from panicking.
            Some(self.keys.get(self.key_start..end).unwrap_or_default())
        } else {
            None
        };
        self.key_start = end;
        Some(FlatEntry {
            depth: usize::from(n.depth),
            key,
            kind: n.kind,
        })
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.nodes.size_hint()
    }
}

impl ExactSizeIterator for FlatIter<'_> {}

/// Appends `shape` and everything below it. Recursion is bounded by the
/// tree's depth.
fn push_tree(b: &mut FlatBuilder, shape: &Shape, depth: usize, key: Option<&str>) {
    match shape {
        Shape::Null => b.push(depth, key, FlatKind::Null),
        Shape::Boolean => b.push(depth, key, FlatKind::Boolean),
        Shape::Integer => b.push(depth, key, FlatKind::Integer),
        Shape::Number => b.push(depth, key, FlatKind::Number),
        Shape::Any => b.push(depth, key, FlatKind::Any),
        Shape::String { format } => b.push(depth, key, FlatKind::String(*format)),
        Shape::Array { items } => {
            let kind = FlatKind::Array {
                items: items.is_some(),
            };
            b.push(depth, key, kind);
            if let Some(item) = items {
                push_tree(b, item, depth + 1, None);
            }
        }
        Shape::Object { fields, truncated } => {
            let kind = FlatKind::Object {
                fields: u8::try_from(fields.len()).unwrap_or(u8::MAX),
                truncated: *truncated,
            };
            b.push(depth, key, kind);
            for (k, v) in fields.iter() {
                push_tree(b, v, depth + 1, Some(k));
            }
        }
    }
}

/// The tree of `node` and the nodes below it, taken from `it`. Recursion is
/// bounded by the shape's depth.
fn build_tree(it: &mut std::iter::Peekable<FlatIter<'_>>, node: FlatEntry<'_>) -> Shape {
    let child = node.depth + 1;
    match node.kind {
        FlatKind::Null => Shape::Null,
        FlatKind::Boolean => Shape::Boolean,
        FlatKind::Integer => Shape::Integer,
        FlatKind::Number => Shape::Number,
        FlatKind::Any => Shape::Any,
        FlatKind::String(format) => Shape::String { format },
        FlatKind::Array { items } => {
            let item = it.next_if(|n| items && n.depth == child);
            Shape::Array {
                items: item.map(|n| Box::new(build_tree(it, n))),
            }
        }
        FlatKind::Object { truncated, .. } => {
            let mut fields: Vec<(&str, Shape)> = Vec::new();
            let mut names_len = 0;
            while let Some(n) = it.next_if(|n| n.depth == child) {
                let key = n.key.unwrap_or_default();
                names_len += key.len();
                fields.push((key, build_tree(it, n)));
            }
            Shape::Object {
                fields: Fields::from_sorted(names_len, fields.into_iter()),
                truncated,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree(json: &str) -> Shape {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn nodes_come_in_pre_order_with_depth_and_key() {
        let t = tree(
            r#"{"type":"object","fields":{"a":{"type":"integer"},"b":{"type":"array","items":{"type":"object","fields":{"":{"type":"string","format":"uuid"}},"truncated":true}},"c":{"type":"array"}}}"#,
        );
        let flat = FlatShape::from_tree(&t);
        let got: Vec<_> = flat.iter().map(|e| (e.depth, e.key, e.kind)).collect();
        assert_eq!(
            got,
            vec![
                (
                    0,
                    None,
                    FlatKind::Object {
                        fields: 3,
                        truncated: false
                    }
                ),
                (1, Some("a"), FlatKind::Integer),
                (1, Some("b"), FlatKind::Array { items: true }),
                (
                    2,
                    None,
                    FlatKind::Object {
                        fields: 1,
                        truncated: true
                    }
                ),
                (3, Some(""), FlatKind::String(Some(StringFormat::Uuid))),
                (1, Some("c"), FlatKind::Array { items: false }),
            ]
        );
        assert_eq!(flat.len(), 6);
        assert_eq!(flat.iter().len(), 6);
        assert_eq!(flat.to_tree(), t);
    }

    #[test]
    fn trees_round_trip() {
        for json in [
            r#"{"type":"null"}"#,
            r#"{"type":"any"}"#,
            r#"{"type":"array","items":{"type":"array","items":{"type":"number"}}}"#,
            r#"{"type":"object","fields":{}}"#,
            r#"{"type":"object","fields":{},"truncated":true}"#,
            r#"{"type":"object","fields":{"a":{"type":"object","fields":{"b":{"type":"object","fields":{"c":{"type":"boolean"}}}}},"d":{"type":"null"}}}"#,
            r#"{"type":"array","items":{"type":"object","fields":{"x/y":{"type":"string"},"ü":{"type":"any"}}}}"#,
        ] {
            let t = tree(json);
            let flat = FlatShape::from_tree(&t);
            assert_eq!(flat.to_tree(), t, "{json}");
            assert_eq!(FlatShape::from_tree(&flat.to_tree()), flat, "{json}");
        }
    }

    #[test]
    fn the_builder_gives_back_what_it_grew_past_the_cap() {
        let mut b = FlatBuilder::default();
        for _ in 0..FLAT_BUFFER_KEEP_BYTES {
            b.push(1, Some("k"), FlatKind::Null);
        }
        b.clear();
        assert!(b.nodes.capacity() == 0 && b.keys.capacity() == 0);
        b.push(0, None, FlatKind::Integer);
        b.clear();
        assert!(b.nodes.capacity() > 0);
        assert!(b.nodes.is_empty() && b.keys.is_empty());
        assert_eq!(std::mem::size_of::<FlatNode>(), 12);
    }
}
