//! HTTP/1.0 and 1.1 over reassembled TCP streams, sans-IO.

pub mod events;
pub mod limits;
mod message;

pub use events::{AnomalySet, HttpAnomaly};
pub use message::{
    Body, Exchange, Framing, Header, HttpVersion, Message, Request, RequestHead, Response,
    ResponseHead, Tunnel,
};
