//! The per-request calls: submit, take, cancel.

use std::os::raw::{c_char, c_int};
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;

use bytes::Bytes;

use super::{guard, slice, write_errbuf, AwslRoute};
use super::{AWSL_AGAIN, AWSL_DECLINED, AWSL_ERROR, AWSL_OK, AWSL_TOO_SMALL};
use crate::bridge::{self, tickets::Outcome, tickets::Peek};
use crate::invoke::{Body, Incoming};

/// The client's request, as borrowed Lua strings (pointer plus length). Filled by the
/// caller for each request; every byte is copied before `awsl_request_submit` returns.
#[repr(C)]
pub struct AwslRequest {
    pub method: *const c_char,
    pub method_len: usize,
    /// The route's wildcard suffix, decoded; `has_ext` is 0 when the route has none.
    pub ext: *const c_char,
    pub ext_len: usize,
    pub has_ext: c_int,
    /// The raw query string, without `?`.
    pub query: *const c_char,
    pub query_len: usize,
    /// Request headers as `name:value\n` lines, names in lowercase.
    pub headers: *const c_char,
    pub headers_len: usize,
    /// The body in memory, or (when `body_file_len` > 0) the path of the file nginx
    /// buffered it to.
    pub body: *const c_char,
    pub body_len: usize,
    pub body_file: *const c_char,
    pub body_file_len: usize,
}

/// What `awsl_ticket_take` reports. When `is_error` is 0, the buffer holds
/// `head_len` bytes of response headers (`name:value\n` lines) followed by `body_len`
/// bytes of body. When `is_error` is 1, `status` is the status to answer and the buffer
/// holds a `body_len`-byte message for the error log.
#[repr(C)]
pub struct AwslResponse {
    pub status: c_int,
    pub is_error: c_int,
    pub head_len: usize,
    pub body_len: usize,
}

/// Queues the request for the function behind `route` and stores its ticket in
/// `*ticket`. Wait for the ticket on the worker's pump, then call `awsl_ticket_take`.
///
/// # Safety
/// `route` comes from `route_new` and is not freed; every pointer in `req` is valid
/// for its length; `err` is valid for `*err_len` bytes.
/// # Errors
/// `AWSL_ERROR` (message in `err`) when the worker was not started in this process or
/// an argument is NULL.
/// # Panics
/// Never.
#[no_mangle]
pub unsafe extern "C" fn awsl_request_submit(
    route: *const AwslRoute,
    req: *const AwslRequest,
    ticket: *mut u32,
    err: *mut c_char,
    err_len: *mut usize,
) -> c_int {
    guard(|| {
        let fail = |msg: &str| {
            write_errbuf(msg, err, err_len);
            AWSL_ERROR
        };
        if route.is_null() || req.is_null() || ticket.is_null() {
            return fail("NULL argument");
        }
        let (route, req) = (&*route, &*req);
        let Some(worker) = bridge::current() else {
            return fail("the worker was not started in this process");
        };
        let (Some(method), Some(ext), Some(query), Some(headers), Some(body), Some(file)) = (
            slice(req.method, req.method_len),
            slice(req.ext, req.ext_len),
            slice(req.query, req.query_len),
            slice(req.headers, req.headers_len),
            slice(req.body, req.body_len),
            slice(req.body_file, req.body_file_len),
        ) else {
            return fail("NULL pointer with a length in the request");
        };
        let body = if file.is_empty() {
            Body::Memory(Bytes::copy_from_slice(body))
        } else {
            Body::File(PathBuf::from(std::ffi::OsStr::from_bytes(file)))
        };
        let incoming = Incoming {
            method: method.to_vec(),
            ext: (req.has_ext != 0).then(|| ext.to_vec()),
            query: query.to_vec(),
            headers: headers.to_vec(),
            body,
        };
        match worker.submit(route.route.clone(), incoming) {
            Ok(id) => {
                *ticket = id;
                AWSL_OK
            }
            Err(e) => fail(&e),
        }
    })
}

/// Takes the outcome of `ticket` into the caller's buffer and forgets the ticket.
///
/// Returns `AWSL_OK` with `*out` filled and the data in `buf`; `AWSL_AGAIN` while the
/// request is in flight; `AWSL_TOO_SMALL` with the needed sizes in `*out` (the ticket
/// stays, call again with `head_len + body_len` bytes); `AWSL_DECLINED` for an unknown
/// ticket.
///
/// # Safety
/// `out` is valid; `buf` is valid for writes of `buf_len` bytes.
/// # Panics
/// Never.
#[no_mangle]
pub unsafe extern "C" fn awsl_ticket_take(
    ticket: u32,
    out: *mut AwslResponse,
    buf: *mut c_char,
    buf_len: usize,
) -> c_int {
    guard(|| {
        if out.is_null() {
            return AWSL_ERROR;
        }
        let Some(worker) = bridge::current() else {
            return AWSL_DECLINED;
        };
        let mut tickets = worker.tickets().lock();
        let outcome = match tickets.peek(ticket) {
            Peek::Unknown => return AWSL_DECLINED,
            Peek::Pending => return AWSL_AGAIN,
            Peek::Done(outcome) => outcome,
        };
        let (status, is_error, head, body): (u16, c_int, &[u8], &[u8]) = match outcome {
            Outcome::Response { status, head, body } => (*status, 0, head, body),
            Outcome::Error { status, message } => (*status, 1, &[], message.as_bytes()),
        };
        *out = AwslResponse {
            status: c_int::from(status),
            is_error,
            head_len: head.len(),
            body_len: body.len(),
        };
        let needed = head.len() + body.len();
        if needed > buf_len || (needed > 0 && buf.is_null()) {
            return AWSL_TOO_SMALL;
        }
        if needed > 0 {
            let buf = buf.cast::<u8>();
            std::ptr::copy_nonoverlapping(head.as_ptr(), buf, head.len());
            std::ptr::copy_nonoverlapping(body.as_ptr(), buf.add(head.len()), body.len());
        }
        tickets.remove(ticket);
        AWSL_OK
    })
}

/// Gives up on `ticket` (the client went away or the wait timed out): its outcome is
/// dropped now or when it arrives.
///
/// # Panics
/// Never.
#[no_mangle]
pub extern "C" fn awsl_ticket_cancel(ticket: u32) -> c_int {
    guard(|| {
        let Some(worker) = bridge::current() else {
            return AWSL_DECLINED;
        };
        if worker.tickets().lock().cancel(ticket) {
            AWSL_OK
        } else {
            AWSL_DECLINED
        }
    })
}
