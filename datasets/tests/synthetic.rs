//! The synthetic generator: format invariants, determinism and agreement with the true φ.

#![allow(clippy::unwrap_used)] // helpers outside #[test] fns fail loudly on purpose

use datasets::synthetic::{DocLength, PHI_FILE, SyntheticSpec, THETA_FILE, generate};
use datasets::{Corpus, npy};

fn spec() -> SyntheticSpec {
    SyntheticSpec {
        documents: 300,
        vocabulary: 200,
        topics: 5,
        mean_doc_len: 60.0,
        doc_length: DocLength::Poisson,
        alpha: 0.1,
        beta: 0.05,
        seed: 7,
        write_theta: true,
    }
}

#[test]
fn corpus_is_consistent_with_manifest_vocab_and_truth() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = generate(&spec(), dir.path()).unwrap();
    let corpus = Corpus::open(dir.path()).unwrap();
    assert_eq!(manifest.documents, 300);
    assert_eq!(manifest.vocabulary_size, 200);
    assert!(manifest.extra.contains_key("synthetic"));
    let vocab = corpus.vocabulary().unwrap();
    assert!(vocab.is_ranked(), "ids must be ranked by descending count");

    let mut counts = vec![0u64; 200];
    let mut tokens = 0u64;
    for doc in corpus.documents().unwrap() {
        let doc = doc.unwrap();
        assert!(!doc.tokens.is_empty());
        tokens += doc.tokens.len() as u64;
        for t in doc.tokens {
            counts[t as usize] += 1;
        }
    }
    assert_eq!(tokens, manifest.tokens);
    assert_eq!(counts, vocab.counts());
    let mean = tokens as f64 / 300.0;
    assert!((mean - 60.0).abs() < 3.0, "mean length {mean}");

    let phi = npy::read(&dir.path().join(PHI_FILE)).unwrap();
    assert_eq!((phi.rows, phi.cols), (5, 200));
    for k in 0..5 {
        assert!((phi.row(k).iter().sum::<f64>() - 1.0).abs() < 1e-9);
    }
    let theta = npy::read(&dir.path().join(THETA_FILE)).unwrap();
    assert_eq!((theta.rows, theta.cols), (300, 5));

    // Expected word frequencies from the truth agree with the observed ones (the column
    // permutation of φ must follow the vocabulary ids).
    let mut expected = vec![0.0; 200];
    let reader = corpus.documents().unwrap();
    for (d, doc) in reader.enumerate() {
        let n = doc.unwrap().tokens.len() as f64;
        for k in 0..5 {
            for (w, e) in expected.iter_mut().enumerate() {
                *e += n * theta.row(d)[k] * phi.row(k)[w];
            }
        }
    }
    let top_expected: f64 = expected[..10].iter().sum();
    let top_observed: f64 = counts[..10].iter().sum::<u64>() as f64;
    assert!(
        (top_expected - top_observed).abs() / top_observed < 0.1,
        "{top_expected} vs {top_observed}"
    );
    assert!(!dir.path().join(".synthetic-scratch").exists());
}

#[test]
fn same_seed_same_corpus_other_seed_other_corpus() {
    let read = |seed: u64| {
        let dir = tempfile::tempdir().unwrap();
        generate(
            &SyntheticSpec {
                seed,
                documents: 50,
                write_theta: false,
                ..spec()
            },
            dir.path(),
        )
        .unwrap();
        let corpus = Corpus::open(dir.path()).unwrap();
        corpus
            .documents()
            .unwrap()
            .map(|d| d.unwrap().tokens)
            .collect::<Vec<_>>()
    };
    assert_eq!(read(1), read(1));
    assert_ne!(read(1), read(2));
}

#[test]
fn fixed_lengths_and_invalid_specs() {
    let dir = tempfile::tempdir().unwrap();
    let m = generate(
        &SyntheticSpec {
            doc_length: DocLength::Fixed,
            mean_doc_len: 12.0,
            documents: 20,
            ..spec()
        },
        dir.path(),
    )
    .unwrap();
    assert_eq!(m.tokens, 240);
    assert!(
        generate(
            &SyntheticSpec {
                topics: 0,
                ..spec()
            },
            dir.path()
        )
        .is_err()
    );
    assert!(
        generate(
            &SyntheticSpec {
                alpha: -1.0,
                ..spec()
            },
            dir.path()
        )
        .is_err()
    );
}
