//! The per-request calls: submit, take, cancel.

use std::os::raw::{c_char, c_int};
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;

use bytes::Bytes;

use super::{guard, slice, write_errbuf, AwslRoute};
use super::{AWSL_AGAIN, AWSL_DEAD, AWSL_DECLINED, AWSL_DONE, AWSL_ERROR, AWSL_OK, AWSL_TOO_SMALL};
use crate::bridge::{self, tickets::Outcome, tickets::Peek};
use crate::invoke::{Body, Incoming};
use crate::stream::{End, Next};

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
    /// Only for routes that send an event (`route_new` says which): the raw request
    /// URI (`$request_uri`, its query is ignored), client address, request id,
    /// protocol, host, start time in milliseconds and the route's path pattern, then
    /// path parameter names and values, each followed by a NUL byte. `context_len` 0
    /// sends none.
    pub context: *const c_char,
    pub context_len: usize,
}

/// What `awsl_ticket_take` reports. The buffer holds `head_len` bytes of response
/// headers (`name:value\n` lines), then `body_len` bytes, then `log_len` bytes of a
/// message for the error log at info level (the function's log tail). When `is_error`
/// is 0, the `body_len` bytes are the body. When `is_error` is 1, `status` is the
/// status to answer, with the headers (`Retry-After` of a throttled call or a
/// credential outage), and the `body_len` bytes are a message for the error log.
#[repr(C)]
pub struct AwslResponse {
    pub status: c_int,
    pub is_error: c_int,
    pub head_len: usize,
    pub body_len: usize,
    pub log_len: usize,
    /// 1 when the body is streamed: the `body_len` bytes are its first bytes, and
    /// `awsl_stream_next` gives the rest.
    pub more: c_int,
}

/// An outcome lent by `awsl_ticket_lend`: pointers into the library's own copy of it,
/// valid until the next `awsl_ticket_lend` or `awsl_ticket_release` call. `head`,
/// `body` and `log` mean what `AwslResponse` says of its buffer's three parts; a
/// pointer whose length is 0 must not be read.
#[repr(C)]
pub struct AwslOutcome {
    pub status: c_int,
    pub is_error: c_int,
    pub head: *const c_char,
    pub head_len: usize,
    pub body: *const c_char,
    pub body_len: usize,
    pub log: *const c_char,
    pub log_len: usize,
    /// 1 when the body is streamed: `body` holds its first bytes (maybe none), and
    /// `awsl_stream_next` gives the rest.
    pub more: c_int,
}

/// A piece of a streamed body lent by `awsl_stream_next`, valid until the next
/// `awsl_stream_next` or `awsl_ticket_release` call.
#[repr(C)]
pub struct AwslChunk {
    pub data: *const c_char,
    pub len: usize,
}

/// The piece `awsl_stream_next` lent last (nginx thread only, copied out before any
/// yield, like `LENT`).
static LENT_CHUNK: parking_lot::Mutex<Option<Bytes>> = parking_lot::const_mutex(None);

/// The outcome `awsl_ticket_lend` lent last, kept until the next lend or release. Only
/// the nginx thread lends, one outcome at a time, and copies it out before anything
/// can yield.
static LENT: parking_lot::Mutex<Option<Outcome>> = parking_lot::const_mutex(None);

/// Queues the request for the function behind `route` and stores its ticket in
/// `*ticket`. Wait for the ticket on the worker's pump, then call `awsl_ticket_take`.
///
/// # Safety
/// `route` comes from `route_new` and is not freed; every pointer in `req` is valid
/// for its length; `err` is valid for `*err_len` bytes.
/// # Errors
/// `AWSL_ERROR` (message in `err`) when the worker was not started in this process or
/// an argument is NULL; `AWSL_DEAD` (the cause in `err`) when the worker's runtime
/// thread has stopped: nothing was queued, and `awsl_worker_start` starts a new one.
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
        let fail_with = |code: c_int, msg: &str| {
            // SAFETY: the caller's contract: `err` is valid for `*err_len` bytes.
            unsafe { write_errbuf(msg, err, err_len) };
            code
        };
        let fail = |msg: &str| fail_with(AWSL_ERROR, msg);
        if route.is_null() || req.is_null() || ticket.is_null() {
            return fail("NULL argument");
        }
        // SAFETY: neither is NULL; `route` is a live handle from `route_new` and `req`
        // a filled request (the caller's contract), both only read during this call.
        let (route, req) = unsafe { (&*route, &*req) };
        let (
            Some(method),
            Some(ext),
            Some(query),
            Some(headers),
            Some(body),
            Some(file),
            Some(context),
        ) = (
            // SAFETY: the caller's contract: every pointer in `req` is valid for its
            // length; the slices are copied before this call returns.
            unsafe {
                (
                    slice(req.method, req.method_len),
                    slice(req.ext, req.ext_len),
                    slice(req.query, req.query_len),
                    slice(req.headers, req.headers_len),
                    slice(req.body, req.body_len),
                    slice(req.body_file, req.body_file_len),
                    slice(req.context, req.context_len),
                )
            }
        )
        else {
            return fail("NULL pointer with a length in the request");
        };
        let Some(worker) = bridge::current() else {
            return fail("the worker was not started in this process");
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
            context: (!context.is_empty()).then(|| context.to_vec()),
        };
        match worker.submit(route.route.clone(), incoming) {
            Ok(id) => {
                // SAFETY: `ticket` is not NULL and points to a u32 (the caller's contract).
                unsafe { *ticket = id };
                AWSL_OK
            }
            Err(e) => fail_with(AWSL_DEAD, &e),
        }
    })
}

/// Takes the outcome of `ticket` into the caller's buffer and forgets the ticket.
///
/// Returns `AWSL_OK` with `*out` filled and the data in `buf`; `AWSL_AGAIN` while the
/// request is in flight; `AWSL_TOO_SMALL` with the needed sizes in `*out` (the ticket
/// stays, call again with `head_len + body_len + log_len` bytes); `AWSL_DECLINED` for an unknown
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
            Peek::Unknown | Peek::Streaming => return AWSL_DECLINED,
            Peek::Pending => return AWSL_AGAIN,
            Peek::Done(outcome) => outcome,
        };
        let (status, is_error, head, body, log, more) = parts(outcome);
        // SAFETY: `out` is not NULL and points to an `AwslResponse` (the caller's contract).
        unsafe {
            *out = AwslResponse {
                status: c_int::from(status),
                is_error,
                head_len: head.len(),
                body_len: body.len(),
                log_len: log.len(),
                more,
            }
        };
        let needed = head.len() + body.len() + log.len();
        if needed > buf_len || (needed > 0 && buf.is_null()) {
            return AWSL_TOO_SMALL;
        }
        if needed > 0 {
            let buf = buf.cast::<u8>();
            let mut at = 0;
            for part in [head, body, log] {
                // SAFETY: `buf` is not NULL and holds `buf_len` >= `needed` bytes (the
                // caller's contract), so `at + part.len()` stays inside it; the parts are
                // Rust memory and cannot overlap the caller's buffer.
                unsafe { std::ptr::copy_nonoverlapping(part.as_ptr(), buf.add(at), part.len()) };
                at += part.len();
            }
        }
        if more == 0 {
            tickets.remove(ticket);
        } else {
            // The ticket stays open for `awsl_stream_next`.
            drop(tickets.take(ticket));
        }
        AWSL_OK
    })
}

/// An outcome as the C ABI hands it over: status, whether it is an error (then the
/// body is the message), head, body (or a stream's first bytes), log tail, and whether
/// the body is streamed.
fn parts(outcome: &Outcome) -> (u16, c_int, &[u8], &[u8], &[u8], c_int) {
    fn log(log: &Option<String>) -> &[u8] {
        log.as_deref().unwrap_or_default().as_bytes()
    }
    match outcome {
        Outcome::Response {
            status,
            head,
            body,
            log: tail,
        } => (*status, 0, head, &body[..], log(tail), 0),
        Outcome::Error {
            status,
            head,
            message,
            log: tail,
        } => (*status, 1, head, message.as_bytes(), log(tail), 0),
        Outcome::Stream {
            status,
            head,
            first,
            ..
        } => (*status, 0, head, &first[..], &[], 1),
    }
}

/// Takes the outcome of `ticket` and lends it: `*out` points into the library's copy,
/// which stays valid until the next `awsl_ticket_lend` or `awsl_ticket_release` call.
/// No buffer to size, no copy under the ticket table's lock, no second call for a large
/// body: the caller copies what it needs (LuaJIT's `ffi.string`) before it yields.
///
/// Returns `AWSL_OK`, `AWSL_AGAIN` while the request is in flight, or `AWSL_DECLINED`
/// for an unknown ticket; the ticket is forgotten once lent.
///
/// # Safety
/// `out` is valid for writes.
/// # Lifetimes
/// The pointers in `*out` are valid until this function or `awsl_ticket_release` is
/// called again, in any thread; never across a yield of the calling coroutine.
/// # Panics
/// Never.
#[no_mangle]
pub unsafe extern "C" fn awsl_ticket_lend(ticket: u32, out: *mut AwslOutcome) -> c_int {
    guard(|| {
        if out.is_null() {
            return AWSL_ERROR;
        }
        let Some(worker) = bridge::current() else {
            return AWSL_DECLINED;
        };
        let outcome = {
            let mut tickets = worker.tickets().lock();
            match tickets.peek(ticket) {
                Peek::Unknown | Peek::Streaming => return AWSL_DECLINED,
                Peek::Pending => return AWSL_AGAIN,
                Peek::Done(_) => {}
            }
            match tickets.take(ticket) {
                Some(outcome) => outcome,
                None => return AWSL_DECLINED,
            }
        };
        let mut lent = LENT.lock();
        // The previous loan ends here: its memory is freed with the lock held.
        let outcome = lent.insert(outcome);
        let (status, is_error, head, body, log, more) = parts(outcome);
        let view = AwslOutcome {
            status: c_int::from(status),
            is_error,
            head: head.as_ptr().cast(),
            head_len: head.len(),
            body: body.as_ptr().cast(),
            body_len: body.len(),
            log: log.as_ptr().cast(),
            log_len: log.len(),
            more,
        };
        // SAFETY: `out` is not NULL and valid for writes (the caller's contract); the
        // pointers written stay valid while `LENT` holds this outcome.
        unsafe { out.write(view) };
        AWSL_OK
    })
}

/// Ends the loans of the last `awsl_ticket_lend` and `awsl_stream_next` (frees them
/// now rather than at the next call, so that a large body is not kept).
///
/// # Panics
/// Never.
#[no_mangle]
pub extern "C" fn awsl_ticket_release() -> c_int {
    guard(|| {
        drop(LENT.lock().take());
        drop(LENT_CHUNK.lock().take());
        AWSL_OK
    })
}

/// The next piece of the streamed body of `ticket`, whose outcome was lent or taken
/// with `more` = 1.
///
/// Returns `AWSL_OK` with a piece (never empty) lent in `*out`; `AWSL_AGAIN` when none
/// is there yet: wait for the ticket's id on the pump, then ask again; `AWSL_DONE` at
/// the body's end, with what the function logged (its log tail, for the error log at
/// info level) in `err` (`*err_len` 0 when nothing); `AWSL_ERROR` when the body broke
/// off (the cause, for the error log, in `err`: the function closed or reset the
/// connection, or stayed silent for `stream_idle_timeout`); `AWSL_DECLINED` for a
/// ticket that is not streaming. After
/// `AWSL_DONE` and `AWSL_ERROR` the ticket is forgotten; `awsl_ticket_cancel` ends a
/// stream early (and closes the function's connection).
///
/// Lend only after the previous piece was written out: the library reads more from
/// the function only while less than 64 KiB waits here (backpressure).
///
/// # Safety
/// `out` is valid for writes; `err` is valid for `*err_len` bytes.
/// # Lifetimes
/// The piece in `*out` stays valid until this function or `awsl_ticket_release` is
/// called again; never across a yield of the calling coroutine.
/// # Panics
/// Never.
#[no_mangle]
pub unsafe extern "C" fn awsl_stream_next(
    ticket: u32,
    out: *mut AwslChunk,
    err: *mut c_char,
    err_len: *mut usize,
) -> c_int {
    guard(|| {
        if out.is_null() {
            // SAFETY: the caller's contract: `err` is valid for `*err_len` bytes.
            unsafe { write_errbuf("NULL argument", err, err_len) };
            return AWSL_ERROR;
        }
        let Some(worker) = bridge::current() else {
            return AWSL_DECLINED;
        };
        let next = worker.tickets().lock().next(ticket);
        match next {
            None => AWSL_DECLINED,
            Some(Next::Again) => AWSL_AGAIN,
            Some(Next::End(end @ (End::Done | End::Logged(_)))) => {
                let log = match &end {
                    End::Logged(log) => log.as_str(),
                    _ => "",
                };
                // SAFETY: the caller's contract: `err` is valid for `*err_len` bytes.
                unsafe { write_errbuf(log, err, err_len) };
                AWSL_DONE
            }
            Some(Next::End(End::Failed(cause))) => {
                // SAFETY: the caller's contract: `err` is valid for `*err_len` bytes.
                unsafe { write_errbuf(&cause, err, err_len) };
                AWSL_ERROR
            }
            Some(Next::Chunk(chunk)) => {
                let mut lent = LENT_CHUNK.lock();
                let chunk = lent.insert(chunk);
                // SAFETY: `out` is not NULL and valid for writes (the caller's
                // contract); the pointer stays valid while `LENT_CHUNK` holds the piece.
                unsafe {
                    out.write(AwslChunk {
                        data: chunk.as_ptr().cast(),
                        len: chunk.len(),
                    })
                };
                AWSL_OK
            }
        }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::PluginConfig;
    use crate::invoke::Route;
    use std::io::Read;
    use std::os::unix::net::UnixStream;
    use std::time::{Duration, Instant};

    fn request<'a>(method: &'a str, headers: &'a str) -> AwslRequest {
        AwslRequest {
            method: method.as_ptr().cast(),
            method_len: method.len(),
            ext: std::ptr::null(),
            ext_len: 0,
            has_ext: 0,
            query: std::ptr::null(),
            query_len: 0,
            headers: headers.as_ptr().cast(),
            headers_len: headers.len(),
            body: std::ptr::null(),
            body_len: 0,
            body_file: std::ptr::null(),
            body_file_len: 0,
            context: std::ptr::null(),
            context_len: 0,
        }
    }

    fn route(uri: &str) -> *mut AwslRoute {
        let mut conf = serde_json::json!({ "function_uri": uri, "timeout": 2000 });
        crate::config::check(&mut conf).expect("valid");
        let cfg = PluginConfig::from_value(&conf).expect("config");
        AwslRoute::into_raw(Route::new(cfg))
    }

    fn errbuf() -> ([c_char; 64], usize) {
        ([0; 64], 64)
    }

    fn text(buf: &[c_char], len: usize) -> String {
        String::from_utf8_lossy(&buf[..len].iter().map(|c| *c as u8).collect::<Vec<_>>())
            .into_owned()
    }

    #[test]
    fn null_arguments_are_errors_not_crashes() {
        let req = request("GET", "");
        let mut ticket = 0u32;
        let (mut err, mut len) = errbuf();
        // SAFETY: a NULL route is refused; the other pointers are valid.
        let rc = unsafe {
            awsl_request_submit(
                std::ptr::null(),
                &req,
                &mut ticket,
                err.as_mut_ptr(),
                &mut len,
            )
        };
        assert_eq!(rc, AWSL_ERROR);
        assert_eq!(text(&err, len), "NULL argument");
        // SAFETY: a NULL `out` is refused.
        let rc = unsafe { awsl_ticket_take(1, std::ptr::null_mut(), std::ptr::null_mut(), 0) };
        assert_eq!(rc, AWSL_ERROR);
        // SAFETY: NULL is allowed.
        unsafe { crate::ffi::awsl_route_free(std::ptr::null_mut()) };
    }

    #[test]
    fn a_pointer_without_bytes_is_refused() {
        let r = route("http://127.0.0.1:1/");
        let mut req = request("GET", "");
        req.query_len = 5; // NULL query with a length
        let mut ticket = 0u32;
        let (mut err, mut len) = errbuf();
        // SAFETY: a live route; a NULL query with a length is refused; `err` holds `len` bytes.
        let rc = unsafe { awsl_request_submit(r, &req, &mut ticket, err.as_mut_ptr(), &mut len) };
        assert_eq!(rc, AWSL_ERROR);
        assert_eq!(text(&err, len), "NULL pointer with a length in the request");
        // SAFETY: made by `route()`, freed once.
        unsafe { crate::ffi::awsl_route_free(r) };
    }

    #[test]
    fn unknown_tickets_are_declined() {
        let mut out = AwslResponse {
            status: 0,
            is_error: 0,
            head_len: 0,
            body_len: 0,
            log_len: 0,
            more: 0,
        };
        // SAFETY: `out` is valid; a zero-length NULL buffer is allowed.
        let rc = unsafe { awsl_ticket_take(u32::MAX - 7, &mut out, std::ptr::null_mut(), 0) };
        assert_eq!(rc, AWSL_DECLINED);
        assert_eq!(awsl_ticket_cancel(u32::MAX - 7), AWSL_DECLINED);
    }

    // The whole hand-off through the C ABI: start, submit, the completion on the pump
    // socket, a too-small buffer, take, and the ticket gone afterwards.
    #[test]
    fn round_trip_through_the_c_abi() {
        let _serial = crate::bridge::TEST_LOCK.lock();
        let dir = std::env::temp_dir().join(format!("awsl-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let dir_s = dir.to_str().expect("utf-8");
        let mut path = [0 as c_char; 512];
        let mut path_len = path.len();
        // SAFETY: `dir_s` and `path` are valid for their lengths.
        let rc = unsafe {
            crate::ffi::awsl_worker_start(
                dir_s.as_ptr().cast(),
                dir_s.len(),
                path.as_mut_ptr(),
                &mut path_len,
            )
        };
        assert_eq!(rc, AWSL_OK);
        let mut pump = UnixStream::connect(text(&path, path_len)).expect("pump connects");

        // Nothing listens on port 1: the outcome is an error to answer with 503.
        let r = route("http://127.0.0.1:1/fn");
        let req = request("GET", "x-test:1\n");
        let mut ticket = 0u32;
        let (mut err, mut len) = errbuf();
        // SAFETY: a live route, a request of valid slices, `err` holds `len` bytes.
        let rc = unsafe { awsl_request_submit(r, &req, &mut ticket, err.as_mut_ptr(), &mut len) };
        assert_eq!(rc, AWSL_OK, "{}", text(&err, len));
        // SAFETY: made by `route()`, freed once.
        unsafe { crate::ffi::awsl_route_free(r) }; // in-flight requests keep the route

        pump.set_read_timeout(Some(Duration::from_secs(10)))
            .expect("timeout");
        let mut id = [0u8; 4];
        pump.read_exact(&mut id).expect("completion on the pump");
        assert_eq!(u32::from_le_bytes(id), ticket);

        let mut out = AwslResponse {
            status: 0,
            is_error: 0,
            head_len: 0,
            body_len: 0,
            log_len: 0,
            more: 0,
        };
        // SAFETY: `out` is valid; a zero-length NULL buffer is allowed.
        let rc = unsafe { awsl_ticket_take(ticket, &mut out, std::ptr::null_mut(), 0) };
        assert_eq!(rc, AWSL_TOO_SMALL);
        assert_eq!((out.status, out.is_error), (503, 1));
        let mut buf = vec![0 as c_char; out.body_len];
        // SAFETY: `buf` holds `buf.len()` bytes.
        let rc = unsafe { awsl_ticket_take(ticket, &mut out, buf.as_mut_ptr(), buf.len()) };
        assert_eq!(rc, AWSL_OK);
        assert!(text(&buf, out.body_len).contains("127.0.0.1:1"));
        // SAFETY: `buf` holds `buf.len()` bytes.
        let rc = unsafe { awsl_ticket_take(ticket, &mut out, buf.as_mut_ptr(), buf.len()) };
        assert_eq!(rc, AWSL_DECLINED, "a ticket is taken once");

        // The same outcome lent instead of copied.
        let r = route("http://127.0.0.1:1/fn");
        // SAFETY: a live route, a request of valid slices, `err` holds `len` bytes.
        let rc = unsafe { awsl_request_submit(r, &req, &mut ticket, err.as_mut_ptr(), &mut len) };
        assert_eq!(rc, AWSL_OK);
        // SAFETY: `r` came from `route` and is freed once.
        unsafe { crate::ffi::awsl_route_free(r) };
        pump.read_exact(&mut id).expect("completion on the pump");
        assert_eq!(u32::from_le_bytes(id), ticket);
        let mut lent = AwslOutcome {
            status: 0,
            is_error: 0,
            head: std::ptr::null(),
            head_len: 0,
            body: std::ptr::null(),
            body_len: 0,
            log: std::ptr::null(),
            log_len: 0,
            more: 0,
        };
        // SAFETY: `lent` is valid for writes.
        assert_eq!(unsafe { awsl_ticket_lend(ticket, &mut lent) }, AWSL_OK);
        assert_eq!((lent.status, lent.is_error), (503, 1));
        // SAFETY: the loan is live (no lend or release since) and `body_len` bytes long.
        let message = unsafe { std::slice::from_raw_parts(lent.body.cast::<u8>(), lent.body_len) };
        assert!(String::from_utf8_lossy(message).contains("127.0.0.1:1"));
        assert_eq!(awsl_ticket_release(), AWSL_OK);
        assert!(LENT.lock().is_none(), "released");
        assert_eq!(
            // SAFETY: `lent` is valid for writes.
            unsafe { awsl_ticket_lend(ticket, &mut lent) },
            AWSL_DECLINED,
            "a ticket is lent once"
        );
        assert_eq!(
            // SAFETY: a NULL `out` is refused before any write.
            unsafe { awsl_ticket_lend(ticket, std::ptr::null_mut()) },
            AWSL_ERROR
        );

        // A cancelled ticket's outcome is dropped when it arrives.
        let r = route("http://127.0.0.1:1/fn");
        // SAFETY: a live route, a request of valid slices, `err` holds `len` bytes.
        let rc = unsafe { awsl_request_submit(r, &req, &mut ticket, err.as_mut_ptr(), &mut len) };
        assert_eq!(rc, AWSL_OK);
        assert_eq!(awsl_ticket_cancel(ticket), AWSL_OK);
        let deadline = Instant::now() + Duration::from_secs(10);
        while crate::bridge::current().is_some_and(|w| !w.tickets().lock().is_empty())
            && Instant::now() < deadline
        {
            std::thread::sleep(Duration::from_millis(10));
        }
        assert!(crate::bridge::current().is_some_and(|w| w.tickets().lock().is_empty()));
        // SAFETY: made by `route()`, freed once.
        unsafe { crate::ffi::awsl_route_free(r) };

        // Closing the socket ends the pump's connection; the runtime keeps serving, and
        // outcomes are then polled.
        assert_eq!(crate::ffi::awsl_worker_close_socket(), AWSL_OK);
        assert!(!std::path::Path::new(&text(&path, path_len)).exists());
        let mut rest = Vec::new();
        pump.set_read_timeout(Some(Duration::from_secs(10)))
            .expect("timeout");
        assert_eq!(
            pump.read_to_end(&mut rest).ok(),
            Some(0),
            "the pump sees EOF"
        );
        let r = route("http://127.0.0.1:1/fn");
        // SAFETY: a live route, a request of valid slices, `err` holds `len` bytes.
        let rc = unsafe { awsl_request_submit(r, &req, &mut ticket, err.as_mut_ptr(), &mut len) };
        assert_eq!(
            rc, AWSL_OK,
            "requests are still served after the socket closed"
        );
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut rc = AWSL_AGAIN;
        while rc == AWSL_AGAIN && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
            // SAFETY: `buf` holds `buf.len()` bytes.
            rc = unsafe { awsl_ticket_take(ticket, &mut out, buf.as_mut_ptr(), buf.len()) };
        }
        assert!(
            rc == AWSL_OK || rc == AWSL_TOO_SMALL,
            "polled outcome: {rc}"
        );
        assert_eq!(out.status, 503);
        // SAFETY: made by `route()`, freed once.
        unsafe { crate::ffi::awsl_route_free(r) };
        let _ = std::fs::remove_dir(&dir);
    }

    fn outcome_status(ticket: u32) -> Option<(u16, String)> {
        let w = crate::bridge::current()?;
        let tickets = w.tickets().lock();
        match tickets.peek(ticket) {
            Peek::Done(Outcome::Error {
                status, message, ..
            }) => Some((*status, message.clone())),
            _ => None,
        }
    }

    // A runtime thread that dies: the ticket it held completes with 503 and the cause,
    // the pump's socket closes, the next submit fails at once with AWSL_DEAD, and
    // starting the worker again gives a runtime that serves, with the old outcome
    // still there to take.
    fn kill_runtime() {
        if let Some(w) = crate::bridge::current().filter(|w| !w.is_dead()) {
            w.kill_for_test().expect("test hooks are on in unit tests");
            let deadline = Instant::now() + Duration::from_secs(10);
            while !w.is_dead() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(5));
            }
            assert!(w.is_dead(), "the runtime stops");
        }
    }

    #[test]
    fn a_dead_runtime_fails_fast_and_is_started_again() {
        let _serial = crate::bridge::TEST_LOCK.lock();
        // Another test may have left a runtime behind (with its socket closed, or in
        // its own directory): start from a new one.
        kill_runtime();
        let dir = std::env::temp_dir().join(format!("awsl-dead-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let path = crate::bridge::start(&dir).expect("start");
        let mut pump = UnixStream::connect(&path).expect("pump connects");
        crate::bridge::current().expect("worker");
        let restarts = crate::stats::WORKER.runtime_restarts();

        // A function that takes the request and never answers.
        let silent = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let r = route(&format!("http://{}/fn", silent.local_addr().expect("addr")));
        let req = request("GET", "");
        let mut held = 0u32;
        let (mut err, mut len) = errbuf();
        // SAFETY: a live route, a request of valid slices, `err` holds `len` bytes.
        let rc = unsafe { awsl_request_submit(r, &req, &mut held, err.as_mut_ptr(), &mut len) };
        assert_eq!(rc, AWSL_OK, "{}", text(&err, len));
        std::thread::sleep(Duration::from_millis(50));
        assert_eq!(crate::ffi::awsl_worker_check(), AWSL_OK);

        kill_runtime();
        assert_eq!(crate::ffi::awsl_worker_check(), AWSL_DEAD);
        let (status, message) = outcome_status(held).expect("the held ticket is done");
        assert_eq!(status, 503);
        assert!(message.contains("killed on purpose"), "{message}");
        pump.set_read_timeout(Some(Duration::from_secs(10)))
            .expect("timeout");
        let mut rest = Vec::new();
        assert_eq!(
            pump.read_to_end(&mut rest).ok(),
            Some(0),
            "the pump sees EOF"
        );

        let mut ticket = 0u32;
        let (mut err, mut len) = errbuf();
        // SAFETY: as above.
        let rc = unsafe { awsl_request_submit(r, &req, &mut ticket, err.as_mut_ptr(), &mut len) };
        assert_eq!(rc, AWSL_DEAD);
        assert!(text(&err, len).contains("stopped"), "{}", text(&err, len));

        assert_eq!(crate::bridge::start(&dir).expect("started again"), path);
        let w = crate::bridge::current().expect("worker");
        assert!(!w.is_dead());
        assert_eq!(crate::stats::WORKER.runtime_restarts(), restarts + 1);
        assert_eq!(
            outcome_status(held).map(|o| o.0),
            Some(503),
            "still takeable"
        );
        let mut pump = UnixStream::connect(&path).expect("pump connects again");
        pump.set_read_timeout(Some(Duration::from_secs(10)))
            .expect("timeout");
        let refused = route("http://127.0.0.1:1/fn");
        // SAFETY: as above.
        let rc =
            unsafe { awsl_request_submit(refused, &req, &mut ticket, err.as_mut_ptr(), &mut len) };
        assert_eq!(rc, AWSL_OK);
        let mut id = [0u8; 4];
        pump.read_exact(&mut id)
            .expect("completion on the new pump");
        assert_eq!(u32::from_le_bytes(id), ticket);
        assert_eq!(outcome_status(ticket).map(|o| o.0), Some(503));
        w.tickets().lock().remove(ticket);
        w.tickets().lock().remove(held);
        // SAFETY: made by `route()`, freed once.
        unsafe { crate::ffi::awsl_route_free(r) };
        // SAFETY: made by `route()`, freed once.
        unsafe { crate::ffi::awsl_route_free(refused) };
        // Tests after this one start their own runtime, in their directory.
        kill_runtime();
        let _ = std::fs::remove_dir_all(&dir);
    }
}
