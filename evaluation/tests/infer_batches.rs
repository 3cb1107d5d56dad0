//! Inference gives a document the same θ whatever batch it comes in and wherever it stands in
//! it (what a Spark UDF needs: Spark cuts a column into arbitrary batches), for both fold-ins,
//! and different documents still get their own random streams.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use evaluation::{AlignedDocs, FoldInMethod, FoldInOptions, TopicModel, infer_theta};

const K: usize = 3;
const V: usize = 6;

fn model() -> TopicModel {
    let phi = vec![
        0.4, 0.3, 0.1, 0.1, 0.05, 0.05, //
        0.05, 0.1, 0.4, 0.3, 0.1, 0.05, //
        0.1, 0.05, 0.05, 0.1, 0.3, 0.4,
    ];
    let vocab = (0..V).map(|j| format!("w{j}")).collect();
    TopicModel::new(K, phi, vocab, Some(vec![0.5; K])).unwrap()
}

fn docs(list: &[Vec<u32>]) -> AlignedDocs {
    AlignedDocs {
        ids: (0..list.len()).map(|i| i.to_string()).collect(),
        docs: list.to_vec(),
        ..AlignedDocs::default()
    }
}

fn theta(list: &[Vec<u32>], method: FoldInMethod, threads: usize) -> Vec<Vec<f64>> {
    let opts = FoldInOptions {
        sweeps: 12,
        burn_in: 4,
        seed: 9,
    };
    let flat = infer_theta(&model(), &docs(list), &[0.5; K], &opts, method, threads).unwrap();
    flat.chunks(K).map(<[f64]>::to_vec).collect()
}

#[test]
fn a_document_gets_the_same_theta_in_any_batch_and_position() {
    let a = vec![0, 1, 2, 3, 4, 5, 0, 2, 4];
    let b = vec![5, 5, 4, 3, 1];
    let c = vec![2, 3, 2, 3, 0, 1];
    for method in [
        FoldInMethod::Gibbs,
        FoldInMethod::Mh { cycles: 1 },
        FoldInMethod::Sparse,
    ] {
        let whole = theta(&[a.clone(), b.clone(), c.clone()], method, 2);
        let alone = theta(std::slice::from_ref(&c), method, 1);
        let moved = theta(&[c.clone(), a.clone()], method, 1);
        assert_eq!(whole[2], alone[0], "{method:?}");
        assert_eq!(whole[2], moved[0], "{method:?}");
        assert_eq!(whole[0], moved[1], "{method:?}");
        // Distinct documents draw distinct streams: a permutation of a's words is another
        // document and, at these few sweeps, another estimate.
        let mut a2 = a.clone();
        a2.rotate_left(1);
        let other = theta(&[a2], method, 1);
        assert_ne!(whole[0], other[0], "{method:?}");
    }
}
