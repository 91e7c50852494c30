//! loom models of the hand-off between the nginx thread and the worker's runtime
//! (src/bridge/): every interleaving of the threads, up to `LOOM_MAX_PREEMPTIONS`
//! preemptions, is run. A lost wake-up shows as a deadlock (the runtime parked for
//! ever), which loom reports as a failure.

use std::future::Future;
use std::pin::pin;
use std::sync::Arc as StdArc;
use std::task::{Context, Wake, Waker};

use loom::sync::{Arc, Condvar, Mutex};
use loom::thread;

use aws_lambda_native_loom::queue::SubmitQueue;
use aws_lambda_native_loom::tickets::{Outcome, Peek, Tickets};

/// The runtime thread's driver, as far as parking goes: a wake sets `woken` (kept
/// until the next park consumes it) and wakes the parked thread.
#[derive(Default)]
struct Driver {
    woken: Mutex<bool>,
    cond: Condvar,
}

impl Driver {
    fn park(&self) {
        let mut woken = self.woken.lock().unwrap();
        while !*woken {
            woken = self.cond.wait(woken).unwrap();
        }
        *woken = false;
    }
}

/// The waker of the consumer task: it unparks the runtime's driver.
struct Unpark(Arc<Driver>);

impl Wake for Unpark {
    fn wake(self: StdArc<Self>) {
        *self.0.woken.lock().unwrap() = true;
        self.0.cond.notify_one();
    }
}

/// The runtime thread as tokio's current-thread scheduler runs the consumer: poll it;
/// while it is pending, run the park hook, park (a wake since the last park makes this
/// return at once), and run the unpark hook. Returns the jobs in the order received.
fn runtime(q: &SubmitQueue<u32>, jobs: usize) -> Vec<u32> {
    let driver = Arc::new(Driver::default());
    let waker = Waker::from(StdArc::new(Unpark(driver.clone())));
    let mut cx = Context::from_waker(&waker);
    let mut got = Vec::new();
    while got.len() < jobs {
        let mut batch = Vec::new();
        {
            let mut next = pin!(q.next_batch(&mut batch));
            while next.as_mut().poll(&mut cx).is_pending() {
                q.on_park();
                driver.park();
                q.on_unpark();
            }
        }
        got.append(&mut batch);
    }
    got
}

#[test]
fn a_submit_while_the_runtime_parks_is_not_lost() {
    loom::model(|| {
        let q = Arc::new(SubmitQueue::default());
        let nginx = {
            let q = q.clone();
            thread::spawn(move || {
                q.push(1);
                q.push(2);
            })
        };
        assert_eq!(runtime(&q, 2), [1, 2]);
        nginx.join().expect("nginx thread");
    });
}

#[test]
fn submits_from_two_threads_are_all_served() {
    // Not how nginx submits (one thread per worker), but the queue must not depend on it.
    loom::model(|| {
        let q = Arc::new(SubmitQueue::default());
        let producers: Vec<_> = (1..=2)
            .map(|job| {
                let q = q.clone();
                thread::spawn(move || q.push(job))
            })
            .collect();
        let mut got = runtime(&q, 2);
        got.sort_unstable();
        assert_eq!(got, [1, 2]);
        for p in producers {
            p.join().expect("producer");
        }
    });
}

fn status(tickets: &Tickets, id: u32) -> Option<u16> {
    match tickets.peek(id) {
        Peek::Done(
            Outcome::Error { status, .. }
            | Outcome::Response { status, .. }
            | Outcome::Stream { status, .. },
        ) => Some(*status),
        // The models complete tickets with whole outcomes only.
        Peek::Pending | Peek::Streaming => Some(0),
        Peek::Unknown => None,
    }
}

#[test]
fn a_completion_racing_a_cancellation_leaves_nothing_behind() {
    loom::model(|| {
        let tickets = Arc::new(Mutex::new(Tickets::default()));
        let id = tickets.lock().unwrap().try_open().expect("open");
        let runtime = {
            let tickets = tickets.clone();
            thread::spawn(move || {
                tickets
                    .lock()
                    .unwrap()
                    .complete(id, Outcome::error(502, "the answer"))
            })
        };
        // Lua gave up waiting (client gone, timeout).
        let cancelled = tickets.lock().unwrap().cancel(id);
        let announced = runtime.join().expect("runtime thread");
        assert!(cancelled, "a pending or finished ticket can be cancelled");
        let tickets = tickets.lock().unwrap();
        assert!(tickets.is_empty(), "the outcome is dropped either way");
        // Announced on the pump only when the cancellation came after the completion.
        let _ = announced;
    });
}

#[test]
fn a_runtime_that_dies_racing_a_cancellation_and_a_take() {
    loom::model(|| {
        let tickets = Arc::new(Mutex::new(Tickets::default()));
        let (a, b) = {
            let mut t = tickets.lock().unwrap();
            (t.try_open().expect("open"), t.try_open().expect("open"))
        };
        let runtime = {
            let tickets = tickets.clone();
            thread::spawn(move || {
                tickets
                    .lock()
                    .unwrap()
                    .complete(a, Outcome::error(502, "the answer"));
                // The runtime dies: what it still held answers 503.
                tickets
                    .lock()
                    .unwrap()
                    .stop(|| Outcome::error(503, "stopped"));
            })
        };
        tickets.lock().unwrap().cancel(a);
        let taken = {
            let mut t = tickets.lock().unwrap();
            let s = status(&t, b);
            if s != Some(0) {
                t.remove(b);
            }
            s
        };
        runtime.join().expect("runtime thread");
        let t = tickets.lock().unwrap();
        assert_eq!(status(&t, a), None, "the cancelled ticket is gone");
        match taken {
            Some(0) => assert_eq!(status(&t, b), Some(503), "still held: answered 503"),
            other => {
                assert_eq!(other, Some(503));
                assert_eq!(status(&t, b), None, "taken once");
            }
        }
    });
}

#[test]
fn a_ticket_taken_and_a_new_one_opened_while_a_late_completion_arrives() {
    loom::model(|| {
        let tickets = Arc::new(Mutex::new(Tickets::default()));
        let a = tickets.lock().unwrap().try_open().expect("open");
        let runtime = {
            let tickets = tickets.clone();
            thread::spawn(move || {
                let first = tickets
                    .lock()
                    .unwrap()
                    .complete(a, Outcome::error(502, "the answer"));
                // A second completion of the same ticket (a task's guard, say).
                let again = tickets
                    .lock()
                    .unwrap()
                    .complete(a, Outcome::error(500, "a duplicate"));
                (first, again)
            })
        };
        // Lua waits for the outcome, takes it, and submits the next request.
        let took = loop {
            let mut t = tickets.lock().unwrap();
            if let Some(s) = status(&t, a).filter(|s| *s != 0) {
                t.remove(a);
                break s;
            }
            drop(t);
            thread::yield_now();
        };
        let b = tickets.lock().unwrap().try_open().expect("open");
        let (first, again) = runtime.join().expect("runtime thread");
        assert_eq!(took, 502, "the first completion is the one taken");
        assert!(first && !again, "a ticket completes once");
        assert_ne!(a, b, "a taken ticket's id is not handed out again at once");
        let t = tickets.lock().unwrap();
        assert_eq!(status(&t, a), None);
        assert_eq!(status(&t, b), Some(0), "the new ticket is untouched");
    });
}

#[test]
fn a_submit_racing_the_runtimes_death_is_answered_or_refused() {
    loom::model(|| {
        let tickets = Arc::new(Mutex::new(Tickets::default()));
        let runtime = {
            let tickets = tickets.clone();
            thread::spawn(move || {
                tickets
                    .lock()
                    .unwrap()
                    .stop(|| Outcome::error(503, "stopped"));
            })
        };
        // Two submits from nginx while the runtime dies.
        let first = tickets.lock().unwrap().try_open();
        let second = tickets.lock().unwrap().try_open();
        runtime.join().expect("runtime thread");
        assert!(
            first.is_some() || second.is_none(),
            "once refused, refused until a new runtime"
        );
        let mut t = tickets.lock().unwrap();
        for id in [first, second].into_iter().flatten() {
            assert_eq!(status(&t, id), Some(503), "an opened ticket is answered");
        }
        assert_eq!(t.try_open(), None);
        t.restart();
        let next = t.try_open().expect("a new runtime opens tickets");
        assert_eq!(status(&t, next), Some(0));
    });
}
