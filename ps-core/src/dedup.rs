//! Exactly-once pushes: which sequence numbers of each writer a partition has already applied.
//!
//! A writer numbers its pushes to one (model, shard) 1, 2, 3, ... so the applied set is almost
//! always "everything up to a watermark" plus the few in flight above it.
//!
//! # Idle writers
//! Every matrix handle is a writer, so a long-lived server would otherwise keep a window for
//! every handle ever opened. A writer with no push for longer than the configured idle time
//! `T` is **forgotten**: its window leaves the live map (and snapshots) and a tombstone of its
//! watermark stays behind (24 bytes instead of a window with its sets and clock). Forgetting
//! never applies a push twice nor answers `Done` for one not applied; the only answer it changes
//! is that of rule 1, from "apply it late" to a refusal:
//! 1. Sequence numbers the writer left open (holes below its highest applied one) are given up
//!    first, as for an overtaken gap: nothing arrived for them in `T`, which is far longer than
//!    a client retries (8 attempts × 30 s by default), so they count as abandoned. A push among
//!    them that arrives later is refused with `SeqExpired`; it was never applied.
//! 2. A later push at or below the watermark is answered from the tombstone exactly as from the
//!    window: `Done` if it was applied (a duplicate), `SeqExpired` if it was given up.
//! 3. A push above the watermark revives the writer: a fresh window starts at the watermark
//!    (with the given-up ranges), so a writer that merely paused for longer than `T` (a long
//!    iteration) goes on pushing.
//!
//! Tombstones are what make forgetting safe (without one, an old retry from a forgotten writer
//! would look like a new writer's push and be applied again), so they are kept, in snapshots too.
//! Idle writers are swept when a push reaches the partition, at most every `T/4` (a scan of the
//! live writers); a snapshot records writers idle past `T` as tombstones whether swept or not.

use std::collections::{BTreeSet, HashMap};
use std::time::{Duration, Instant};

/// Default above-watermark entries kept per writer before the oldest gap is given up on
/// (`Limits::dedup_window`). A gap only stays open when a writer abandoned a push after
/// exhausting its retries (and reported it with a token it may resend), or when a push is
/// overtaken by this many later ones.
pub const DEFAULT_WINDOW: usize = 1 << 16;

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

    /// Records `seq` as applied when it is new; at most `window` (at least 1) applied numbers are
    /// kept above the oldest gap before that gap is given up.
    pub fn check_and_admit(&mut self, seq: u64, window: usize) -> Admission {
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
        if self.ahead.len() > window.max(1)
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
        self.check_and_admit(seq, DEFAULT_WINDOW) == Admission::New
    }

    /// The window reduced to a watermark: open sequence numbers below the highest applied one
    /// are given up (rule 1 in the module doc), the rest of `ahead` joins the watermark.
    fn settle(mut self) -> Tombstone {
        if let Some(&last) = self.ahead.last() {
            let mut next = self.applied_through + 1;
            for seq in std::mem::take(&mut self.ahead) {
                if seq > next {
                    self.give_up(next, seq - 1);
                }
                next = seq + 1;
            }
            self.applied_through = last;
        }
        Tombstone {
            applied_through: self.applied_through,
            expired: self.expired.into_boxed_slice(),
        }
    }
}

/// What stays of a forgotten writer: every sequence number `<= applied_through` was applied,
/// except those in `expired` (ascending, disjoint, inclusive ranges).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Tombstone {
    pub applied_through: u64,
    pub expired: Box<[(u64, u64)]>,
}

impl Tombstone {
    fn revive(&self) -> SeqWindow {
        SeqWindow {
            applied_through: self.applied_through,
            ahead: BTreeSet::new(),
            expired: self.expired.to_vec(),
        }
    }
}

/// A writer still pushing: its window and when it last pushed.
#[derive(Debug, Clone, PartialEq)]
pub struct Live {
    pub window: SeqWindow,
    pub last_push: Instant,
}

/// The windows of all writers of one partition.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Dedup {
    pub writers: HashMap<u64, Live>,
    /// Writers forgotten after being idle (see the module doc).
    pub forgotten: HashMap<u64, Tombstone>,
    last_sweep: Option<Instant>,
}

impl Dedup {
    /// Checks `seq` of `writer` at time `now`, forgetting writers idle for longer than `idle`
    /// first (`None`: never); `window` bounds each writer's entries above its oldest gap.
    pub fn admit(
        &mut self,
        writer: u64,
        seq: u64,
        now: Instant,
        idle: Option<Duration>,
        window: usize,
    ) -> Admission {
        if let Some(idle) = idle {
            self.maybe_sweep(now, idle);
        }
        if let Some(live) = self.writers.get_mut(&writer) {
            let admission = live.window.check_and_admit(seq, window);
            if admission == Admission::New {
                live.last_push = now;
            }
            return admission;
        }
        let mut seqs = match self.forgotten.get(&writer) {
            // Rule 2: answered from the tombstone, without reviving the writer.
            Some(t) if seq <= t.applied_through => return t.revive().check_and_admit(seq, window),
            // Rule 3: the writer comes back.
            Some(t) => t.revive(),
            None => SeqWindow::default(),
        };
        let admission = seqs.check_and_admit(seq, window);
        self.forgotten.remove(&writer);
        self.writers.insert(
            writer,
            Live {
                window: seqs,
                last_push: now,
            },
        );
        admission
    }

    /// Sweeps at most every quarter of `idle`: a scan of the live writers, under the partition's
    /// lock, so not on every push.
    fn maybe_sweep(&mut self, now: Instant, idle: Duration) {
        let due = self
            .last_sweep
            .is_none_or(|last| now.saturating_duration_since(last) >= idle / 4);
        if due {
            self.sweep(now, idle);
        }
    }

    /// Forgets every writer whose last push is more than `idle` before `now`.
    pub fn sweep(&mut self, now: Instant, idle: Duration) {
        self.last_sweep = Some(now);
        let idle_writers: Vec<u64> = self
            .writers
            .iter()
            .filter(|(_, live)| is_idle(live, now, idle))
            .map(|(&w, _)| w)
            .collect();
        if idle_writers.is_empty() {
            return;
        }
        for writer in &idle_writers {
            if let Some(live) = self.writers.remove(writer) {
                self.forgotten.insert(*writer, live.window.settle());
            }
        }
        self.writers.shrink_to_fit();
        tracing::debug!(
            forgotten = idle_writers.len(),
            live = self.writers.len(),
            "idle writers forgotten"
        );
    }

    /// The state as a snapshot keeps it at `now`: live windows, and tombstones (including those
    /// of writers idle past `idle`, without changing `self`, which the caller only reads).
    pub fn image(&self, now: Instant, idle: Option<Duration>) -> DedupImage {
        let mut image = DedupImage::default();
        for (&writer, live) in &self.writers {
            if idle.is_some_and(|idle| is_idle(live, now, idle)) {
                image.forgotten.push((writer, live.window.clone().settle()));
            } else {
                image.windows.push((writer, live.window.clone()));
            }
        }
        image
            .forgotten
            .extend(self.forgotten.iter().map(|(&w, t)| (w, t.clone())));
        image.windows.sort_by_key(|e| e.0);
        image.forgotten.sort_by_key(|e| e.0);
        image
    }

    /// Rebuilds the state from a snapshot at `now`: live writers start a fresh idle period.
    pub fn from_image(image: DedupImage, now: Instant) -> Self {
        Dedup {
            writers: image
                .windows
                .into_iter()
                .map(|(w, window)| {
                    let live = Live {
                        window,
                        last_push: now,
                    };
                    (w, live)
                })
                .collect(),
            forgotten: image.forgotten.into_iter().collect(),
            last_sweep: None,
        }
    }
}

fn is_idle(live: &Live, now: Instant, idle: Duration) -> bool {
    now.saturating_duration_since(live.last_push) > idle
}

/// [`Dedup`] without clocks, in writer order: what a snapshot records.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DedupImage {
    pub windows: Vec<(u64, SeqWindow)>,
    pub forgotten: Vec<(u64, Tombstone)>,
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
        // Regression (issue 9): seq 1 overtaken by more than DEFAULT_WINDOW later pushes used to be
        // answered Done without being applied.
        let mut w = SeqWindow::default();
        for seq in 2..=(DEFAULT_WINDOW as u64 + 2) {
            assert_eq!(w.check_and_admit(seq, DEFAULT_WINDOW), Admission::New);
        }
        assert_eq!(w.check_and_admit(1, DEFAULT_WINDOW), Admission::Expired);
        assert_eq!(w.check_and_admit(1, DEFAULT_WINDOW), Admission::Expired);
        assert_eq!(w.check_and_admit(5, DEFAULT_WINDOW), Admission::Duplicate);
        assert_eq!(
            w.check_and_admit(DEFAULT_WINDOW as u64 + 3, DEFAULT_WINDOW),
            Admission::New
        );
    }

    #[test]
    fn old_expired_ranges_merge_but_stay_expired() {
        let mut w = SeqWindow::default();
        for i in 0..(MAX_EXPIRED_RANGES as u64 + 10) {
            w.give_up(10 * i + 1, 10 * i + 2);
        }
        assert!(w.expired.len() <= MAX_EXPIRED_RANGES);
        w.applied_through = u64::MAX / 2;
        assert_eq!(w.check_and_admit(1, DEFAULT_WINDOW), Admission::Expired);
        assert_eq!(
            w.check_and_admit(10 * (MAX_EXPIRED_RANGES as u64 + 9) + 2, DEFAULT_WINDOW),
            Admission::Expired
        );
        assert_eq!(
            w.check_and_admit(10 * (MAX_EXPIRED_RANGES as u64 + 9) + 5, DEFAULT_WINDOW),
            Admission::Duplicate
        );
    }

    const T: Duration = Duration::from_secs(3600);

    #[test]
    fn an_idle_writer_is_forgotten_and_answered_exactly_as_before() {
        let t0 = Instant::now();
        let mut d = Dedup::default();
        for seq in [1, 2, 3, 5, 7] {
            assert_eq!(d.admit(1, seq, t0, Some(T), DEFAULT_WINDOW), Admission::New);
        }
        // Writer 2 keeps pushing; writer 1 falls silent (4 and 6 never arrive).
        let later = t0 + T + Duration::from_secs(1);
        assert_eq!(
            d.admit(2, 1, later, Some(T), DEFAULT_WINDOW),
            Admission::New
        );
        assert!(
            !d.writers.contains_key(&1),
            "idle writer dropped from the live map"
        );
        assert_eq!(
            d.forgotten.get(&1),
            Some(&Tombstone {
                applied_through: 7,
                expired: vec![(4, 4), (6, 6)].into_boxed_slice(),
            })
        );
        // The holes were never applied: refused, never applied late nor answered Done.
        assert_eq!(
            d.admit(1, 4, later, Some(T), DEFAULT_WINDOW),
            Admission::Expired
        );
        assert_eq!(
            d.admit(1, 6, later, Some(T), DEFAULT_WINDOW),
            Admission::Expired
        );
        // Applied ones stay duplicates: never applied twice.
        for seq in [1, 2, 3, 5, 7] {
            assert_eq!(
                d.admit(1, seq, later, Some(T), DEFAULT_WINDOW),
                Admission::Duplicate
            );
        }
        assert!(
            !d.writers.contains_key(&1),
            "a late retry does not revive the writer"
        );
        // A new push revives it, and the old answers still hold.
        assert_eq!(
            d.admit(1, 8, later, Some(T), DEFAULT_WINDOW),
            Admission::New
        );
        assert!(d.writers.contains_key(&1) && !d.forgotten.contains_key(&1));
        assert_eq!(
            d.admit(1, 8, later, Some(T), DEFAULT_WINDOW),
            Admission::Duplicate
        );
        assert_eq!(
            d.admit(1, 4, later, Some(T), DEFAULT_WINDOW),
            Admission::Expired
        );
        assert_eq!(
            d.admit(1, 3, later, Some(T), DEFAULT_WINDOW),
            Admission::Duplicate
        );
    }

    #[test]
    fn without_an_idle_time_nobody_is_forgotten() {
        let t0 = Instant::now();
        let mut d = Dedup::default();
        assert_eq!(d.admit(1, 1, t0, None, DEFAULT_WINDOW), Admission::New);
        assert_eq!(
            d.admit(2, 1, t0 + 100 * T, None, DEFAULT_WINDOW),
            Admission::New
        );
        assert_eq!(d.writers.len(), 2);
        assert!(d.forgotten.is_empty());
    }

    #[test]
    fn images_leave_idle_writers_out_of_the_windows() {
        let t0 = Instant::now();
        let mut d = Dedup::default();
        assert_eq!(d.admit(1, 1, t0, Some(T), DEFAULT_WINDOW), Admission::New);
        assert_eq!(
            d.admit(2, 2, t0 + T, Some(T), DEFAULT_WINDOW),
            Admission::New
        );
        let image = d.image(t0 + T + Duration::from_secs(1), Some(T));
        assert_eq!(image.windows.len(), 1);
        assert_eq!(image.windows[0].0, 2);
        assert_eq!(image.forgotten.len(), 1);
        assert_eq!(image.forgotten[0].0, 1);
        // Restored, the forgotten writer is still answered exactly.
        let mut back = Dedup::from_image(image, t0);
        assert_eq!(
            back.admit(1, 1, t0, Some(T), DEFAULT_WINDOW),
            Admission::Duplicate
        );
        assert_eq!(
            back.admit(2, 1, t0, Some(T), DEFAULT_WINDOW),
            Admission::New
        );
        assert_eq!(
            back.admit(2, 2, t0, Some(T), DEFAULT_WINDOW),
            Admission::Duplicate
        );
    }

    proptest! {
        /// Forgetting at random moments never changes an answer (each seq admitted once).
        #[test]
        fn forgetting_never_changes_an_answer(
            ops in proptest::collection::vec((0u64..3, 1u64..40, any::<bool>()), 1..300),
        ) {
            let t0 = Instant::now();
            let mut d = Dedup::default();
            let mut applied = std::collections::HashSet::new();
            let mut refused = std::collections::HashSet::new();
            let mut now = t0;
            for (writer, seq, pause) in ops {
                if pause {
                    now += T + Duration::from_secs(1);
                }
                let key = (writer, seq);
                match d.admit(writer, seq, now, Some(T), DEFAULT_WINDOW) {
                    Admission::New => {
                        prop_assert!(!refused.contains(&key), "refused, then applied late");
                        prop_assert!(applied.insert(key), "applied twice");
                    }
                    Admission::Duplicate => prop_assert!(applied.contains(&key), "Done, never applied"),
                    Admission::Expired => {
                        prop_assert!(!applied.contains(&key), "applied, then called expired");
                        refused.insert(key);
                    }
                }
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
