//! The order of a push's elements by cell, (row, col), stable (elements of one cell keep their
//! order, which `replace` and user aggregators depend on): the order on the wire, and the order
//! in which a shard merges a batch into sparse rows.
//!
//! Pushes are large (an LDA worker pushes 100,000 updates at once) and their keys are narrow
//! (rows and columns of a few bits each), so an LSD radix sort over the packed key is several
//! times faster than a comparison sort, and stable by construction.

/// Positions of the elements in (row, col) order, stable.
pub(crate) fn by_cell(rows: &[u64], cols: &[u32]) -> Vec<u32> {
    let n = rows.len().min(cols.len());
    by_key(n, |i| rows[i], |i| cols[i]).unwrap_or_else(|| (0..n as u32).collect())
}

/// Positions of elements `0..n` in (`row(i)`, `col(i)`) order, stable; `None` when they are in
/// that order already (the gRPC path delivers pushes sorted), so that case costs one scan.
pub(crate) fn by_key(
    n: usize,
    row: impl Fn(usize) -> u64,
    col: impl Fn(usize) -> u32,
) -> Option<Vec<u32>> {
    if (1..n).all(|i| (row(i - 1), col(i - 1)) <= (row(i), col(i))) {
        return None;
    }
    let (min_row, max_row) = (0..n).fold((u64::MAX, 0), |(lo, hi), i| {
        let r = row(i);
        (lo.min(r), hi.max(r))
    });
    let max_col = (0..n).map(&col).max().unwrap_or(0);
    let col_bits = bits(u64::from(max_col));
    let key_bits = bits(max_row - min_row) + col_bits;
    if key_bits > 64 || n < 256 {
        let mut idx: Vec<u32> = (0..n as u32).collect();
        idx.sort_by_key(|&i| (row(i as usize), col(i as usize)));
        return Some(idx);
    }
    let key = |i: usize| ((row(i) - min_row) << col_bits) | u64::from(col(i));
    let index_bits = bits(n as u64 - 1);
    if key_bits + index_bits <= 64 {
        // Key and position in one word: half the memory traffic of a (key, position) pair, and
        // ascending words are the stable order (equal keys ordered by position).
        let mut items: Vec<u64> = (0..n).map(|i| (key(i) << index_bits) | i as u64).collect();
        radix_sort(&mut items, |w| w >> index_bits, key_bits);
        let mask = (1u64 << index_bits) - 1;
        return Some(items.into_iter().map(|w| (w & mask) as u32).collect());
    }
    let mut items: Vec<(u64, u32)> = (0..n).map(|i| (key(i), i as u32)).collect();
    radix_sort(&mut items, |(k, _)| k, key_bits);
    Some(items.into_iter().map(|(_, i)| i).collect())
}

fn bits(v: u64) -> u32 {
    64 - v.leading_zeros()
}

/// Widest digit: scattering into more than ~2^11 places at once thrashes the caches.
const MAX_DIGIT: u32 = 11;

/// Stable LSD radix sort of `items` by the first `key_bits` bits of `key(item)`, in as few passes
/// as digits of at most [`MAX_DIGIT`] bits allow (three for an LDA push: 17 row bits + 10 column
/// bits).
fn radix_sort<T: Copy + Default>(items: &mut Vec<T>, key: impl Fn(T) -> u64, key_bits: u32) {
    let passes = key_bits.div_ceil(MAX_DIGIT).max(1);
    let digit = key_bits.div_ceil(passes);
    let mask = (1u64 << digit) - 1;
    let buckets = 1usize << digit;
    // Every pass's histogram in one read of the keys.
    let mut counts = vec![0usize; buckets * passes as usize];
    for &item in items.iter() {
        let k = key(item);
        for p in 0..passes {
            counts[p as usize * buckets + ((k >> (p * digit)) & mask) as usize] += 1;
        }
    }
    let mut tmp = vec![T::default(); items.len()];
    for p in 0..passes {
        let offsets = &mut counts[p as usize * buckets..(p as usize + 1) * buckets];
        let mut sum = 0;
        for c in offsets.iter_mut() {
            (*c, sum) = (sum, sum + *c);
        }
        let shift = p * digit;
        for &item in items.iter() {
            let d = ((key(item) >> shift) & mask) as usize;
            tmp[offsets[d]] = item;
            offsets[d] += 1;
        }
        std::mem::swap(items, &mut tmp);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn reference(rows: &[u64], cols: &[u32]) -> Vec<u32> {
        let mut idx: Vec<u32> = (0..rows.len() as u32).collect();
        idx.sort_by_key(|&i| (rows[i as usize], cols[i as usize]));
        idx
    }

    proptest! {
        #[test]
        fn radix_order_is_the_stable_order(
            cells in proptest::collection::vec((0u64..50, 0u32..20), 0..2000),
            offset in prop_oneof![Just(0u64), Just(1u64 << 40), Just(u64::MAX - 100)],
            // Spreading rows apart widens the key: 1 to 4 radix passes.
            spread in prop_oneof![Just(1u64), Just(1u64 << 20), Just(1u64 << 40)],
            col_spread in prop_oneof![Just(1u32), Just(1u32 << 12)],
        ) {
            let rows: Vec<u64> = cells.iter().map(|c| (c.0 * spread).saturating_add(offset)).collect();
            let cols: Vec<u32> = cells.iter().map(|c| c.1 * col_spread).collect();
            prop_assert_eq!(by_cell(&rows, &cols), reference(&rows, &cols));
        }
    }

    #[test]
    fn wide_keys_fall_back_to_comparison() {
        let rows: Vec<u64> = (0..1000u64)
            .map(|i| if i % 2 == 0 { u64::MAX - i } else { i })
            .collect();
        let cols: Vec<u32> = (0..1000u32).map(|i| u32::MAX - i % 7).collect();
        assert_eq!(by_cell(&rows, &cols), reference(&rows, &cols));
    }
}
