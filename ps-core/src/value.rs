//! Element types a model can hold, and type-erased value buffers that travel in messages.

use std::fmt;

use serde::{Deserialize, Serialize};

/// The element type of a model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DType {
    I32,
    I64,
    F32,
    F64,
}

impl fmt::Display for DType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match self {
            DType::I32 => "i32",
            DType::I64 => "i64",
            DType::F32 => "f32",
            DType::F64 => "f64",
        };
        f.write_str(name)
    }
}

impl DType {
    pub fn size_bytes(self) -> usize {
        match self {
            DType::I32 | DType::F32 => 4,
            DType::I64 | DType::F64 => 8,
        }
    }

    pub fn is_integer(self) -> bool {
        matches!(self, DType::I32 | DType::I64)
    }
}

/// A value stored in a model. Implemented for i32, i64, f32 and f64.
pub trait Value:
    Copy + Default + PartialEq + PartialOrd + fmt::Debug + Send + Sync + 'static
{
    const DTYPE: DType;
    fn is_zero(self) -> bool;
    fn add(self, other: Self) -> Self;
    /// Wraps a buffer of this type into the type-erased form.
    fn into_values(v: Vec<Self>) -> Values;
    /// Unwraps a type-erased buffer; `None` when the type differs.
    fn from_values(v: Values) -> Option<Vec<Self>>;
    fn to_i64(self) -> i64;
    fn to_f64(self) -> f64;
    fn from_i64(v: i64) -> Self;
    fn from_f64(v: f64) -> Self;
}

macro_rules! impl_value {
    ($t:ty, $variant:ident, $zero:expr, $add:expr) => {
        impl Value for $t {
            const DTYPE: DType = DType::$variant;
            #[inline]
            fn is_zero(self) -> bool {
                self == $zero
            }
            #[inline]
            fn add(self, other: Self) -> Self {
                $add(self, other)
            }
            fn into_values(v: Vec<Self>) -> Values {
                Values::$variant(v)
            }
            fn from_values(v: Values) -> Option<Vec<Self>> {
                match v {
                    Values::$variant(x) => Some(x),
                    _ => None,
                }
            }
            #[inline]
            fn to_i64(self) -> i64 {
                self as i64
            }
            #[inline]
            fn to_f64(self) -> f64 {
                self as f64
            }
            #[inline]
            fn from_i64(v: i64) -> Self {
                v as $t
            }
            #[inline]
            fn from_f64(v: f64) -> Self {
                v as $t
            }
        }
    };
}

// Integer counters wrap rather than panic on overflow: a server must never crash on a client's push.
impl_value!(i32, I32, 0, i32::wrapping_add);
impl_value!(i64, I64, 0, i64::wrapping_add);
impl_value!(f32, F32, 0.0, |a: f32, b: f32| a + b);
impl_value!(f64, F64, 0.0, |a: f64, b: f64| a + b);

/// A buffer of values of one element type (serializable, so a [`PushToken`](crate::PushToken)
/// holding it can be persisted).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Values {
    I32(Vec<i32>),
    I64(Vec<i64>),
    F32(Vec<f32>),
    F64(Vec<f64>),
}

impl Values {
    pub fn dtype(&self) -> DType {
        match self {
            Values::I32(_) => DType::I32,
            Values::I64(_) => DType::I64,
            Values::F32(_) => DType::F32,
            Values::F64(_) => DType::F64,
        }
    }

    pub fn len(&self) -> usize {
        match self {
            Values::I32(v) => v.len(),
            Values::I64(v) => v.len(),
            Values::F32(v) => v.len(),
            Values::F64(v) => v.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn empty(dtype: DType) -> Values {
        match dtype {
            DType::I32 => Values::I32(Vec::new()),
            DType::I64 => Values::I64(Vec::new()),
            DType::F32 => Values::F32(Vec::new()),
            DType::F64 => Values::F64(Vec::new()),
        }
    }

    /// Values at `idx` (in order), as a new buffer.
    pub fn gather(&self, idx: &[usize]) -> Values {
        match self {
            Values::I32(v) => Values::I32(idx.iter().map(|&i| v[i]).collect()),
            Values::I64(v) => Values::I64(idx.iter().map(|&i| v[i]).collect()),
            Values::F32(v) => Values::F32(idx.iter().map(|&i| v[i]).collect()),
            Values::F64(v) => Values::F64(idx.iter().map(|&i| v[i]).collect()),
        }
    }
}
