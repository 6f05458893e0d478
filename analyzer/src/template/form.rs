//! Evidence (a): what a single path segment looks like. The test itself
//! lives in the sensor's crate, which also uses it to keep secrets out of
//! exported paths.

pub use shadowtap_proto::record::segment::{classify, is_version, ParamKind};
