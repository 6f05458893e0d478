//! API contracts: OpenAPI 3.0, 3.1 and Swagger 2.0, normalized.
//!
//! [`load_path`] and [`load_str`] read a contract written in any of the
//! three dialects into one [`Contract`] model, with every `$ref` resolved
//! (also into other files next to the contract), and every error naming
//! the file and a JSON pointer (or line and column) to the fault.
//! [`PathTemplate`] matches concrete request paths against the declared
//! path templates.
//!
//! Modules, in the order a load runs through them:
//!
//! | module | role |
//! |---|---|
//! | `load` | entry points, directory walk, dialect detection |
//! | `document` | bytes → YAML/JSON value tree |
//! | `refs` | documents, nodes, `$ref` resolution |
//! | `servers` | base URLs |
//! | `security` | schemes and requirements |
//! | `operations` | paths, parameters, bodies, responses |
//! | `schema` | JSON Schema reduction, `allOf` merge |
//! | `template` | path templates and matching |
//! | `limits` | named caps |

mod document;
mod error;
mod limits;
mod load;
mod model;
mod operations;
mod refs;
mod schema;
mod security;
mod servers;
mod template;

// The public interface is:
pub use error::SpecError;
pub use limits::{
    MAX_DIR_DEPTH, MAX_DIR_FILES, MAX_FILE_BYTES, MAX_OPERATIONS, MAX_REF_CHAIN, MAX_REF_DEPTH,
    MAX_REF_FILES, MAX_SCHEMA_DEPTH, MAX_SCHEMA_NODES,
};
pub use load::{load_path, load_str};
pub use model::*;
pub use template::{Part, PathTemplate, Segment, TemplateError, MAX_SEGMENT_PARAMS};

#[cfg(test)]
mod tests;
