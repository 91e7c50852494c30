//! The route handle: a parsed plugin configuration shared by its requests.
//!
//! Routes are made by the mlua binding (`route_new`, a setup-level call that reads the
//! configuration table) and freed here, by the finalizer LuaJIT attaches with `ffi.gc`.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use super::guard;
use crate::invoke::Route;

/// Opaque handle to a configured route.
pub struct AwslRoute {
    pub(crate) route: Arc<Route>,
}

/// Route handles alive in this process, so that tests can see the GC free them.
static LIVE: AtomicUsize = AtomicUsize::new(0);

impl AwslRoute {
    pub(crate) fn into_raw(route: Arc<Route>) -> *mut AwslRoute {
        LIVE.fetch_add(1, Ordering::Relaxed);
        Box::into_raw(Box::new(AwslRoute { route }))
    }

    pub(crate) fn live() -> usize {
        LIVE.load(Ordering::Relaxed)
    }
}

/// Frees a route made by `route_new`. Requests in flight keep their own reference.
///
/// # Safety
/// `route` is NULL or a pointer from `route_new` not freed before.
/// # Panics
/// Never.
#[no_mangle]
pub unsafe extern "C" fn awsl_route_free(route: *mut AwslRoute) {
    if route.is_null() {
        return;
    }
    guard(|| {
        // SAFETY: the caller's contract: `route` came from `Box::into_raw` in
        // `AwslRoute::into_raw` and is freed only once.
        drop(unsafe { Box::from_raw(route) });
        LIVE.fetch_sub(1, Ordering::Relaxed);
        super::AWSL_OK
    });
}
