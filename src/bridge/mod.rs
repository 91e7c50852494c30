//! The per-worker runtime and its hand-off to the nginx thread (DESIGN.md, "Waiting
//! without blocking the worker").
//!
//! Each nginx worker gets one current-thread tokio runtime on a dedicated thread.
//! Requests arrive through the park-aware [`queue::SubmitQueue`]; each gets a ticket.
//! When a request completes, its ticket id is appended to a buffer that one task writes,
//! in a single `write`, to a unix socket that the worker's Lua pump reads; the pump
//! posts the semaphore the request coroutine waits on. Nothing here blocks nginx.
//!
//! fork: nginx may load the library in the master and then fork. A runtime made in
//! another process is dead here, so the worker state is keyed by the process id and an
//! inherited one is leaked, never dropped (dropping would join threads that do not exist).
//!
//! A runtime thread that stops (a panic outside the request tasks, one of its own
//! tasks ending) marks its worker dead with the cause and completes the tickets it held
//! with 503. The next submit fails at once with that cause ([`Worker::submit`]), and
//! [`start`] then starts a new runtime for the worker, which takes over the ticket table
//! (outcomes not yet taken can still be taken).

mod queue;
mod sync;
pub mod tickets;

use std::os::unix::fs::PermissionsExt;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use parking_lot::{Mutex, RwLock};
use tokio::io::AsyncWriteExt;
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::Notify;

use crate::client::{self, Pool};
use crate::creds::Providers;
use crate::invoke::{self, Incoming, Route};
use crate::stats::{self, Snapshot};
// For `tickets`, which names it `super::stream` (the loom build gives it a model).
use crate::stream;
use queue::SubmitQueue;
use tickets::{Outcome, Tickets};

/// Outcomes that nobody took within this time are dropped.
const UNTAKEN_MAX_AGE: Duration = Duration::from_secs(60);
/// Untaken outcomes are looked for this often (the pool is swept more often, every
/// `client::SWEEP_EVERY`, to keep to its grace period).
const EXPIRE_TICKETS_EVERY: Duration = Duration::from_secs(1);
/// An idle pump gets a heartbeat (ticket id 0) this often, so that its cosocket read
/// (timeout 60 s) never times out: lua-nginx-module logs every read timeout as an error.
const HEARTBEAT_EVERY: Duration = Duration::from_secs(20);
/// Written to the pump instead of a ticket id when log lines wait in `Providers`.
pub(crate) const LOG_MARKER: u32 = u32::MAX;
/// `AWSL_TEST_HOOKS=1` in the worker's environment when its runtime starts enables
/// [`Worker::kill_for_test`]. nginx passes a variable to its workers only when
/// nginx.conf names it (`env AWSL_TEST_HOOKS=1;`), so it cannot be on by accident.
const TEST_HOOKS_ENV: &str = "AWSL_TEST_HOOKS";

struct Job {
    ticket: u32,
    route: Arc<Route>,
    incoming: Incoming,
}

pub struct Worker {
    pid: u32,
    socket_path: PathBuf,
    queue: SubmitQueue<Job>,
    /// Shared with the runtime that replaces this one if it stops.
    tickets: Arc<Mutex<Tickets>>,
    completed: Mutex<Vec<u32>>,
    completed_notify: Notify,
    pool: Pool,
    providers: Arc<Providers>,
    /// The pump's socket was closed (worker exit): completions are no longer written,
    /// Lua polls for them instead.
    socket_closed: AtomicBool,
    close_socket: Notify,
    /// Why the runtime thread stopped; set once, under the tickets' lock.
    death: OnceLock<String>,
    /// Whether `AWSL_TEST_HOOKS=1` was set when this runtime started.
    test_hooks: bool,
    test_kill: Notify,
}

static WORKER: RwLock<Option<Arc<Worker>>> = RwLock::new(None);

/// Tests that start or stop this process's worker hold this, so they do not race.
#[cfg(test)]
pub(crate) static TEST_LOCK: Mutex<()> = Mutex::new(());

/// This process's id, cached: `getpid` is a system call, and `current()` runs twice
/// per request. A fork clears the cache in the child.
static PID: AtomicU32 = AtomicU32::new(0);

extern "C" fn forget_pid_in_child() {
    PID.store(0, Ordering::Relaxed);
    stats::WORKER.reset_after_fork();
}

fn pid() -> u32 {
    static AT_FORK: std::sync::Once = std::sync::Once::new();
    AT_FORK.call_once(|| {
        // SAFETY: registers a handler that only stores to an atomic.
        unsafe { libc::pthread_atfork(None, None, Some(forget_pid_in_child)) };
    });
    match PID.load(Ordering::Relaxed) {
        0 => {
            let pid = std::process::id();
            PID.store(pid, Ordering::Relaxed);
            pid
        }
        pid => pid,
    }
}

/// The worker state of this process, if started here.
pub fn current() -> Option<Arc<Worker>> {
    let pid = pid();
    WORKER.read().as_ref().filter(|w| w.pid == pid).cloned()
}

/// Starts this process's runtime and completion socket in `dir`, once per process, or
/// again after the runtime stopped. Returns the socket path for the Lua pump.
pub fn start(dir: &Path) -> Result<PathBuf, String> {
    if let Some(w) = current().filter(|w| !w.is_dead()) {
        return Ok(w.socket_path.clone());
    }
    let mut slot = WORKER.write();
    let pid = pid();
    let stopped = match slot.take() {
        Some(w) if w.pid == pid && !w.is_dead() => {
            let path = w.socket_path.clone();
            *slot = Some(w);
            return Ok(path);
        }
        Some(w) if w.pid == pid => Some(w),
        // Inherited across fork: its threads do not exist in this process.
        Some(inherited) => {
            std::mem::forget(inherited);
            None
        }
        None => None,
    };
    let tickets = stopped
        .as_ref()
        .map_or_else(Default::default, |w| w.tickets.clone());
    // Before the new runtime runs, so that its own death can stop the table again.
    tickets.lock().restart();
    match launch(dir, pid, tickets.clone()) {
        Ok(worker) => {
            let path = worker.socket_path.clone();
            *slot = Some(worker);
            Ok(path)
        }
        Err(e) => {
            // Keep the stopped one: its outcomes can still be taken, and no ticket opens.
            if stopped.is_some() {
                tickets.lock().stop(|| Outcome::error(503, e.clone()));
            }
            *slot = stopped;
            Err(e)
        }
    }
}

/// A new runtime thread and completion socket for this process.
fn launch(dir: &Path, pid: u32, tickets: Arc<Mutex<Tickets>>) -> Result<Arc<Worker>, String> {
    remove_stale_sockets(dir);
    let socket_path = dir.join(format!("aws-lambda-native-{pid}.sock"));
    let _ = std::fs::remove_file(&socket_path);
    let std_listener = std::os::unix::net::UnixListener::bind(&socket_path)
        .map_err(|e| format!("cannot listen on {}: {e}", socket_path.display()))?;
    // Only this worker (and root) may connect.
    let _ = std::fs::set_permissions(&socket_path, std::fs::Permissions::from_mode(0o600));
    std_listener
        .set_nonblocking(true)
        .map_err(|e| format!("cannot listen on {}: {e}", socket_path.display()))?;

    let worker = Arc::new(Worker {
        pid,
        socket_path: socket_path.clone(),
        queue: SubmitQueue::default(),
        tickets,
        completed: Mutex::new(Vec::new()),
        completed_notify: Notify::new(),
        pool: Pool::new(),
        providers: Arc::new(Providers::default()),
        socket_closed: AtomicBool::new(false),
        close_socket: Notify::new(),
        death: OnceLock::new(),
        // The crate's own unit tests kill the runtime without touching the environment.
        test_hooks: cfg!(test) || std::env::var_os(TEST_HOOKS_ENV).is_some_and(|v| v == "1"),
        test_kill: Notify::new(),
    });
    let (park, unpark) = (worker.clone(), worker.clone());
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .on_thread_park(move || park.queue.on_park())
        .on_thread_unpark(move || unpark.queue.on_unpark())
        .build()
        .map_err(|e| format!("cannot build the runtime: {e}"))?;
    let main = worker.clone();
    spawn_with_signals_blocked(move || {
        let w = main.clone();
        let ended = catch_unwind(AssertUnwindSafe(|| {
            runtime.block_on(async move {
                match UnixListener::from_std(std_listener) {
                    Ok(listener) => run(main, listener).await,
                    Err(e) => format!("its completion socket failed: {e}"),
                }
            })
        }));
        let cause = ended.unwrap_or_else(|panic| format!("it panicked: {}", panic_text(&*panic)));
        // Before the runtime goes: the guards of the request tasks it drops then find
        // their tickets already completed, with this cause rather than a plain 500.
        w.died(cause);
        drop(runtime);
    })
    .map_err(|e| format!("cannot start the runtime thread: {e}"))?;
    // Every start after this process's first is a runtime restart: the one count of
    // them, which `native.stats()` and the stats endpoints both read.
    stats::WORKER.runtime_started();
    Ok(worker)
}

/// The message of a panic's payload.
fn panic_text(payload: &(dyn std::any::Any + Send)) -> &str {
    payload
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("(no message)")
}

/// Closes this worker's completion socket and removes its file (worker exit, nothing
/// waiting on the pump). The pump's read ends, so nginx can let the worker go; the
/// runtime keeps serving the requests a gracefully exiting worker may still get, and
/// their outcomes can still be taken (Lua polls for them).
pub fn close_socket() {
    if let Some(w) = current() {
        w.socket_closed.store(true, Ordering::SeqCst);
        w.close_socket.notify_one();
        let _ = std::fs::remove_file(&w.socket_path);
    }
}

/// Signals go to nginx's own thread: the runtime threads block them all, or a signal
/// delivered to them would not interrupt nginx's event loop.
fn spawn_with_signals_blocked<F>(f: F) -> std::io::Result<()>
where
    F: FnOnce() + Send + 'static,
{
    // SAFETY: sigset_t is plain data; pthread_sigmask only reads and writes the sets.
    unsafe {
        let mut all: libc::sigset_t = std::mem::zeroed();
        let mut old: libc::sigset_t = std::mem::zeroed();
        libc::sigfillset(&mut all);
        libc::pthread_sigmask(libc::SIG_SETMASK, &all, &mut old);
        let spawned = std::thread::Builder::new()
            .name("aws-lambda-rt".into())
            .spawn(f);
        libc::pthread_sigmask(libc::SIG_SETMASK, &old, std::ptr::null_mut());
        spawned.map(|_| ())
    }
}

/// Sockets left by workers that died without cleaning up (kill -9, crash).
fn remove_stale_sockets(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name
            .to_str()
            .and_then(|n| n.strip_prefix("aws-lambda-native-"))
            .and_then(|n| n.strip_suffix(".sock"))
            .and_then(|n| n.parse::<libc::pid_t>().ok())
        else {
            continue;
        };
        // SAFETY: kill with signal 0 only checks that the process exists.
        let gone = unsafe { libc::kill(pid, 0) } != 0
            && std::io::Error::last_os_error().raw_os_error() == Some(libc::ESRCH);
        if gone {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

/// Serves the submit queue. Returns (or panics) only when the runtime can no longer
/// serve: one of its own tasks ended, which they never do while it is healthy.
async fn run(w: Arc<Worker>, listener: UnixListener) -> String {
    let mut completions = tokio::spawn(write_completions(w.clone(), listener));
    let mut housekeeping = tokio::spawn(housekeeping(w.clone()));
    let mut batch = Vec::new();
    loop {
        tokio::select! {
            biased;
            ended = &mut completions => return task_ended("the completion writer", ended),
            ended = &mut housekeeping => return task_ended("the housekeeping task", ended),
            () = w.test_kill.notified(), if w.test_hooks => {
                panic!("killed on purpose through the test hook ({TEST_HOOKS_ENV}=1)")
            }
            () = w.queue.next_batch(&mut batch) => {}
        }
        for job in batch.drain(..) {
            // Boxed: the call's future is about 3 KB, and tokio moves a task's future
            // by value (into its cell, and its stage when the output is stored and the
            // future dropped); boxed, each of those moves is a pointer.
            tokio::spawn(Box::pin(serve(w.clone(), job)));
        }
    }
}

fn task_ended(name: &str, ended: Result<(), tokio::task::JoinError>) -> String {
    match ended {
        Err(e) if e.is_panic() => format!("{name} panicked: {}", panic_text(&*e.into_panic())),
        Err(e) => format!("{name} ended: {e}"),
        Ok(()) => format!("{name} ended"),
    }
}

/// Completes the ticket with an error if the request task ends without an outcome
/// (it panicked, or the runtime shut down under it).
struct CompletionGuard {
    worker: Arc<Worker>,
    ticket: u32,
    done: bool,
}

impl CompletionGuard {
    fn complete(mut self, outcome: Outcome) {
        self.done = true;
        self.worker.complete(self.ticket, outcome);
    }
}

impl Drop for CompletionGuard {
    fn drop(&mut self) {
        if !self.done {
            self.worker.complete(
                self.ticket,
                Outcome::error(500, "the request was interrupted inside the plugin"),
            );
        }
    }
}

fn stopped_message(cause: &str) -> String {
    format!("the native runtime of this worker stopped: {cause}")
}

async fn serve(w: Arc<Worker>, job: Job) {
    let guard = CompletionGuard {
        worker: w.clone(),
        ticket: job.ticket,
        done: false,
    };
    // In flight until the outcome is there, so that it no longer counts once nginx
    // can see the answer.
    let (outcome, rest) = {
        let _in_flight = stats::WORKER.call_started();
        invoke::call(&w.pool, &w.providers, &job.route, job.incoming).await
    };
    guard.complete(outcome);
    if let Some(rest) = rest {
        // The body of a streamed answer, as Lua takes it; Lua waits on the pump for
        // the ticket's id when it found nothing.
        let ticket = job.ticket;
        let _streaming = stats::WORKER.stream_started();
        rest.run(|| w.wake(ticket)).await;
    }
}

async fn write_completions(w: Arc<Worker>, listener: UnixListener) {
    let mut pump: Option<UnixStream> = None;
    let mut pending: Vec<u8> = Vec::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                // The newest pump wins: an older one has died or is being replaced.
                if let Ok((stream, _)) = accepted {
                    pump = Some(stream);
                }
            }
            _ = w.completed_notify.notified() => {}
            _ = w.providers.log_ready.notified() => {
                pending.extend_from_slice(&LOG_MARKER.to_le_bytes());
            }
            _ = w.close_socket.notified() => break,
            _ = tokio::time::sleep(HEARTBEAT_EVERY), if pump.is_some() => {
                pending.extend_from_slice(&0u32.to_le_bytes());
            }
        }
        for id in w.completed.lock().drain(..) {
            pending.extend_from_slice(&id.to_le_bytes());
        }
        if pending.is_empty() {
            continue;
        }
        if let Some(stream) = pump.as_mut() {
            match stream.write_all(&pending).await {
                Ok(()) => pending.clear(),
                // Keep the ids for the next pump to connect.
                Err(_) => pump = None,
            }
        }
    }
    // Closing: the pump and the listener go; completions from now on are polled.
    drop(pump);
    drop(listener);
    loop {
        w.completed_notify.notified().await;
        w.completed.lock().clear();
    }
}

async fn housekeeping(w: Arc<Worker>) {
    let mut tick = tokio::time::interval(client::SWEEP_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut tickets_expired = Instant::now();
    loop {
        tick.tick().await;
        let now = Instant::now();
        w.pool.sweep(now);
        // The ticket table is shared with the nginx thread: scan it only once a second.
        if now.duration_since(tickets_expired) >= EXPIRE_TICKETS_EVERY {
            tickets_expired = now;
            w.tickets.lock().expire(now, UNTAKEN_MAX_AGE);
        }
    }
}

impl Worker {
    /// Queues a request; the caller waits for the ticket's id on the pump.
    ///
    /// # Errors
    /// The runtime thread has stopped: why, for the error log. Call [`start`] for a new
    /// one.
    pub fn submit(&self, route: Arc<Route>, incoming: Incoming) -> Result<u32, String> {
        // A ticket opened here is either served by a live runtime or completed by
        // `died` (both under the table's lock).
        let Some(ticket) = self.tickets.lock().try_open() else {
            let cause = self
                .death
                .get()
                .map_or("(no cause recorded)", String::as_str);
            return Err(stopped_message(cause));
        };
        self.queue.push(Job {
            ticket,
            route,
            incoming,
        });
        Ok(ticket)
    }

    fn complete(&self, ticket: u32, outcome: Outcome) {
        stats::WORKER.answered(match &outcome {
            Outcome::Response { status, .. }
            | Outcome::Error { status, .. }
            | Outcome::Stream { status, .. } => *status,
        });
        if self.tickets.lock().complete(ticket, outcome) {
            self.wake(ticket);
        }
    }

    /// Writes `ticket`'s id to the pump, which posts the semaphore Lua waits on: for
    /// its outcome, or for the next piece of a streamed answer.
    fn wake(&self, ticket: u32) {
        self.completed.lock().push(ticket);
        self.completed_notify.notify_one();
    }

    /// The runtime thread stopped: record why and complete its tickets with 503 (the
    /// Lua side wakes their waiters when it sees the runtime dead).
    fn died(&self, cause: String) {
        let mut tickets = self.tickets.lock();
        let message = stopped_message(&cause);
        let _ = self.death.set(cause);
        tickets.stop(|| Outcome::error(503, message.clone()));
    }

    /// Whether the runtime thread has stopped (then [`start`] starts a new one).
    pub fn is_dead(&self) -> bool {
        self.death.get().is_some()
    }

    /// Makes the runtime thread panic outside any request task, as a bug would: for
    /// tests of the recovery only, and refused unless `AWSL_TEST_HOOKS=1` was in the
    /// environment when the runtime started.
    pub fn kill_for_test(&self) -> Result<(), String> {
        if !self.test_hooks {
            return Err(format!(
                "test hooks are off ({TEST_HOOKS_ENV}=1 was not set when the runtime started)"
            ));
        }
        self.test_kill.notify_one();
        Ok(())
    }

    pub fn tickets(&self) -> &Mutex<Tickets> {
        &self.tickets
    }

    pub fn providers(&self) -> &Providers {
        &self.providers
    }

    /// This worker's stats: the process's counters and the runtime's queue, tickets
    /// and pool.
    pub fn stats(&self) -> Snapshot {
        let mut s = stats::WORKER.snapshot(self.pid);
        s.queue_depth = self.queue.depth() as u64;
        s.tickets = self.tickets.lock().len() as u64;
        s.endpoints.extend(self.pool.endpoints());
        s
    }
}

/// This process's stats, whether or not its runtime was started.
pub fn stats() -> Snapshot {
    current().map_or_else(|| stats::WORKER.snapshot(pid()), |w| w.stats())
}
