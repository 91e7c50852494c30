//! The park-aware submit queue between the nginx thread and the worker's runtime.
//!
//! Calling tokio's `Handle::spawn` from the nginx thread wakes the runtime's driver on
//! every request (one eventfd write each, even while the runtime is busy; DESIGN.md).
//! Instead jobs are pushed onto a plain vector and the runtime is woken only when its
//! thread is parked. The runtime's park hook re-checks the queue, so no wake-up is lost:
//!
//! - producer: push under the lock, then read `parked`; if set, notify.
//! - park hook: set `parked`, then look at the queue under the lock; if not empty, notify.
//!
//! Either the producer sees `parked` (it notifies) or the hook sees the job (it
//! notifies): the lock orders the two critical sections and `parked` is SeqCst.
//! A notify from the park hook schedules the consumer task on the runtime thread,
//! and tokio's current-thread scheduler then skips the park.
//!
//! `loom/` model-checks this protocol (see `loom/tests/model.rs`).

use super::sync::{AtomicBool, Mutex, Notify, Ordering};

pub struct SubmitQueue<T> {
    jobs: Mutex<Vec<T>>,
    parked: AtomicBool,
    notify: Notify,
}

impl<T> Default for SubmitQueue<T> {
    fn default() -> Self {
        Self {
            jobs: Mutex::new(Vec::new()),
            parked: AtomicBool::new(false),
            notify: Notify::new(),
        }
    }
}

impl<T> SubmitQueue<T> {
    /// Called from the nginx thread: never blocks on the runtime, and makes a
    /// syscall only when the runtime thread sleeps.
    pub fn push(&self, job: T) {
        self.jobs.lock().push(job);
        if self.parked.load(Ordering::SeqCst) {
            self.notify.notify_one();
        }
    }

    /// The runtime's `on_thread_park` hook.
    pub fn on_park(&self) {
        self.parked.store(true, Ordering::SeqCst);
        if !self.jobs.lock().is_empty() {
            self.notify.notify_one();
        }
    }

    /// Jobs waiting for the runtime (for the stats).
    pub fn depth(&self) -> usize {
        self.jobs.lock().len()
    }

    /// The runtime's `on_thread_unpark` hook.
    pub fn on_unpark(&self) {
        self.parked.store(false, Ordering::SeqCst);
    }

    /// Waits until jobs are queued and moves all of them into `batch` (which must be
    /// empty; its capacity is reused).
    pub async fn next_batch(&self, batch: &mut Vec<T>) {
        loop {
            {
                let mut jobs = self.jobs.lock();
                if !jobs.is_empty() {
                    std::mem::swap(&mut *jobs, batch);
                    return;
                }
            }
            self.notify.notified().await;
        }
    }

    /// Whether the producer side currently believes the runtime is parked.
    #[cfg(test)]
    pub fn is_parked(&self) -> bool {
        self.parked.load(Ordering::SeqCst)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::time::Duration;

    fn runtime(q: &Arc<SubmitQueue<u32>>) -> tokio::runtime::Runtime {
        let (park, unpark) = (q.clone(), q.clone());
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .on_thread_park(move || park.on_park())
            .on_thread_unpark(move || unpark.on_unpark())
            .build()
            .expect("runtime")
    }

    // One producer pushing one job at a time and waiting for it: the runtime parks
    // between every job, the case where a lost wake-up would hang.
    #[test]
    fn no_lost_wakeup_when_runtime_parks_between_jobs() {
        let q: Arc<SubmitQueue<u32>> = Arc::new(SubmitQueue::default());
        let (tx, rx) = std::sync::mpsc::channel();
        let rt = runtime(&q);
        let consumer = q.clone();
        let thread = std::thread::spawn(move || {
            rt.block_on(async move {
                let mut batch = Vec::new();
                loop {
                    consumer.next_batch(&mut batch).await;
                    for job in batch.drain(..) {
                        if job == u32::MAX {
                            return;
                        }
                        tx.send(job).expect("send");
                    }
                }
            })
        });
        for i in 0..20_000u32 {
            q.push(i);
            let got = rx
                .recv_timeout(Duration::from_secs(5))
                .expect("lost wake-up");
            assert_eq!(got, i);
        }
        q.push(u32::MAX);
        thread.join().expect("join");
    }

    #[test]
    fn batches_and_parks() {
        let q: Arc<SubmitQueue<u32>> = Arc::new(SubmitQueue::default());
        let rt = runtime(&q);
        for i in 0..100 {
            q.push(i);
        }
        let consumer = q.clone();
        let batch = rt.block_on(async move {
            let mut batch = Vec::new();
            consumer.next_batch(&mut batch).await;
            batch
        });
        assert_eq!(
            batch.len(),
            100,
            "everything queued before comes as one batch"
        );
        // An idle runtime parks, and producers can see it.
        let sleeper = std::thread::spawn(move || {
            rt.block_on(async { tokio::time::sleep(Duration::from_millis(300)).await });
        });
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while !q.is_parked() && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(1));
        }
        assert!(q.is_parked(), "the park hook sets the flag");
        sleeper.join().expect("join");
    }
}
