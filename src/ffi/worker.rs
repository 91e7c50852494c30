//! Per-worker start and stop.

use std::os::raw::{c_char, c_int};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use super::{guard, slice, write_errbuf, AWSL_DEAD, AWSL_DECLINED, AWSL_ERROR, AWSL_OK};
use crate::bridge;

/// Starts this worker's runtime thread and completion socket in directory `dir`
/// (idempotent per process while the runtime runs; after it stopped, a new one). On `AWSL_OK`, `out` holds the socket path for the pump;
/// on `AWSL_ERROR`, a message. `*out_len` is the capacity in, the length written out.
///
/// # Safety
/// `dir` is valid for `dir_len` bytes; `out` is valid for `*out_len` bytes.
/// # Errors
/// `AWSL_ERROR` when the directory is not usable or the thread cannot start.
/// # Panics
/// Never.
#[no_mangle]
pub unsafe extern "C" fn awsl_worker_start(
    dir: *const c_char,
    dir_len: usize,
    out: *mut c_char,
    out_len: *mut usize,
) -> c_int {
    guard(|| {
        // SAFETY: the caller's contract: `dir` is valid for `dir_len` bytes.
        let Some(dir) = (unsafe { slice(dir, dir_len) }) else {
            // SAFETY: the caller's contract: `out` is valid for `*out_len` bytes.
            unsafe { write_errbuf("dir is NULL", out, out_len) };
            return AWSL_ERROR;
        };
        let dir = Path::new(std::ffi::OsStr::from_bytes(dir));
        match bridge::start(dir) {
            Ok(path) => {
                let path = path.as_os_str().as_bytes();
                // SAFETY: both pointers are checked for NULL before use; `out` holds
                // `*out_len` bytes (the caller's contract), and no more than that are
                // written; the path is Rust memory, so the two cannot overlap.
                unsafe {
                    if out.is_null() || out_len.is_null() || *out_len < path.len() {
                        return AWSL_ERROR;
                    }
                    std::ptr::copy_nonoverlapping(path.as_ptr(), out.cast::<u8>(), path.len());
                    *out_len = path.len();
                }
                AWSL_OK
            }
            Err(e) => {
                // SAFETY: the caller's contract: `out` is valid for `*out_len` bytes.
                unsafe { write_errbuf(&e, out, out_len) };
                AWSL_ERROR
            }
        }
    })
}

/// Closes this worker's completion socket and removes its file, ending the pump, so
/// that an exiting worker can go. Call when the worker exits and nothing waits on the
/// pump. The runtime keeps serving: completions of later requests are polled with
/// `awsl_ticket_take` (it answers `AWSL_AGAIN` until they are done).
///
/// # Panics
/// Never.
#[no_mangle]
pub extern "C" fn awsl_worker_close_socket() -> c_int {
    guard(|| {
        bridge::close_socket();
        AWSL_OK
    })
}

/// Whether this worker's runtime runs: `AWSL_OK`; `AWSL_DEAD` when its thread has
/// stopped (the tickets it held are completed: wake their waiters, and call
/// `awsl_worker_start` for a new runtime); `AWSL_DECLINED` when none was started in
/// this process.
///
/// # Panics
/// Never.
#[no_mangle]
pub extern "C" fn awsl_worker_check() -> c_int {
    guard(|| match bridge::current() {
        Some(w) if w.is_dead() => AWSL_DEAD,
        Some(_) => AWSL_OK,
        None => AWSL_DECLINED,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unusable_directory_is_an_error_with_a_message() {
        let _serial = bridge::TEST_LOCK.lock();
        let dir = "/nonexistent/aws-lambda-native";
        let mut out = [0 as c_char; 256];
        let mut len = out.len();
        // Another test in this process may have started the worker: then the call is
        // idempotent and answers with that worker's socket (a stopped one is replaced).
        let running = bridge::current().is_some_and(|w| !w.is_dead());
        // SAFETY: `dir` and `out` are valid for their lengths.
        let rc = unsafe {
            awsl_worker_start(dir.as_ptr().cast(), dir.len(), out.as_mut_ptr(), &mut len)
        };
        let msg: Vec<u8> = out[..len].iter().map(|c| *c as u8).collect();
        let msg = String::from_utf8_lossy(&msg);
        if running {
            assert_eq!(rc, AWSL_OK, "{msg}");
        } else {
            assert_eq!(rc, AWSL_ERROR);
            assert!(msg.contains("cannot listen on /nonexistent"), "{msg}");
        }
        let mut len = out.len();
        // SAFETY: a NULL `dir` is refused; `out` is valid for `len` bytes.
        let rc = unsafe { awsl_worker_start(std::ptr::null(), 3, out.as_mut_ptr(), &mut len) };
        assert_eq!(rc, AWSL_ERROR);
    }
}
