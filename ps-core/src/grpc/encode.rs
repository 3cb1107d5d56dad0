//! Conversions between ps-core messages and the wire messages of `proto/ps.proto`.
//!
//! Encoding never fails on what a client builds except for requests that cannot be represented
//! (mismatched lengths); decoding checks everything a peer sends and returns
//! [`PsError::InvalidRequest`] instead of panicking. Each conversion allocates a few buffers per
//! message, never per element.

use prost::Message;

use super::pb;
use crate::error::{PsError, Result};
use crate::master::{ClusterStatus, ModelRecord, ServerStatus};
use crate::message::Push;
use crate::row::RowBlock;
use crate::spec::{ModelSpec, PartitionerKind, Storage};
use crate::value::{DType, Values};

fn invalid(message: impl Into<String>) -> PsError {
    PsError::InvalidRequest(message.into())
}

// ---------- values ----------

/// Values into their packed wire form (moves the buffer).
pub fn values_to_pb(values: Values) -> pb::Values {
    use pb::values::Kind;
    let kind = match values {
        Values::I32(v) => Kind::I32(pb::I32s { v }),
        Values::I64(v) => Kind::I64(pb::I64s { v }),
        Values::F32(v) => Kind::F32(pb::F32s { v }),
        Values::F64(v) => Kind::F64(pb::F64s { v }),
    };
    pb::Values { kind: Some(kind) }
}

/// `values[order[i]]` for every i, in packed wire form.
fn gathered_to_pb(values: &Values, order: &[u32]) -> pb::Values {
    use pb::values::Kind;
    fn gather<T: Copy>(v: &[T], order: &[u32]) -> Vec<T> {
        order.iter().map(|&i| v[i as usize]).collect()
    }
    let kind = match values {
        Values::I32(v) => Kind::I32(pb::I32s {
            v: gather(v, order),
        }),
        Values::I64(v) => Kind::I64(pb::I64s {
            v: gather(v, order),
        }),
        Values::F32(v) => Kind::F32(pb::F32s {
            v: gather(v, order),
        }),
        Values::F64(v) => Kind::F64(pb::F64s {
            v: gather(v, order),
        }),
    };
    pb::Values { kind: Some(kind) }
}

pub fn values_from_pb(values: Option<pb::Values>) -> Result<Values> {
    use pb::values::Kind;
    match values.and_then(|v| v.kind) {
        Some(Kind::I32(x)) => Ok(Values::I32(x.v)),
        Some(Kind::I64(x)) => Ok(Values::I64(x.v)),
        Some(Kind::F32(x)) => Ok(Values::F32(x.v)),
        Some(Kind::F64(x)) => Ok(Values::F64(x.v)),
        None => Err(invalid("values without an element type")),
    }
}

// ---------- rows in request order ----------

/// Rows in any order as wrapping zigzag deltas, so that every u64 sequence survives.
pub fn rows_to_deltas(rows: &[u64]) -> Vec<i64> {
    let mut prev = 0u64;
    rows.iter()
        .map(|&r| {
            let d = r.wrapping_sub(prev) as i64;
            prev = r;
            d
        })
        .collect()
}

pub fn rows_from_deltas(deltas: &[i64]) -> Vec<u64> {
    let mut prev = 0u64;
    deltas
        .iter()
        .map(|&d| {
            prev = prev.wrapping_add(d as u64);
            prev
        })
        .collect()
}

// ---------- pushes ----------

/// A push in wire form: elements sorted by (row, col), equal cells in their original order.
pub fn push_to_pb(push: &Push) -> Result<pb::PushRequest> {
    let n = push.rows.len();
    if push.cols.len() != n || push.values.len() != n {
        return Err(invalid(format!(
            "push has {n} rows, {} columns and {} values",
            push.cols.len(),
            push.values.len()
        )));
    }
    if u32::try_from(n).is_err() {
        return Err(invalid(format!(
            "push of {n} elements is too large for one message"
        )));
    }
    let (rows, cols) = (&push.rows, &push.cols);
    let order = crate::order::by_cell(rows, cols);
    let mut row_deltas = Vec::new();
    let mut row_counts = Vec::new();
    let mut col_deltas = Vec::with_capacity(n);
    let (mut current, mut count, mut prev_col) = (None::<u64>, 0u32, 0u32);
    for &i in &order {
        let (row, col) = (rows[i as usize], cols[i as usize]);
        if current != Some(row) {
            if let Some(prev) = current {
                row_counts.push(count);
                row_deltas.push(row - prev);
            } else {
                row_deltas.push(row);
            }
            (current, count, prev_col) = (Some(row), 0, 0);
        }
        count += 1;
        col_deltas.push(col - prev_col);
        prev_col = col;
    }
    if current.is_some() {
        row_counts.push(count);
    }
    Ok(pb::PushRequest {
        model: push.model.clone(),
        writer: push.writer,
        seq: push.seq,
        row_deltas,
        row_counts,
        col_deltas,
        values: Some(gathered_to_pb(&push.values, &order)),
    })
}

/// The bytes of a push as it travels on the wire (benchmarks compare them with raw TCP).
pub fn push_bytes(push: &Push) -> Result<Vec<u8>> {
    Ok(push_to_pb(push)?.encode_to_vec())
}

pub fn push_from_pb(p: pb::PushRequest) -> Result<Push> {
    let values = values_from_pb(p.values)?;
    let mut cols = p.col_deltas;
    let n = cols.len();
    if values.len() != n || p.row_deltas.len() != p.row_counts.len() {
        return Err(invalid(format!(
            "push has {} columns, {} values, {} rows and {} row counts",
            n,
            values.len(),
            p.row_deltas.len(),
            p.row_counts.len()
        )));
    }
    let total: u64 = p.row_counts.iter().map(|&c| u64::from(c)).sum();
    if total != n as u64 {
        return Err(invalid(format!(
            "push row counts add up to {total}, not {n}"
        )));
    }
    let mut rows = Vec::with_capacity(n);
    let (mut row, mut start) = (0u64, 0usize);
    for (&delta, &count) in p.row_deltas.iter().zip(&p.row_counts) {
        row = row
            .checked_add(delta)
            .ok_or_else(|| invalid("push row index overflows u64"))?;
        let end = start + count as usize;
        let mut col = 0u32;
        // `end <= n` because the counts add up to n.
        for c in &mut cols[start..end] {
            col = col
                .checked_add(*c)
                .ok_or_else(|| invalid("push column index overflows u32"))?;
            *c = col;
        }
        rows.resize(end, row);
        start = end;
    }
    Ok(Push {
        model: p.model,
        writer: p.writer,
        seq: p.seq,
        rows,
        cols,
        values,
    })
}

// ---------- row blocks ----------

pub fn row_block_to_pb(block: RowBlock) -> Result<pb::RowBlock> {
    use pb::row_block::Kind;
    let kind = match block {
        RowBlock::Dense { cols, values } => Kind::Dense(pb::DenseRows {
            cols,
            values: Some(values_to_pb(values)),
        }),
        RowBlock::Sparse {
            offsets,
            cols,
            values,
        } => {
            let mut counts = Vec::with_capacity(offsets.len().saturating_sub(1));
            let mut col_deltas = Vec::with_capacity(cols.len());
            for w in offsets.windows(2) {
                let row = cols
                    .get(w[0] as usize..w[1] as usize)
                    .ok_or_else(|| invalid("sparse row block with inconsistent offsets"))?;
                counts.push(w[1] - w[0]);
                let mut prev = 0u32;
                for &c in row {
                    col_deltas.push(c.wrapping_sub(prev));
                    prev = c;
                }
            }
            Kind::Sparse(pb::SparseRows {
                counts,
                col_deltas,
                values: Some(values_to_pb(values)),
            })
        }
    };
    Ok(pb::RowBlock { kind: Some(kind) })
}

pub fn row_block_from_pb(block: pb::RowBlock) -> Result<RowBlock> {
    use pb::row_block::Kind;
    match block.kind {
        Some(Kind::Dense(d)) => Ok(RowBlock::Dense {
            cols: d.cols,
            values: values_from_pb(d.values)?,
        }),
        Some(Kind::Sparse(s)) => {
            let values = values_from_pb(s.values)?;
            let mut cols = s.col_deltas;
            if cols.len() != values.len() || u32::try_from(cols.len()).is_err() {
                return Err(invalid("sparse rows with mismatched columns and values"));
            }
            let mut offsets = Vec::with_capacity(s.counts.len() + 1);
            offsets.push(0u32);
            let mut start = 0u32;
            for &count in &s.counts {
                let end = start
                    .checked_add(count)
                    .filter(|&e| e as usize <= cols.len())
                    .ok_or_else(|| invalid("sparse row counts exceed the columns sent"))?;
                let mut col = 0u32;
                for c in &mut cols[start as usize..end as usize] {
                    col = col
                        .checked_add(*c)
                        .ok_or_else(|| invalid("column overflows u32"))?;
                    *c = col;
                }
                offsets.push(end);
                start = end;
            }
            if start as usize != cols.len() {
                return Err(invalid("sparse row counts do not cover the columns sent"));
            }
            Ok(RowBlock::Sparse {
                offsets,
                cols,
                values,
            })
        }
        None => Err(invalid("row block without rows")),
    }
}

// ---------- models ----------

pub(crate) fn dtype_to_pb(d: DType) -> pb::DType {
    match d {
        DType::I32 => pb::DType::I32,
        DType::I64 => pb::DType::I64,
        DType::F32 => pb::DType::F32,
        DType::F64 => pb::DType::F64,
    }
}

pub(crate) fn dtype_from_pb(d: i32) -> Result<DType> {
    match pb::DType::try_from(d) {
        Ok(pb::DType::I32) => Ok(DType::I32),
        Ok(pb::DType::I64) => Ok(DType::I64),
        Ok(pb::DType::F32) => Ok(DType::F32),
        Ok(pb::DType::F64) => Ok(DType::F64),
        Err(_) => Err(invalid(format!("unknown element type {d}"))),
    }
}

pub fn spec_to_pb(s: &ModelSpec) -> pb::ModelSpec {
    pb::ModelSpec {
        name: s.name.clone(),
        rows: s.rows,
        cols: s.cols,
        dtype: dtype_to_pb(s.dtype) as i32,
        storage: match s.storage {
            Storage::Dense => pb::Storage::Dense,
            Storage::Sparse => pb::Storage::Sparse,
        } as i32,
        partitioner: match s.partitioner {
            PartitionerKind::Range => pb::PartitionerKind::Range,
            PartitionerKind::Cyclic => pb::PartitionerKind::Cyclic,
        } as i32,
        aggregator: s.aggregator.clone(),
    }
}

pub fn spec_from_pb(s: Option<pb::ModelSpec>) -> Result<ModelSpec> {
    let s = s.ok_or_else(|| invalid("missing model specification"))?;
    let storage = match pb::Storage::try_from(s.storage) {
        Ok(pb::Storage::Dense) => Storage::Dense,
        Ok(pb::Storage::Sparse) => Storage::Sparse,
        Err(_) => return Err(invalid(format!("unknown storage {}", s.storage))),
    };
    let partitioner = match pb::PartitionerKind::try_from(s.partitioner) {
        Ok(pb::PartitionerKind::Range) => PartitionerKind::Range,
        Ok(pb::PartitionerKind::Cyclic) => PartitionerKind::Cyclic,
        Err(_) => return Err(invalid(format!("unknown partitioner {}", s.partitioner))),
    };
    Ok(ModelSpec {
        name: s.name,
        rows: s.rows,
        cols: s.cols,
        dtype: dtype_from_pb(s.dtype)?,
        storage,
        partitioner,
        aggregator: s.aggregator,
    })
}

pub fn record_to_pb(r: &ModelRecord) -> pb::ModelRecord {
    pb::ModelRecord {
        spec: Some(spec_to_pb(&r.spec)),
        shards: r.shards,
    }
}

pub fn record_from_pb(r: pb::ModelRecord) -> Result<ModelRecord> {
    Ok(ModelRecord {
        spec: spec_from_pb(r.spec)?,
        shards: r.shards,
    })
}

fn millis(d: std::time::Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

pub fn status_to_pb(s: &ClusterStatus) -> pb::StatusReply {
    pb::StatusReply {
        cluster: s.cluster.clone(),
        server_timeout_ms: millis(s.server_timeout),
        servers: s
            .servers
            .iter()
            .map(|v| pb::ServerStatus {
                shard: v.shard,
                addr: v.addr.clone().unwrap_or_default(),
                seen: v.last_seen.is_some(),
                last_seen_ms: v.last_seen.map_or(0, millis),
                alive: v.alive,
            })
            .collect(),
    }
}

pub fn status_from_pb(s: pb::StatusReply) -> ClusterStatus {
    use std::time::Duration;
    ClusterStatus {
        cluster: s.cluster,
        server_timeout: Duration::from_millis(s.server_timeout_ms),
        servers: s
            .servers
            .into_iter()
            .map(|v| ServerStatus {
                shard: v.shard,
                addr: (!v.addr.is_empty()).then_some(v.addr),
                last_seen: v.seen.then(|| Duration::from_millis(v.last_seen_ms)),
                alive: v.alive,
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::grpc::status::error_from_status;
    use proptest::prelude::*;
    use prost::bytes::Bytes;
    use tonic::{Code, Status};

    fn push(rows: Vec<u64>, cols: Vec<u32>, values: Values) -> Push {
        Push {
            model: "m".into(),
            writer: 9,
            seq: 4,
            rows,
            cols,
            values,
        }
    }

    /// The push a shard sees: the same elements, stably sorted by cell.
    fn sorted(p: &Push) -> Push {
        let mut idx: Vec<usize> = (0..p.rows.len()).collect();
        idx.sort_by_key(|&i| (p.rows[i], p.cols[i]));
        Push {
            rows: idx.iter().map(|&i| p.rows[i]).collect(),
            cols: idx.iter().map(|&i| p.cols[i]).collect(),
            values: p.values.gather(&idx),
            ..p.clone()
        }
    }

    proptest! {
        #[test]
        fn pushes_round_trip_sorted_and_stable(
            cells in proptest::collection::vec((any::<u64>(), any::<u32>(), any::<i32>()), 0..200),
            dup in 0usize..50,
        ) {
            let mut cells = cells;
            // Repeat some cells so that the order within a cell is exercised.
            for i in 0..dup.min(cells.len()) {
                let (r, c, _) = cells[i];
                cells.push((r, c, i as i32));
            }
            let p = push(
                cells.iter().map(|x| x.0).collect(),
                cells.iter().map(|x| x.1).collect(),
                Values::I32(cells.iter().map(|x| x.2).collect()),
            );
            let wire = push_to_pb(&p).unwrap().encode_to_vec();
            let back = push_from_pb(pb::PushRequest::decode(wire.as_slice()).unwrap()).unwrap();
            prop_assert_eq!(back, sorted(&p));
        }

        #[test]
        fn row_deltas_round_trip(rows in proptest::collection::vec(any::<u64>(), 0..100)) {
            prop_assert_eq!(rows_from_deltas(&rows_to_deltas(&rows)), rows);
        }

        #[test]
        fn garbage_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            if let Ok(p) = pb::PushRequest::decode(bytes.as_slice()) {
                let _ = push_from_pb(p);
            }
            if let Ok(b) = pb::RowBlock::decode(bytes.as_slice()) {
                let _ = row_block_from_pb(b);
            }
            if let Ok(s) = pb::CreateRequest::decode(bytes.as_slice()) {
                let _ = spec_from_pb(s.spec);
            }
            let status = Status::with_details(Code::Internal, "x", Bytes::from(bytes));
            let _ = error_from_status(&status);
        }
    }

    #[test]
    fn sparse_blocks_round_trip() {
        let block = RowBlock::Sparse {
            offsets: vec![0, 2, 2, 5],
            cols: vec![1, 7, 0, 3, 999],
            values: Values::F64(vec![1.0, -2.0, 3.5, 0.25, 9.0]),
        };
        assert_eq!(
            row_block_from_pb(row_block_to_pb(block.clone()).unwrap()).unwrap(),
            block
        );
        let dense = RowBlock::Dense {
            cols: 2,
            values: Values::I64(vec![1, 2, 3, 4]),
        };
        assert_eq!(
            row_block_from_pb(row_block_to_pb(dense.clone()).unwrap()).unwrap(),
            dense
        );
    }

    #[test]
    fn inconsistent_pushes_are_rejected() {
        let ok = push_to_pb(&push(
            vec![1, 1, 5],
            vec![0, 3, 2],
            Values::I64(vec![1, 2, 3]),
        ))
        .unwrap();
        let mut bad = ok.clone();
        bad.row_counts = vec![2, 2];
        assert!(matches!(push_from_pb(bad), Err(PsError::InvalidRequest(_))));
        let mut bad = ok.clone();
        bad.row_deltas = vec![1, u64::MAX];
        assert!(matches!(push_from_pb(bad), Err(PsError::InvalidRequest(_))));
        let mut bad = ok.clone();
        bad.col_deltas = vec![1, u32::MAX, 2];
        assert!(matches!(push_from_pb(bad), Err(PsError::InvalidRequest(_))));
        let mut bad = ok;
        bad.values = None;
        assert!(matches!(push_from_pb(bad), Err(PsError::InvalidRequest(_))));
        let mismatched = push(vec![1, 2], vec![0], Values::I32(vec![1, 2]));
        assert!(matches!(
            push_to_pb(&mismatched),
            Err(PsError::InvalidRequest(_))
        ));
    }

    /// The LDA-like push of the benchmark stays within 4 wire bytes per update.
    #[test]
    fn lda_push_is_compact() {
        use rand::{RngExt, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(3);
        let n = 100_000;
        let rows = (0..n)
            .map(|_| rng.random_range(0..1_000u64) * 100)
            .collect();
        let cols = (0..n).map(|_| rng.random_range(0..1_000u32)).collect();
        let values = Values::I32(
            (0..n)
                .map(|_| if rng.random_bool(0.5) { 1 } else { -1 })
                .collect(),
        );
        let bytes = push_to_pb(&push(rows, cols, values)).unwrap().encoded_len();
        assert!(bytes <= 4 * n, "{bytes} bytes for {n} updates");
    }
}
