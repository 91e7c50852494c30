//! `src/bridge/queue.rs` and `src/bridge/tickets.rs`, compiled against loom (see
//! `sync`). The models are in `tests/model.rs`.

mod sync;

#[path = "../../src/bridge/queue.rs"]
pub mod queue;
#[path = "../../src/bridge/tickets.rs"]
pub mod tickets;

pub use sync::Notify;
