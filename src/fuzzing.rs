//! Entry points for the fuzz targets in `fuzz/` (cargo-fuzz, see docs/fuzzing.md): the
//! request path's private parsers and builders, reachable from outside the crate only
//! through here. Not an API: hidden from the docs and free to change with the targets.

use bytes::Bytes;
use http::{HeaderMap, Request};
use http_body_util::Full;

use crate::invoke::{self, Incoming, Route};
use crate::sign::Credentials;

/// `(status, message)`: why the plugin refuses a request (400) or cannot send it (500).
pub type Refusal = (u16, String);

/// Splits the request-header lines the Lua side passes (`name:value\n`).
pub fn parse_headers(raw: &[u8]) -> Result<Vec<(&str, &[u8])>, Refusal> {
    invoke::parse_headers(raw)
}

/// The response head handed back to nginx (`Name:value\n` lines).
pub fn response_head(headers: &HeaderMap, head_only: bool) -> Vec<u8> {
    invoke::response_head(headers, head_only)
}

/// The request the plugin would send to the function for `incoming`, signed with `creds`
/// when the route signs; nothing is sent.
pub fn request_for(
    route: &Route,
    incoming: &Incoming,
    creds: &Credentials,
    body: Bytes,
) -> Result<Request<Full<Bytes>>, Refusal> {
    invoke::request_for(route, incoming, creds, body)
}
