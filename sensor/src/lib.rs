//! shadowtap sensor library: capture sources and the offline runtime.
