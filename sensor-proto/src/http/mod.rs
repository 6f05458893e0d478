//! HTTP/1.0 and 1.1 over reassembled TCP streams, sans-IO.

pub mod events;
pub mod limits;
mod message;

pub use events::{AnomalySet, HttpAnomaly};
pub use message::{
    Body, Exchange, Framing, Header, HttpVersion, Message, Request, RequestHead, Response,
    ResponseHead, Tunnel,
};

mod body;
mod connection;
mod detect;
mod pairing;
mod request;
mod response;
#[cfg(test)]
mod transcript_tests;

pub use connection::{HttpConnection, HttpEvent};
pub use detect::{looks_like_request, looks_like_response};
