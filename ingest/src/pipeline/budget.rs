//! A byte budget shared by the stages of the first pass: a reader takes a batch's raw bytes from
//! it before sending the batch, and the scratch writer gives them back once the batch's tokens
//! are on disk. Queues and the re-order buffer together then hold at most the budget (plus one
//! batch larger than the whole budget, admitted alone so it cannot wait forever), whatever the
//! sizes of the documents.

use std::sync::{Condvar, Mutex};
use std::time::Duration;

/// Bytes in flight between the readers and the scratch writer.
#[derive(Debug)]
pub struct ByteBudget {
    limit: usize,
    in_use: Mutex<usize>,
    freed: Condvar,
}

impl ByteBudget {
    pub fn new(limit: usize) -> Self {
        ByteBudget {
            limit: limit.max(1),
            in_use: Mutex::new(0),
            freed: Condvar::new(),
        }
    }

    /// Takes `bytes`, waiting while the budget is exhausted. Gives up (returns `false`) once
    /// `stop()` is true: a failed stage must not leave a reader blocked.
    pub fn acquire(&self, bytes: usize, stop: &dyn Fn() -> bool) -> bool {
        let mut in_use = self
            .in_use
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        while *in_use > 0 && *in_use + bytes > self.limit {
            if stop() {
                return false;
            }
            in_use = match self.freed.wait_timeout(in_use, Duration::from_millis(50)) {
                Ok((guard, _)) => guard,
                Err(poisoned) => poisoned.into_inner().0,
            };
        }
        *in_use += bytes;
        true
    }

    pub fn release(&self, bytes: usize) {
        let mut in_use = self
            .in_use
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        *in_use = in_use.saturating_sub(bytes);
        self.freed.notify_all();
    }

    /// Bytes currently taken.
    #[cfg(test)]
    pub fn in_use(&self) -> usize {
        *self
            .in_use
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

    #[test]
    fn never_exceeds_the_limit_except_for_one_oversized_batch() {
        let budget = Arc::new(ByteBudget::new(100));
        let peak = Arc::new(AtomicUsize::new(0));
        let threads: Vec<_> = (0..4)
            .map(|t| {
                let (budget, peak) = (Arc::clone(&budget), Arc::clone(&peak));
                std::thread::spawn(move || {
                    for i in 0..200 {
                        let n = 10 + (i * 7 + t) % 50;
                        assert!(budget.acquire(n, &|| false));
                        peak.fetch_max(budget.in_use(), Ordering::SeqCst);
                        budget.release(n);
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert!(peak.load(Ordering::SeqCst) <= 100);
        // A batch over the limit is admitted once nothing else is in flight.
        assert!(budget.acquire(500, &|| false));
        budget.release(500);
    }

    #[test]
    fn a_stopped_run_does_not_block() {
        let budget = ByteBudget::new(10);
        assert!(budget.acquire(10, &|| false));
        let stop = AtomicBool::new(true);
        assert!(!budget.acquire(5, &|| stop.load(Ordering::SeqCst)));
    }
}
