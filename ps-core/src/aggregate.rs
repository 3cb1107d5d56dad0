//! How a pushed value combines with the stored one: addition by default, max, min, replace,
//! or a user-defined [`Aggregator`] registered by name on the servers.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use crate::error::{PsError, Result};
use crate::value::Value;

/// A user-defined aggregation. Integer models combine through `combine_i64` (i32 values are widened
/// and narrowed back), float models through `combine_f64`. Absent sparse elements count as zero,
/// and a zero result removes a sparse element.
pub trait Aggregator: Send + Sync + 'static {
    fn combine_i64(&self, current: i64, pushed: i64) -> i64;
    fn combine_f64(&self, current: f64, pushed: f64) -> f64;
}

/// An aggregation resolved for a model: built-ins stay monomorphic in the push loop.
#[derive(Clone)]
pub enum Aggregation {
    Add,
    Max,
    Min,
    Replace,
    Custom(Arc<dyn Aggregator>),
}

impl std::fmt::Debug for Aggregation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Aggregation::Add => f.write_str("Add"),
            Aggregation::Max => f.write_str("Max"),
            Aggregation::Min => f.write_str("Min"),
            Aggregation::Replace => f.write_str("Replace"),
            Aggregation::Custom(_) => f.write_str("Custom"),
        }
    }
}

impl Aggregation {
    #[inline]
    pub fn combine<T: Value>(&self, current: T, pushed: T) -> T {
        match self {
            Aggregation::Add => current.add(pushed),
            Aggregation::Max => {
                if pushed > current {
                    pushed
                } else {
                    current
                }
            }
            Aggregation::Min => {
                if pushed < current {
                    pushed
                } else {
                    current
                }
            }
            Aggregation::Replace => pushed,
            Aggregation::Custom(agg) => {
                if T::DTYPE.is_integer() {
                    T::from_i64(agg.combine_i64(current.to_i64(), pushed.to_i64()))
                } else {
                    T::from_f64(agg.combine_f64(current.to_f64(), pushed.to_f64()))
                }
            }
        }
    }
}

/// The aggregators a server knows, by name. Cheap to clone; shared by all of a server's shards.
#[derive(Clone, Default)]
pub struct AggregatorRegistry {
    custom: Arc<RwLock<HashMap<String, Arc<dyn Aggregator>>>>,
}

impl std::fmt::Debug for AggregatorRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AggregatorRegistry").finish_non_exhaustive()
    }
}

impl AggregatorRegistry {
    /// Registers `agg` under `name`; built-in names cannot be replaced.
    pub fn register(&self, name: &str, agg: Arc<dyn Aggregator>) -> Result<()> {
        if matches!(name, "add" | "max" | "min" | "replace") {
            return Err(PsError::InvalidRequest(format!(
                "aggregator name '{name}' is built in"
            )));
        }
        let mut custom = self.custom.write().unwrap_or_else(|e| e.into_inner());
        custom.insert(name.to_string(), agg);
        Ok(())
    }

    pub fn resolve(&self, name: &str) -> Result<Aggregation> {
        Ok(match name {
            "add" => Aggregation::Add,
            "max" => Aggregation::Max,
            "min" => Aggregation::Min,
            "replace" => Aggregation::Replace,
            other => {
                let custom = self.custom.read().unwrap_or_else(|e| e.into_inner());
                let agg = custom
                    .get(other)
                    .ok_or_else(|| PsError::UnknownAggregator(other.to_string()))?;
                Aggregation::Custom(agg.clone())
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Product;
    impl Aggregator for Product {
        fn combine_i64(&self, current: i64, pushed: i64) -> i64 {
            current * pushed
        }
        fn combine_f64(&self, current: f64, pushed: f64) -> f64 {
            current * pushed
        }
    }

    #[test]
    fn builtins_and_custom_combine() {
        let reg = AggregatorRegistry::default();
        reg.register("product", Arc::new(Product)).unwrap();
        assert_eq!(reg.resolve("add").unwrap().combine(2i32, 3), 5);
        assert_eq!(reg.resolve("max").unwrap().combine(2.0f64, -3.0), 2.0);
        assert_eq!(reg.resolve("min").unwrap().combine(2i64, -3), -3);
        assert_eq!(reg.resolve("replace").unwrap().combine(2f32, 7.5), 7.5);
        assert_eq!(reg.resolve("product").unwrap().combine(4i32, 3), 12);
        assert_eq!(reg.resolve("product").unwrap().combine(0.5f32, 3.0), 1.5);
        assert!(matches!(reg.resolve("nope"), Err(PsError::UnknownAggregator(n)) if n == "nope"));
        assert!(reg.register("add", Arc::new(Product)).is_err());
    }
}
