//! Random sequences of create / push / pull / destroy, checked against a plain `HashMap` per model.
//! Covers both partitioners, dense and sparse storage, and additive and replacing aggregation.

use std::collections::HashMap;

use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::{Config, TestRng, TestRunner};
use ps_core::{Client, DType, Matrix, ModelSpec, PartitionerKind, Storage};

#[derive(Debug, Clone)]
enum Op {
    Create {
        storage: Storage,
        partitioner: PartitionerKind,
        rows: u64,
        cols: u32,
        replace: bool,
    },
    Push(Vec<(u64, u32, i64)>),
    PullRows(Vec<u64>),
    Pull(Vec<(u64, u32)>),
    Destroy,
}

fn op() -> impl Strategy<Value = Op> {
    let cell = (0u64..40, 0u32..12);
    prop_oneof![
        1 => (any::<bool>(), any::<bool>(), 1u64..40, 1u32..12, any::<bool>()).prop_map(|(s, p, rows, cols, replace)| Op::Create {
            storage: if s { Storage::Sparse } else { Storage::Dense },
            partitioner: if p { PartitionerKind::Cyclic } else { PartitionerKind::Range },
            rows, cols, replace,
        }),
        6 => proptest::collection::vec((cell.clone(), -3i64..4), 0..30)
            .prop_map(|v| Op::Push(v.into_iter().map(|((r, c), x)| (r, c, x)).collect())),
        2 => proptest::collection::vec(0u64..40, 0..10).prop_map(Op::PullRows),
        2 => proptest::collection::vec(cell, 0..20).prop_map(Op::Pull),
        1 => Just(Op::Destroy),
    ]
}

struct Live {
    matrix: Matrix<i64>,
    rows: u64,
    cols: u32,
    replace: bool,
    reference: HashMap<(u64, u32), i64>,
}

/// Draws `steps` operations from a seeded strategy and applies them to the cluster and the reference.
pub async fn run(client: &Client, seed: u64, steps: usize) {
    let mut seed_bytes = [0u8; 32];
    seed_bytes[..8].copy_from_slice(&seed.to_le_bytes());
    let rng = TestRng::from_seed(proptest::test_runner::RngAlgorithm::ChaCha, &seed_bytes);
    let mut runner = TestRunner::new_with_rng(Config::default(), rng);
    let ops = proptest::collection::vec(op(), steps)
        .new_tree(&mut runner)
        .unwrap()
        .current();
    let mut live: Option<Live> = None;
    let mut generation = 0;
    for (step, op) in ops.into_iter().enumerate() {
        match (op, live.as_mut()) {
            (
                Op::Create {
                    storage,
                    partitioner,
                    rows,
                    cols,
                    replace,
                },
                _,
            ) => {
                if let Some(old) = live.take() {
                    client.destroy(&old.matrix.spec().name).await.unwrap();
                }
                generation += 1;
                let spec =
                    ModelSpec::matrix(format!("prop-{seed}-{generation}"), rows, cols, DType::I64)
                        .with_storage(storage)
                        .with_partitioner(partitioner)
                        .with_aggregator(if replace { "replace" } else { "add" });
                let matrix = client.create_matrix::<i64>(spec).await.unwrap();
                live = Some(Live {
                    matrix,
                    rows,
                    cols,
                    replace,
                    reference: HashMap::new(),
                });
            }
            (Op::Push(cells), Some(l)) => {
                let cells: Vec<_> = cells
                    .into_iter()
                    .filter(|&(r, c, _)| r < l.rows && c < l.cols)
                    .collect();
                let rows: Vec<u64> = cells.iter().map(|c| c.0).collect();
                let cols: Vec<u32> = cells.iter().map(|c| c.1).collect();
                let vals: Vec<i64> = cells.iter().map(|c| c.2).collect();
                // Replace with repeated cells in one push is order-dependent; keep the last write.
                l.matrix.push(&rows, &cols, &vals).await.unwrap();
                for (r, c, v) in cells {
                    let e = l.reference.entry((r, c)).or_insert(0);
                    *e = if l.replace { v } else { *e + v };
                }
            }
            (Op::PullRows(rows), Some(l)) => {
                let rows: Vec<u64> = rows.into_iter().filter(|&r| r < l.rows).collect();
                let got = l.matrix.pull_rows(&rows).await.unwrap();
                for (row, data) in rows.iter().zip(got) {
                    for c in 0..l.cols {
                        let want = l.reference.get(&(*row, c)).copied().unwrap_or(0);
                        assert_eq!(data.get(c), want, "step {step}: row {row} col {c}");
                    }
                }
            }
            (Op::Pull(cells), Some(l)) => {
                let cells: Vec<_> = cells
                    .into_iter()
                    .filter(|&(r, c)| r < l.rows && c < l.cols)
                    .collect();
                let rows: Vec<u64> = cells.iter().map(|c| c.0).collect();
                let cols: Vec<u32> = cells.iter().map(|c| c.1).collect();
                let got = l.matrix.pull(&rows, &cols).await.unwrap();
                for ((r, c), v) in cells.into_iter().zip(got) {
                    assert_eq!(
                        v,
                        l.reference.get(&(r, c)).copied().unwrap_or(0),
                        "step {step}: ({r},{c})"
                    );
                }
            }
            (Op::Destroy, Some(l)) => {
                client.destroy(&l.matrix.spec().name).await.unwrap();
                live = None;
            }
            (_, None) => {}
        }
    }
}
