//! A model of `src/stream.rs`'s reader under the name `tickets.rs` uses
//! (`super::stream`): the ticket table only stores a stream's reader, asks it for the
//! next piece, fails it when the runtime stops, and drops it (which cancels the stream).
//! The channel behind it runs on tokio, which cannot run under loom; the models check
//! the table's lock protocol, not the stream.

use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::sync::Mutex;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum End {
    Done,
    Failed(String),
}

#[derive(Debug, PartialEq, Eq)]
pub enum Next {
    Chunk(Bytes),
    Again,
    End(End),
}

/// A stream that has sent nothing yet; `fail` ends it.
pub struct Reader(Mutex<Option<End>>);

impl std::fmt::Debug for Reader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Reader")
    }
}

impl Reader {
    pub fn next(&self) -> Next {
        match self.0.lock().clone() {
            Some(end) => Next::End(end),
            None => Next::Again,
        }
    }

    pub fn fail(&self, cause: String) {
        self.0.lock().get_or_insert(End::Failed(cause));
    }

    pub fn head_taken(&self) {}

    pub fn abandoned(&self, _now: Instant, _max: Duration) -> bool {
        false
    }
}
