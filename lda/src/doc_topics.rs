//! Per-document topic counts n_dk for all documents of a worker, in one arena.
//!
//! A document gets either a dense row of K counts (when that is no larger than its hash table)
//! or a small open-addressing hash table (linear probing, backward-shift deletion) of packed
//! 32-bit entries `(topic + 1) << 16 | count`, sized for min(N_d, K) distinct topics at load
//! ≤ 8/9. A document can never hold more distinct topics than tokens, so a table never fills.
//! Memory is at most 4.5 bytes per token and lookups are O(1) either way.

use crate::conditional::MAX_TOPICS;

/// Documents longer than this use dense rows (counts must fit 16 bits in the packed form).
pub const MAX_SPARSE_LEN: u32 = u16::MAX as u32;

#[derive(Debug, Clone, Copy)]
struct Slot {
    start: usize,
    /// Table size for hashed documents; `DENSE` for dense rows.
    cap: u32,
}

const DENSE: u32 = u32::MAX;

/// n_dk for a set of documents.
#[derive(Debug, Clone)]
pub struct DocTopics {
    slots: Vec<Slot>,
    arena: Vec<u32>,
    topics: u32,
}

/// The home slot of `topic` in a table of `cap` entries: Fibonacci hashing spreads consecutive
/// topic ids, multiply-shift maps the hash onto any table size (no power-of-two rounding).
#[inline]
fn hash(topic: u32, cap: u32) -> u32 {
    ((u64::from(topic.wrapping_mul(0x9E37_79B9)) * u64::from(cap)) >> 32) as u32
}

/// The slot after `i`, cyclically.
#[inline]
fn next(i: u32, cap: u32) -> u32 {
    if i + 1 == cap { 0 } else { i + 1 }
}

impl DocTopics {
    /// Empty counts for documents of the given lengths, for `topics` ≤ [`MAX_TOPICS`] topics.
    pub fn new(doc_lengths: impl Iterator<Item = u32>, topics: u32) -> Self {
        debug_assert!(topics <= MAX_TOPICS);
        let mut slots = Vec::new();
        let mut size = 0usize;
        for len in doc_lengths {
            let distinct = len.min(topics);
            let cap = distinct + distinct / 8 + 1;
            if cap >= topics || len > MAX_SPARSE_LEN {
                slots.push(Slot {
                    start: size,
                    cap: DENSE,
                });
                size += topics as usize;
            } else {
                slots.push(Slot { start: size, cap });
                size += cap as usize;
            }
        }
        DocTopics {
            slots,
            arena: vec![0; size],
            topics,
        }
    }

    pub fn num_docs(&self) -> usize {
        self.slots.len()
    }

    /// Bytes held.
    pub fn memory_bytes(&self) -> usize {
        self.arena.len() * 4 + self.slots.len() * std::mem::size_of::<Slot>()
    }

    /// n_dk.
    #[inline]
    pub fn get(&self, doc: u32, topic: u32) -> u32 {
        let s = self.slots[doc as usize];
        if s.cap == DENSE {
            return self.arena[s.start + topic as usize];
        }
        let key = (topic + 1) << 16;
        let mut i = hash(topic, s.cap);
        loop {
            let e = self.arena[s.start + i as usize];
            if e == 0 {
                return 0;
            }
            if e & 0xFFFF_0000 == key {
                return e & 0xFFFF;
            }
            i = next(i, s.cap);
        }
    }

    /// Every count zero.
    pub fn clear(&mut self) {
        self.arena.fill(0);
    }

    /// n_dk += 1.
    #[inline]
    pub fn increment(&mut self, doc: u32, topic: u32) {
        self.add(doc, topic, 1);
    }

    /// n_dk += `count`; a document's counts must stay within its length.
    #[inline]
    pub fn add(&mut self, doc: u32, topic: u32, count: u32) {
        let s = self.slots[doc as usize];
        if s.cap == DENSE {
            self.arena[s.start + topic as usize] += count;
            return;
        }
        let key = (topic + 1) << 16;
        let mut i = hash(topic, s.cap);
        loop {
            let e = &mut self.arena[s.start + i as usize];
            if *e == 0 {
                *e = key | count;
                return;
            }
            if *e & 0xFFFF_0000 == key {
                *e += count;
                return;
            }
            i = next(i, s.cap);
        }
    }

    /// n_dk -= 1; the count must be positive (returns false, changing nothing, if it is not).
    #[inline]
    pub fn decrement(&mut self, doc: u32, topic: u32) -> bool {
        let s = self.slots[doc as usize];
        if s.cap == DENSE {
            let c = &mut self.arena[s.start + topic as usize];
            if *c == 0 {
                return false;
            }
            *c -= 1;
            return true;
        }
        let key = (topic + 1) << 16;
        let mut i = hash(topic, s.cap);
        loop {
            let e = self.arena[s.start + i as usize];
            if e == 0 {
                return false;
            }
            if e & 0xFFFF_0000 == key {
                if e & 0xFFFF > 1 {
                    self.arena[s.start + i as usize] = e - 1;
                } else {
                    self.remove_at(s, i);
                }
                return true;
            }
            i = next(i, s.cap);
        }
    }

    /// Backward-shift deletion: later entries of the probe run move up so lookups never stop early.
    fn remove_at(&mut self, s: Slot, mut hole: u32) {
        let mut j = hole;
        loop {
            j = next(j, s.cap);
            let e = self.arena[s.start + j as usize];
            if e == 0 {
                break;
            }
            let home = hash((e >> 16) - 1, s.cap);
            // Move e into the hole unless its home lies cyclically in (hole, j].
            let in_between = if hole <= j {
                hole < home && home <= j
            } else {
                hole < home || home <= j
            };
            if !in_between {
                self.arena[s.start + hole as usize] = e;
                hole = j;
            }
        }
        self.arena[s.start + hole as usize] = 0;
    }

    /// The document's non-zero (topic, count) pairs, in no particular order.
    pub fn nonzeros(&self, doc: u32, out: &mut Vec<(u32, u32)>) {
        out.clear();
        let s = self.slots[doc as usize];
        if s.cap == DENSE {
            let row = &self.arena[s.start..s.start + self.topics as usize];
            out.extend(
                row.iter()
                    .enumerate()
                    .filter(|(_, c)| **c > 0)
                    .map(|(k, &c)| (k as u32, c)),
            );
        } else {
            let table = &self.arena[s.start..s.start + s.cap as usize];
            out.extend(
                table
                    .iter()
                    .filter(|e| **e != 0)
                    .map(|&e| ((e >> 16) - 1, e & 0xFFFF)),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Random increments/decrements against a dense reference, for short (hashed) and long
        /// (dense) documents.
        #[test]
        fn matches_a_dense_reference(ops in proptest::collection::vec((0u32..2, 0u32..200, any::<bool>()), 1..400)) {
            let k = 200u32;
            let lens = [30u32, 200];
            let mut dt = DocTopics::new(lens.iter().copied(), k);
            let mut reference = vec![vec![0u32; k as usize]; 2];
            let mut held = [0u32; 2];
            for (doc, topic, inc) in ops {
                let d = doc as usize;
                if inc && held[d] < lens[d] {
                    dt.increment(doc, topic);
                    reference[d][topic as usize] += 1;
                    held[d] += 1;
                } else if !inc {
                    let ok = dt.decrement(doc, topic);
                    prop_assert_eq!(ok, reference[d][topic as usize] > 0);
                    if ok {
                        reference[d][topic as usize] -= 1;
                        held[d] -= 1;
                    }
                }
                for t in 0..k {
                    prop_assert_eq!(dt.get(doc, t), reference[d][t as usize]);
                }
            }
            let mut nz = Vec::new();
            for d in 0..2u32 {
                dt.nonzeros(d, &mut nz);
                let mut from_ref: Vec<(u32, u32)> = reference[d as usize].iter().enumerate()
                    .filter(|(_, c)| **c > 0).map(|(t, &c)| (t as u32, c)).collect();
                nz.sort_unstable();
                from_ref.sort_unstable();
                prop_assert_eq!(&nz, &from_ref);
            }
        }
    }

    #[test]
    fn short_documents_are_hashed_and_small() {
        let dt = DocTopics::new([10u32, 5000].into_iter(), 1000);
        assert_ne!(dt.slots[0].cap, DENSE);
        assert_eq!(dt.slots[1].cap, DENSE);
        assert!(dt.memory_bytes() < 4 * (16 + 1000) + 64);
    }
}
