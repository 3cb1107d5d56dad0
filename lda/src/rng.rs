//! The seeded random streams of the sampler and the few draws it needs, free of allocation.
//!
//! Every sampler thread owns one `Xoshiro256PlusPlus` stream, derived from the run's seed by
//! jumping (2^128 draws apart), so streams never overlap and can be saved in checkpoints.

use rand_xoshiro::Xoshiro256PlusPlus;
use rand_xoshiro::rand_core::{Rng, SeedableRng};

/// The generator used everywhere in the sampler.
pub type SamplerRng = Xoshiro256PlusPlus;

/// The `index`-th independent stream of the run seeded with `seed`.
pub fn stream(seed: u64, index: usize) -> SamplerRng {
    let mut rng = SamplerRng::seed_from_u64(seed);
    for _ in 0..index {
        rng.jump();
    }
    rng
}

/// A uniform draw from [0, 1) with 53 random bits.
#[inline]
pub fn unit<R: Rng>(rng: &mut R) -> f64 {
    (rng.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
}

/// A uniform integer in [0, n), `n > 0`: multiply-shift, bias below n / 2^64.
#[inline]
pub fn below<R: Rng>(rng: &mut R, n: u32) -> u32 {
    ((u128::from(rng.next_u64()) * u128::from(n)) >> 64) as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streams_differ_and_repeat() {
        let mut a = stream(7, 0);
        let mut b = stream(7, 1);
        let mut a2 = stream(7, 0);
        let xa: Vec<u64> = (0..4).map(|_| a.next_u64()).collect();
        let xb: Vec<u64> = (0..4).map(|_| b.next_u64()).collect();
        let xa2: Vec<u64> = (0..4).map(|_| a2.next_u64()).collect();
        assert_ne!(xa, xb);
        assert_eq!(xa, xa2);
    }

    #[test]
    fn below_stays_in_range_and_covers_it() {
        let mut rng = stream(1, 0);
        let mut seen = [0u32; 7];
        for _ in 0..7000 {
            let x = below(&mut rng, 7);
            seen[x as usize] += 1;
        }
        assert!(seen.iter().all(|&c| c > 800 && c < 1200), "{seen:?}");
        for _ in 0..1000 {
            let u = unit(&mut rng);
            assert!((0.0..1.0).contains(&u));
        }
    }
}
