//! Exactly-once pushes: which sequence numbers of each writer a partition has already applied.
//!
//! A writer numbers its pushes to one (model, shard) 1, 2, 3, ... so the applied set is almost
//! always "everything up to a watermark" plus the few in flight above it.

use std::collections::{BTreeSet, HashMap};

/// Above-watermark entries kept per writer before the oldest gap is given up on. A gap only stays
/// open when a writer abandoned a push after exhausting its retries (and reported the failure),
/// or when a push is overtaken by this many later ones.
const MAX_AHEAD: usize = 1 << 16;

/// Given-up gaps remembered per writer; beyond this the oldest are merged into one range (which
/// may then also cover applied numbers: their retries get `Expired`, a loud false alarm, never
/// a silent `Done` for a push that was not applied).
const MAX_EXPIRED_RANGES: usize = 256;

/// What the window says about a push.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// Not seen before: apply it.
    New,
    /// Already applied: answer `Done` without applying it again.
    Duplicate,
    /// In a gap given up on: it was never applied and must not be answered `Done`.
    Expired,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct SeqWindow {
    /// Every sequence number `<= applied_through` has been applied, except those in `expired`.
    pub applied_through: u64,
    /// Applied sequence numbers above the watermark.
    pub ahead: BTreeSet<u64>,
    /// Inclusive ranges of sequence numbers given up on (below the watermark, never applied),
    /// ascending and disjoint.
    pub expired: Vec<(u64, u64)>,
}

impl SeqWindow {
    fn is_expired(&self, seq: u64) -> bool {
        let i = self.expired.partition_point(|&(_, hi)| hi < seq);
        self.expired.get(i).is_some_and(|&(lo, _)| lo <= seq)
    }

    fn give_up(&mut self, lo: u64, hi: u64) {
        tracing::warn!(from = lo, to = hi, "giving up on pushes that never arrived");
        self.expired.push((lo, hi));
        if self.expired.len() > MAX_EXPIRED_RANGES {
            let (first, _) = self.expired[0];
            let (_, second) = self.expired[1];
            self.expired.splice(0..2, [(first, second)]);
        }
    }

    /// Records `seq` as applied when it is new.
    pub fn check_and_admit(&mut self, seq: u64) -> Admission {
        if seq <= self.applied_through {
            return if self.is_expired(seq) {
                Admission::Expired
            } else {
                Admission::Duplicate
            };
        }
        if !self.ahead.insert(seq) {
            return Admission::Duplicate;
        }
        while self.ahead.remove(&(self.applied_through + 1)) {
            self.applied_through += 1;
        }
        if self.ahead.len() > MAX_AHEAD
            && let Some(&first) = self.ahead.first()
        {
            self.give_up(self.applied_through + 1, first - 1);
            self.applied_through = first - 1;
            while self.ahead.remove(&(self.applied_through + 1)) {
                self.applied_through += 1;
            }
        }
        Admission::New
    }

    /// Records `seq` as applied; false when it already was (or expired).
    #[cfg(test)]
    pub fn admit(&mut self, seq: u64) -> bool {
        self.check_and_admit(seq) == Admission::New
    }
}

/// The windows of all writers of one partition.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Dedup {
    pub writers: HashMap<u64, SeqWindow>,
}

impl Dedup {
    pub fn admit(&mut self, writer: u64, seq: u64) -> Admission {
        self.writers.entry(writer).or_default().check_and_admit(seq)
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
    fn a_push_overtaken_past_the_window_is_expired_never_done() {
        // Regression (issue 9): seq 1 overtaken by more than MAX_AHEAD later pushes used to be
        // answered Done without being applied.
        let mut w = SeqWindow::default();
        for seq in 2..=(MAX_AHEAD as u64 + 2) {
            assert_eq!(w.check_and_admit(seq), Admission::New);
        }
        assert_eq!(w.check_and_admit(1), Admission::Expired);
        assert_eq!(w.check_and_admit(1), Admission::Expired);
        assert_eq!(w.check_and_admit(5), Admission::Duplicate);
        assert_eq!(w.check_and_admit(MAX_AHEAD as u64 + 3), Admission::New);
    }

    #[test]
    fn old_expired_ranges_merge_but_stay_expired() {
        let mut w = SeqWindow::default();
        for i in 0..(MAX_EXPIRED_RANGES as u64 + 10) {
            w.give_up(10 * i + 1, 10 * i + 2);
        }
        assert!(w.expired.len() <= MAX_EXPIRED_RANGES);
        w.applied_through = u64::MAX / 2;
        assert_eq!(w.check_and_admit(1), Admission::Expired);
        assert_eq!(
            w.check_and_admit(10 * (MAX_EXPIRED_RANGES as u64 + 9) + 2),
            Admission::Expired
        );
        assert_eq!(
            w.check_and_admit(10 * (MAX_EXPIRED_RANGES as u64 + 9) + 5),
            Admission::Duplicate
        );
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
