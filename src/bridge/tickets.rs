//! Tickets: one per submitted request, from submit until Lua takes the outcome.
//!
//! A ticket nobody takes (the client went away, Lua gave up waiting) must not leak:
//! Lua cancels it when it stops waiting, and outcomes left untaken are expired.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use bytes::Bytes;

// `super::stream` is `crate::stream`; under loom (loom/src/lib.rs), a model of it.
use super::stream::{Next, Reader};

/// What Lua gets back for a ticket.
#[derive(Debug)]
pub enum Outcome {
    /// The function answered: status, response headers as `name:value\n` lines, body,
    /// and a message for the error log at info level (the function's log tail).
    Response {
        status: u16,
        head: Vec<u8>,
        body: Bytes,
        log: Option<String>,
    },
    /// The request failed: the status to answer, headers to answer it with (as
    /// `name:value\n` lines: `Retry-After` of a throttled call or of a credential
    /// outage), a message for the error
    /// log (never containing a secret), and as above an info-level message.
    Error {
        status: u16,
        head: Vec<u8>,
        message: String,
        log: Option<String>,
    },
    /// The function answered and its body is still coming: status and head as for
    /// `Response`, the body's first bytes, and the reader of the rest (the function's
    /// log, if any, comes at the stream's end). The reader is there until the head is
    /// taken (`Tickets::take` moves it into the ticket, which then stays open for
    /// `Tickets::next` until the stream ends).
    Stream {
        status: u16,
        head: Vec<u8>,
        first: Bytes,
        reader: Option<Reader>,
    },
}

impl Outcome {
    pub fn error(status: u16, message: impl Into<String>) -> Self {
        Outcome::Error {
            status,
            head: Vec::new(),
            message: message.into(),
            log: None,
        }
    }
}

enum Slot {
    Pending {
        cancelled: bool,
    },
    Done {
        outcome: Outcome,
        at: Instant,
    },
    /// A streamed answer whose head was lent: Lua reads the rest with `next`.
    Streaming(Reader),
}

/// A stream whose bytes or end waited this long for a Lua side that no longer asks is
/// dropped (its request went away without cancelling). Longer than nginx's default
/// `send_timeout` (60 s), which bounds each of Lua's flushes to a client that reads.
pub(crate) const STREAM_ABANDONED_AFTER: Duration = Duration::from_secs(300);

/// Ticket ids are u32 so that Lua handles them as plain numbers.
#[derive(Default)]
pub struct Tickets {
    slots: HashMap<u32, Slot>,
    next: u32,
    /// The runtime serving this table stopped: no ticket opens until `restart`.
    stopped: bool,
}

/// The result of looking at a ticket.
pub enum Peek<'a> {
    Unknown,
    Pending,
    Done(&'a Outcome),
    Streaming,
}

impl Tickets {
    /// A new ticket, or `None` once the runtime serving the table has stopped (`stop`):
    /// checked under the table's lock, so a ticket is either opened before the stop
    /// (and completed by it) or not at all.
    pub fn try_open(&mut self) -> Option<u32> {
        (!self.stopped).then(|| self.open())
    }

    fn open(&mut self) -> u32 {
        loop {
            self.next = self.next.wrapping_add(1);
            let id = self.next;
            // 0 is the pump's heartbeat and u32::MAX its log marker.
            if id != 0 && id != u32::MAX && !self.slots.contains_key(&id) {
                self.slots.insert(id, Slot::Pending { cancelled: false });
                return id;
            }
        }
    }

    /// Stores the outcome. Returns whether somebody is still waiting for it.
    pub fn complete(&mut self, id: u32, outcome: Outcome) -> bool {
        match self.slots.get(&id) {
            Some(Slot::Pending { cancelled: false }) => {
                self.slots.insert(
                    id,
                    Slot::Done {
                        outcome,
                        at: Instant::now(),
                    },
                );
                true
            }
            Some(Slot::Pending { cancelled: true }) => {
                self.slots.remove(&id);
                false
            }
            _ => false,
        }
    }

    pub fn peek(&self, id: u32) -> Peek<'_> {
        match self.slots.get(&id) {
            None => Peek::Unknown,
            Some(Slot::Pending { .. }) => Peek::Pending,
            Some(Slot::Done { outcome, .. }) => Peek::Done(outcome),
            Some(Slot::Streaming(_)) => Peek::Streaming,
        }
    }

    pub fn remove(&mut self, id: u32) {
        self.slots.remove(&id);
    }

    /// The outcome of a finished ticket, which is forgotten; `None` (and nothing
    /// changes) when it is unknown or still pending. A streamed outcome comes without
    /// its reader (`Outcome::Stream`'s `reader` is then `None`): the ticket keeps it,
    /// open for `next` until the stream ends.
    pub fn take(&mut self, id: u32) -> Option<Outcome> {
        if !matches!(self.slots.get(&id), Some(Slot::Done { .. })) {
            return None;
        }
        let Some(Slot::Done { mut outcome, .. }) = self.slots.remove(&id) else {
            return None;
        };
        if let Outcome::Stream { reader, .. } = &mut outcome {
            if let Some(reader) = reader.take() {
                reader.head_taken();
                self.slots.insert(id, Slot::Streaming(reader));
            }
        }
        Some(outcome)
    }

    /// The next piece of a streamed answer whose head was taken (`None`: the ticket is
    /// not streaming). The ticket is forgotten once the stream has ended.
    pub fn next(&mut self, id: u32) -> Option<Next> {
        let Some(Slot::Streaming(reader)) = self.slots.get(&id) else {
            return None;
        };
        let next = reader.next();
        if let Next::End(_) = next {
            self.slots.remove(&id);
        }
        Some(next)
    }

    /// Lua no longer waits: drop the outcome now or as soon as it arrives.
    pub fn cancel(&mut self, id: u32) -> bool {
        match self.slots.get_mut(&id) {
            Some(Slot::Pending { cancelled }) => {
                *cancelled = true;
                true
            }
            // Dropping a reader cancels its stream: the function's connection closes.
            Some(Slot::Done { .. } | Slot::Streaming(_)) => {
                self.slots.remove(&id);
                true
            }
            None => false,
        }
    }

    /// The runtime serving the table stopped: completes every pending ticket with
    /// `outcome()`, drops the cancelled ones, and opens no more tickets until
    /// `restart`. Returns how many were completed.
    pub fn stop(&mut self, outcome: impl Fn() -> Outcome) -> usize {
        self.stopped = true;
        self.fail_pending(outcome)
    }

    /// A new runtime serves the table (outcomes left by the old one stay takeable).
    pub fn restart(&mut self) {
        self.stopped = false;
    }

    fn fail_pending(&mut self, outcome: impl Fn() -> Outcome) -> usize {
        let now = Instant::now();
        let mut failed = 0;
        self.slots.retain(|_, slot| match slot {
            Slot::Pending { cancelled: true } => false,
            Slot::Pending { cancelled: false } => {
                *slot = Slot::Done {
                    outcome: outcome(),
                    at: now,
                };
                failed += 1;
                true
            }
            // The stream's task died with the runtime: its reader ends with the cause,
            // whether Lua reads it already or has yet to take the head.
            Slot::Streaming(reader)
            | Slot::Done {
                outcome:
                    Outcome::Stream {
                        reader: Some(reader),
                        ..
                    },
                ..
            } => {
                if let Outcome::Error { message, .. } = outcome() {
                    reader.fail(message);
                }
                true
            }
            Slot::Done { .. } => true,
        });
        failed
    }

    /// Drops outcomes that were not taken within `max_age`, and streams abandoned for
    /// [`STREAM_ABANDONED_AFTER`].
    pub fn expire(&mut self, now: Instant, max_age: Duration) -> usize {
        let before = self.slots.len();
        self.slots.retain(|_, slot| match slot {
            Slot::Done { at, .. } => now.duration_since(*at) < max_age,
            Slot::Pending { .. } => true,
            Slot::Streaming(reader) => !reader.abandoned(now, STREAM_ABANDONED_AFTER),
        });
        before - self.slots.len()
    }

    pub fn len(&self) -> usize {
        self.slots.len()
    }

    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lifecycle() {
        let mut t = Tickets::default();
        let a = t.open();
        let b = t.open();
        assert_ne!(a, b);
        assert!(matches!(t.peek(a), Peek::Pending));
        assert!(t.complete(a, Outcome::error(504, "x")));
        assert!(matches!(t.peek(a), Peek::Done(_)));
        t.remove(a);
        assert!(matches!(t.peek(a), Peek::Unknown));
        // Cancelled before completion: the outcome is dropped on arrival.
        assert!(t.cancel(b));
        assert!(!t.complete(b, Outcome::error(502, "y")));
        assert!(t.is_empty());
    }

    #[test]
    fn untaken_outcomes_expire() {
        let mut t = Tickets::default();
        let a = t.open();
        let _pending = t.open();
        t.complete(a, Outcome::error(502, "x"));
        let later = Instant::now() + Duration::from_secs(120);
        assert_eq!(t.expire(later, Duration::from_secs(60)), 1);
        assert_eq!(t.len(), 1, "pending tickets are not expired");
    }

    #[test]
    fn stopping_fails_pending_tickets_and_keeps_finished_ones() {
        let mut t = Tickets::default();
        let done = t.open();
        let pending = t.open();
        let cancelled = t.open();
        t.complete(done, Outcome::error(502, "finished before"));
        t.cancel(cancelled);
        assert_eq!(t.stop(|| Outcome::error(503, "stopped")), 1);
        assert_eq!(t.try_open(), None, "no ticket opens once stopped");
        assert_eq!(t.len(), 2, "the cancelled ticket is gone");
        let status = |p: Peek<'_>| match p {
            Peek::Done(Outcome::Error { status, .. }) => *status,
            _ => 0,
        };
        assert_eq!(status(t.peek(done)), 502);
        assert_eq!(status(t.peek(pending)), 503);
        assert!(
            !t.complete(pending, Outcome::error(500, "late")),
            "completed once"
        );
        assert_eq!(status(t.peek(pending)), 503);
        t.restart();
        assert!(t.try_open().is_some());
    }

    /// A ticket completed with a streamed answer; the channel's producer end is kept
    /// by the caller, as the pump would keep it.
    fn streamed(t: &mut Tickets) -> (u32, crate::stream::Channel) {
        let id = t.open();
        let (chan, reader) = crate::stream::channel();
        let outcome = Outcome::Stream {
            status: 200,
            head: Vec::new(),
            first: Bytes::from_static(b"first"),
            reader: Some(reader),
        };
        assert!(t.complete(id, outcome));
        (id, chan)
    }

    #[test]
    fn a_streamed_outcome_keeps_its_ticket_until_the_stream_ends() {
        let mut t = Tickets::default();
        let (id, _chan) = streamed(&mut t);
        assert!(
            t.next(id).is_none(),
            "not streaming before its head is taken"
        );
        assert!(matches!(t.take(id), Some(Outcome::Stream { .. })));
        assert!(matches!(t.peek(id), Peek::Streaming));
        assert!(t.take(id).is_none(), "the head is taken once");
        assert_eq!(t.next(id), Some(Next::Again));
        // Abandoned only once something waited for a Lua side that stopped asking.
        let later = Instant::now() + STREAM_ABANDONED_AFTER * 2;
        assert_eq!(t.expire(later, Duration::from_secs(60)), 0);
        assert!(
            t.cancel(id),
            "cancelling drops the reader, which cancels the stream"
        );
        assert!(t.is_empty());
    }

    #[test]
    fn stopping_fails_streams_with_the_cause_whether_their_head_was_taken_or_not() {
        let mut t = Tickets::default();
        let (taken, _chan1) = streamed(&mut t);
        drop(t.take(taken));
        let (untaken, _chan2) = streamed(&mut t);
        t.stop(|| Outcome::error(503, "stopped"));
        assert!(matches!(t.take(untaken), Some(Outcome::Stream { .. })));
        for id in [taken, untaken] {
            assert_eq!(
                t.next(id),
                Some(Next::End(crate::stream::End::Failed("stopped".into()))),
                "ends at once, not after stream_idle_timeout"
            );
        }
        assert!(t.is_empty(), "forgotten at their end");
    }

    #[test]
    fn ids_skip_zero_and_live_ids() {
        let mut t = Tickets {
            next: u32::MAX - 2,
            ..Default::default()
        };
        let a = t.open();
        let b = t.open();
        assert_eq!(a, u32::MAX - 1);
        assert_eq!(b, 1);
    }
}
