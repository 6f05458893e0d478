//! Named caps on what one contract may make the loader do.
//!
//! Hitting a cap is a [`SpecError`](super::SpecError) naming the file and
//! the node where it happened, except [`MAX_REF_DEPTH`], which cuts a
//! schema off (marking it [`Schema::recursive`](super::Schema::recursive)).

/// Largest contract file read, in bytes (also for referenced files and for
/// text given to [`load_str`](super::load_str)).
pub const MAX_FILE_BYTES: u64 = 32 * 1024 * 1024;

/// Most operations (method + path pairs) in one contract.
pub const MAX_OPERATIONS: usize = 10_000;

/// Most schema `$ref`s expanded inside one another. A schema reference
/// found deeper than this is cut off as recursive rather than expanded.
/// A reference to a schema that is already being expanded (a cycle) is cut
/// off at once, whatever the depth.
pub const MAX_REF_DEPTH: usize = 32;

/// Most hops in a chain of references to references (`A: {$ref: B}`,
/// `B: {$ref: C}`, …) before the chain counts as broken.
pub const MAX_REF_CHAIN: usize = 32;

/// Most schema objects nested inside one another (properties, items,
/// branches, expanded references). Real contracts stay well below it;
/// it keeps the recursive conversion far from the end of a 2 MiB thread
/// stack, even in a debug build.
pub const MAX_SCHEMA_DEPTH: usize = 64;

/// Most schema nodes built for one contract, counting every copy a
/// shared `$ref` expands to. Stops exponential expansion of specs that
/// reference the same schemas many times at many levels.
/// (Docker Engine's 2.0 contract expands to about 5,300.)
pub const MAX_SCHEMA_NODES: usize = 1_000_000;

/// Most files one contract may pull in through `$ref`s to other files,
/// the contract itself included. Each file is read once.
pub const MAX_REF_FILES: usize = 64;

/// Most files read from a directory given to
/// [`load_path`](super::load_path).
pub const MAX_DIR_FILES: usize = 10_000;

/// Deepest sub-directory walked below a directory given to
/// [`load_path`](super::load_path).
pub const MAX_DIR_DEPTH: usize = 32;
