//! Native core of the `aws-lambda` plugin for Apache APISIX and OpenResty.
//!
//! The core modules know nothing of Lua or C: `config` (schema, validation, defaults),
//! `wire` (what goes on the wire: path, query, headers), `sign` (SigV4), `client`
//! (hyper HTTP/1.1 connections in an own pool), `creds` (static keys, the AWS chain,
//! assumed roles; cached and refreshed), `invoke` (one call to the function), `lambda` (the Invoke API: events and proxy
//! responses),
//! `stream` (answers handed to nginx chunk by chunk, with backpressure), `bridge` (the
//! per-worker runtime and the hand-off to nginx). The edges are `ffi`
//! (the C ABI for the per-request path) and `lua` (mlua bindings for setup calls).

// Unsafe code states why it is sound: every unsafe operation sits in an `unsafe` block,
// also inside an `unsafe fn`, and every block carries a `// SAFETY:` comment.
#![deny(unsafe_op_in_unsafe_fn)]
#![deny(clippy::undocumented_unsafe_blocks)]

pub mod bridge;
pub mod client;
pub mod config;
pub mod creds;
pub mod ffi;
#[doc(hidden)]
pub mod fuzzing;
pub mod invoke;
pub mod lambda;
mod lua;
mod route;
pub mod sign;
pub mod stats;
pub mod stream;
pub mod wire;

/// The crate version, reported by the library, the plugin and the rockspec.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
