//! Per-document topic counts as short lists of the non-zero (topic, count) pairs, for a draw
//! that visits only a document's topics. A document holds at most min(N_d, K) distinct topics,
//! so each gets that many slots in one arena; a topic whose count reaches zero is swapped out.
//! Finding a topic is a linear scan of the list, which costs no more than the draw's own pass
//! over it.

/// n_dk of a worker's documents as non-zero lists.
#[derive(Debug, Clone, Default)]
pub struct DocLists {
    /// Where each document's slots start in `entries`; one more entry at the end.
    start: Vec<usize>,
    /// Occupied slots per document.
    len: Vec<u32>,
    entries: Vec<(u32, u32)>,
}

impl DocLists {
    /// Empty lists for documents of the given lengths over `topics` topics.
    pub fn new(doc_lengths: impl Iterator<Item = u32>, topics: u32) -> Self {
        let mut start = vec![0usize];
        let mut size = 0usize;
        for len in doc_lengths {
            size += len.min(topics) as usize;
            start.push(size);
        }
        DocLists {
            len: vec![0; start.len() - 1],
            start,
            entries: vec![(0, 0); size],
        }
    }

    /// The document's (topic, count) pairs, every count positive, in no particular order.
    #[inline(always)]
    pub fn entries(&self, doc: u32) -> &[(u32, u32)] {
        let d = doc as usize;
        &self.entries[self.start[d]..self.start[d] + self.len[d] as usize]
    }

    /// Adds one token at `topic`; false if the document has no free slot (more distinct topics
    /// than tokens: the counts are inconsistent).
    #[inline]
    pub fn increment(&mut self, doc: u32, topic: u32) -> bool {
        let d = doc as usize;
        let (s, n) = (self.start[d], self.len[d] as usize);
        if let Some(e) = self.entries[s..s + n].iter_mut().find(|e| e.0 == topic) {
            e.1 += 1;
            return true;
        }
        if s + n >= self.start[d + 1] {
            return false;
        }
        self.entries[s + n] = (topic, 1);
        self.len[d] += 1;
        true
    }

    /// Moves one token of the document from the topic at list index `from` to topic `to`, which
    /// is at index `to_index` if the caller knows it (from a draw); false if the document has no
    /// free slot for `to` (more distinct topics than tokens: the counts are inconsistent).
    #[inline]
    pub fn transfer(&mut self, doc: u32, from: usize, to: u32, to_index: Option<usize>) -> bool {
        let d = doc as usize;
        let (s, n) = (self.start[d], self.len[d] as usize);
        let list = &mut self.entries[s..s + n];
        if list[from].0 == to {
            return true;
        }
        list[from].1 -= 1;
        let emptied = list[from].1 == 0;
        match to_index.or_else(|| list.iter().position(|e| e.0 == to)) {
            Some(j) => list[j].1 += 1,
            // The emptied slot takes the new topic: no swap, and a full list still has room.
            None if emptied => {
                list[from] = (to, 1);
                return true;
            }
            None => {
                if s + n >= self.start[d + 1] {
                    list[from].1 += 1;
                    return false;
                }
                self.entries[s + n] = (to, 1);
                self.len[d] += 1;
                return true;
            }
        }
        if emptied {
            list[from] = list[n - 1];
            self.len[d] -= 1;
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeMap;

    proptest! {
        /// Against a map of counts: the lists hold exactly the non-zero counts, an increment
        /// never fails while a document holds no more tokens than its length, and a transfer
        /// from any entry to any topic (with or without its index) keeps them exact, also when
        /// the list is full.
        #[test]
        fn lists_hold_exactly_the_non_zero_counts(
            topics in 1u32..12,
            ops in proptest::collection::vec((0u32..3, 0u32..12, 0usize..20, any::<bool>()), 0..200),
            hint in any::<bool>(),
        ) {
            let lengths = [5u32, 1, 20];
            let mut lists = DocLists::new(lengths.iter().copied(), topics);
            let mut model: Vec<BTreeMap<u32, u32>> = vec![BTreeMap::new(); 3];
            for &(d, t, from, add) in &ops {
                let t = t % topics;
                let m = &mut model[d as usize];
                if add {
                    if m.values().sum::<u32>() == lengths[d as usize] {
                        continue;
                    }
                    prop_assert!(lists.increment(d, t));
                    *m.entry(t).or_default() += 1;
                } else {
                    let n = lists.entries(d).len();
                    if n == 0 {
                        continue;
                    }
                    let from = from % n;
                    let source = lists.entries(d)[from].0;
                    let to_index = if hint { lists.entries(d).iter().position(|e| e.0 == t) } else { None };
                    prop_assert!(lists.transfer(d, from, t, to_index));
                    *m.entry(t).or_default() += 1;
                    let c = m.get_mut(&source).map(|c| { *c -= 1; *c });
                    if c == Some(0) {
                        m.remove(&source);
                    }
                }
                for (doc, want) in model.iter().enumerate() {
                    let got: BTreeMap<u32, u32> = lists.entries(doc as u32).iter().copied().collect();
                    prop_assert_eq!(lists.entries(doc as u32).len(), got.len());
                    prop_assert!(got.values().all(|&c| c > 0));
                    prop_assert_eq!(&got, want);
                }
            }
        }
    }
}
