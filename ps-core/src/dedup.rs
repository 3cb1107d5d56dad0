//! Exactly-once pushes: which sequence numbers of each writer a partition has already applied.
//!
//! A writer numbers its pushes to one (model, shard) 1, 2, 3, ... so the applied set is almost
//! always "everything up to a watermark" plus the few in flight above it.

use std::collections::{BTreeSet, HashMap};

/// Above-watermark entries kept per writer before the oldest gap is given up on. A gap only stays
/// open when a writer abandoned a push after exhausting its retries (and reported the failure).
const MAX_AHEAD: usize = 1 << 16;

#[derive(Debug, Clone, Default, PartialEq)]
pub struct SeqWindow {
    /// Every sequence number `<= applied_through` has been applied (or abandoned).
    pub applied_through: u64,
    /// Applied sequence numbers above the watermark.
    pub ahead: BTreeSet<u64>,
}

impl SeqWindow {
    /// Records `seq` as applied; false when it already was.
    pub fn admit(&mut self, seq: u64) -> bool {
        if seq <= self.applied_through || !self.ahead.insert(seq) {
            return false;
        }
        while self.ahead.remove(&(self.applied_through + 1)) {
            self.applied_through += 1;
        }
        if self.ahead.len() > MAX_AHEAD
            && let Some(&first) = self.ahead.first()
        {
            tracing::warn!(
                gap = self.applied_through + 1,
                "giving up on a push that never arrived"
            );
            self.applied_through = first - 1;
            while self.ahead.remove(&(self.applied_through + 1)) {
                self.applied_through += 1;
            }
        }
        true
    }
}

/// The windows of all writers of one partition.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Dedup {
    pub writers: HashMap<u64, SeqWindow>,
}

impl Dedup {
    pub fn admit(&mut self, writer: u64, seq: u64) -> bool {
        self.writers.entry(writer).or_default().admit(seq)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn each_seq_is_admitted_once(order in proptest::collection::vec(1u64..60, 1..300)) {
            let mut w = SeqWindow::default();
            let mut seen = std::collections::HashSet::new();
            for seq in order {
                prop_assert_eq!(w.admit(seq), seen.insert(seq));
            }
        }
    }

    #[test]
    fn watermark_advances_over_contiguous_runs() {
        let mut w = SeqWindow::default();
        assert!(w.admit(2));
        assert!(w.admit(3));
        assert_eq!(w.applied_through, 0);
        assert!(w.admit(1));
        assert_eq!(w.applied_through, 3);
        assert!(w.ahead.is_empty());
        assert!(!w.admit(2));
    }
}
