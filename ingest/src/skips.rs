//! Counting skipped and ignored records across threads, logging the first few messages of each
//! reason, and turning the first skip into an error under `--strict`.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::IngestError;
use crate::readers::Skip;

/// Messages logged at `warn` per reason; later ones go to `debug` so a bad crawl cannot flood.
const WARN_PER_REASON: u64 = 5;

#[derive(Debug, Default)]
struct Counts {
    skipped: BTreeMap<String, u64>,
    ignored: BTreeMap<String, u64>,
    examples: BTreeMap<String, String>,
}

/// Shared skip accounting. The mutex is taken once per skipped record, which is rare next to
/// the documents that flow without it.
#[derive(Debug, Default)]
pub struct SkipLog {
    strict: bool,
    counts: Mutex<Counts>,
    abort: AtomicBool,
}

impl SkipLog {
    pub fn new(strict: bool) -> SkipLog {
        SkipLog {
            strict,
            ..SkipLog::default()
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Counts> {
        // A panic elsewhere cannot leave the counts inconsistent: keep counting.
        self.counts
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Counts `skip`; under `--strict` returns the error that ends the run.
    pub fn skip(&self, skip: Skip) -> Result<(), IngestError> {
        let n = {
            let mut counts = self.lock();
            let n = counts.skipped.entry(skip.reason.to_owned()).or_insert(0);
            *n += 1;
            let n = *n;
            counts
                .examples
                .entry(skip.reason.to_owned())
                .or_insert_with(|| skip.message.clone());
            n
        };
        if self.strict {
            self.abort.store(true, Ordering::SeqCst);
            return Err(IngestError::Strict(format!(
                "{} ({})",
                skip.message, skip.reason
            )));
        }
        if n <= WARN_PER_REASON {
            tracing::warn!(reason = skip.reason, "skipped: {}", skip.message);
        } else {
            tracing::debug!(reason = skip.reason, "skipped: {}", skip.message);
        }
        Ok(())
    }

    /// Adds `n` skips of `reason` found after the first pass (not subject to `--strict`).
    pub fn add_skipped(&self, reason: &str, n: u64) {
        if n > 0 {
            *self.lock().skipped.entry(reason.to_owned()).or_insert(0) += n;
        }
    }

    pub fn ignore(&self, reason: &str) {
        *self.lock().ignored.entry(reason.to_owned()).or_insert(0) += 1;
    }

    /// Asks every stage to stop (strict failure or a fatal error elsewhere).
    pub fn request_abort(&self) {
        self.abort.store(true, Ordering::SeqCst);
    }

    pub fn aborted(&self) -> bool {
        self.abort.load(Ordering::SeqCst)
    }

    pub fn skipped(&self) -> BTreeMap<String, u64> {
        self.lock().skipped.clone()
    }

    pub fn ignored(&self) -> BTreeMap<String, u64> {
        self.lock().ignored.clone()
    }

    /// The first message of each skip reason.
    pub fn examples(&self) -> BTreeMap<String, String> {
        self.lock().examples.clone()
    }
}
