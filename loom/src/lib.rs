//! `src/bridge/queue.rs` and `src/bridge/tickets.rs`, compiled against loom (see
//! `sync`, and `stream` for the streamed answers' reader the tickets hold). The models
//! are in `tests/model.rs`.

mod stream;
mod sync;

#[path = "../../src/bridge/queue.rs"]
pub mod queue;
#[path = "../../src/bridge/tickets.rs"]
pub mod tickets;

pub use sync::Notify;
