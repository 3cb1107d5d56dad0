//! Little binary helpers shared by snapshots: LEB128 varints, little-endian values, a checksum.

use crate::value::Value;

pub(crate) fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Fixed-width little-endian encoding of a value.
pub(crate) trait LeBytes: Value {
    const SIZE: usize;
    fn write_le(self, out: &mut Vec<u8>);
    fn read_le(b: &[u8]) -> Self;
}

macro_rules! le_bytes {
    ($t:ty, $n:expr) => {
        impl LeBytes for $t {
            const SIZE: usize = $n;
            fn write_le(self, out: &mut Vec<u8>) {
                out.extend_from_slice(&self.to_le_bytes());
            }
            fn read_le(b: &[u8]) -> Self {
                let mut a = [0u8; $n];
                a.copy_from_slice(&b[..$n]);
                <$t>::from_le_bytes(a)
            }
        }
    };
}
le_bytes!(i32, 4);
le_bytes!(i64, 8);
le_bytes!(f32, 4);
le_bytes!(f64, 8);

/// FNV-1a, enough to notice a torn or corrupted snapshot file.
pub(crate) fn checksum(bytes: &[u8]) -> u64 {
    fnv(FNV_START, bytes)
}

/// The FNV-1a state before any byte.
pub(crate) const FNV_START: u64 = 0xcbf2_9ce4_8422_2325;

/// FNV-1a state `h` continued over `bytes`, for checksums of streamed files.
pub(crate) fn fnv(h: u64, bytes: &[u8]) -> u64 {
    bytes
        .iter()
        .fold(h, |h, &b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3))
}
