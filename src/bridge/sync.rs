//! The primitives the submit queue is built on, in one place so that the model check
//! (`loom/`, which compiles `queue.rs` and `tickets.rs` on their own) can put loom's in
//! their stead.

pub(crate) use parking_lot::Mutex;
pub(crate) use std::sync::atomic::{AtomicBool, Ordering};
pub(crate) use tokio::sync::Notify;
