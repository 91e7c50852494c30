//! loom's primitives under the names `src/bridge/sync.rs` gives the real ones.
//!
//! tokio's `Notify` cannot run under loom, so this is a model of the part the queue
//! relies on: `notify_one` wakes the waiting `notified()` future, or, with none waiting,
//! stores one permit that the next `notified()` takes at once.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};

pub(crate) use loom::sync::atomic::{AtomicBool, Ordering};

/// parking_lot's API (no poisoning) over loom's mutex.
pub(crate) struct Mutex<T>(loom::sync::Mutex<T>);

impl<T> Mutex<T> {
    pub(crate) fn new(value: T) -> Self {
        Self(loom::sync::Mutex::new(value))
    }

    pub(crate) fn lock(&self) -> loom::sync::MutexGuard<'_, T> {
        self.0.lock().expect("not poisoned")
    }
}

/// A permit, and the waker of the one task that waits (the runtime's consumer).
pub struct Notify(loom::sync::Mutex<(bool, Option<Waker>)>);

impl Default for Notify {
    fn default() -> Self {
        Self::new()
    }
}

impl Notify {
    pub fn new() -> Self {
        Self(loom::sync::Mutex::new((false, None)))
    }

    pub fn notify_one(&self) {
        let waker = {
            let mut state = self.0.lock().expect("not poisoned");
            state.0 = true;
            state.1.take()
        };
        if let Some(waker) = waker {
            waker.wake();
        }
    }

    pub fn notified(&self) -> Notified<'_> {
        Notified(self)
    }
}

pub struct Notified<'a>(&'a Notify);

impl Future for Notified<'_> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let mut state = self.0 .0.lock().expect("not poisoned");
        if std::mem::take(&mut state.0) {
            Poll::Ready(())
        } else {
            state.1 = Some(cx.waker().clone());
            Poll::Pending
        }
    }
}
