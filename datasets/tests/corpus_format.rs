//! Round trips through the corpus format: writer → directory → reader, remap and export.

#![allow(clippy::unwrap_used)] // helpers outside #[test] fns fail loudly on purpose

use std::collections::BTreeMap;

use datasets::{
    Corpus, CorpusWriter, DROPPED, DatasetsError, Document, ManifestExtras, TermStats, Vocabulary,
    WriterOptions, export_terms, remap_documents,
};
use proptest::prelude::*;

fn vocab(n: u32) -> Vocabulary {
    Vocabulary::from_ordered(
        (0..n)
            .map(|i| TermStats {
                term: format!("t{i}"),
                count: u64::from(n - i),
                docs: 1,
            })
            .collect(),
    )
}

fn small_options() -> WriterOptions {
    WriterOptions {
        docs_per_row_group: 3,
        tokens_per_row_group: 1 << 20,
        tokens_per_part: 10,
    }
}

fn write(
    dir: &std::path::Path,
    docs: &[Document],
    v: u32,
    options: WriterOptions,
) -> datasets::Manifest {
    let mut w = CorpusWriter::create(dir, options).unwrap();
    for d in docs {
        w.write_document(&d.id, &d.tokens).unwrap();
    }
    let mut skipped = BTreeMap::new();
    skipped.insert("empty".to_owned(), 2);
    w.finish(
        &vocab(v),
        ManifestExtras {
            skipped,
            analyzer: serde_json::json!({"preset": "none"}),
            inputs: vec![serde_json::json!("input.txt")],
            extra: BTreeMap::new(),
        },
    )
    .unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    /// Every document comes back in order, across row groups and parts, and the manifest's token
    /// count equals the tokens read back.
    #[test]
    fn documents_round_trip(docs in prop::collection::vec(prop::collection::vec(0u32..50, 0..20), 0..40)) {
        let dir = tempfile::tempdir().unwrap();
        let docs: Vec<Document> = docs.into_iter().enumerate()
            .map(|(i, tokens)| Document { id: format!("doc{i}"), tokens })
            .collect();
        let manifest = write(dir.path(), &docs, 50, small_options());
        let corpus = Corpus::open(dir.path()).unwrap();
        let back: Vec<Document> = corpus.documents().unwrap().collect::<Result<_, _>>().unwrap();
        prop_assert_eq!(&back, &docs);
        let tokens: u64 = back.iter().map(|d| d.tokens.len() as u64).sum();
        prop_assert_eq!(manifest.tokens, tokens);
        prop_assert_eq!(corpus.manifest(), &manifest);
    }

    /// Remapping keeps every token whose term survives and drops exactly the others.
    #[test]
    fn remap_preserves_surviving_token_counts(
        docs in prop::collection::vec(prop::collection::vec(0u32..20, 1..15), 1..20),
        dropped in prop::collection::btree_set(0u32..20, 0..10),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let docs: Vec<Document> = docs.into_iter().enumerate()
            .map(|(i, tokens)| Document { id: format!("d{i}"), tokens })
            .collect();
        let mut mapping = Vec::new();
        let mut next = 0;
        for t in 0..20u32 {
            if dropped.contains(&t) { mapping.push(DROPPED) } else { mapping.push(next); next += 1; }
        }
        let mut w = CorpusWriter::create(dir.path(), small_options()).unwrap();
        let stats = remap_documents(docs.iter().cloned().map(Ok), &mapping, &mut w).unwrap();
        let expected: u64 = docs.iter().flat_map(|d| &d.tokens).filter(|t| !dropped.contains(t)).count() as u64;
        prop_assert_eq!(stats.tokens_out, expected);
        prop_assert_eq!(w.tokens(), expected);
        let emptied = docs.iter().filter(|d| d.tokens.iter().all(|t| dropped.contains(t))).count() as u64;
        prop_assert_eq!(stats.emptied, emptied);
        prop_assert_eq!(stats.documents_out + stats.emptied, docs.len() as u64);
    }
}

#[test]
fn parts_roll_over_and_open_checks_files() {
    let dir = tempfile::tempdir().unwrap();
    let docs: Vec<Document> = (0..10)
        .map(|i| Document {
            id: format!("d{i}"),
            tokens: vec![1, 2, 3, 4],
        })
        .collect();
    let manifest = write(dir.path(), &docs, 5, small_options());
    assert!(manifest.parts.len() > 1, "{:?}", manifest.parts);
    assert_eq!(manifest.vocabulary_size, 5);
    assert_eq!(manifest.skipped_total(), 2);
    std::fs::remove_file(dir.path().join(&manifest.parts[1])).unwrap();
    let err = Corpus::open(dir.path()).unwrap_err().to_string();
    assert!(err.contains("part-00001"), "{err}");
}

#[test]
fn finish_rejects_token_outside_vocabulary() {
    let dir = tempfile::tempdir().unwrap();
    let mut w = CorpusWriter::create(dir.path(), WriterOptions::default()).unwrap();
    w.write_document("a", &[7]).unwrap();
    let err = w.finish(&vocab(3), ManifestExtras::default()).unwrap_err();
    assert!(matches!(err, DatasetsError::InvalidArgument(_)), "{err}");
    assert!(
        Corpus::open(dir.path()).is_err(),
        "no manifest may be written"
    );
}

#[test]
fn open_without_manifest_names_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let err = Corpus::open(dir.path()).unwrap_err().to_string();
    assert!(err.contains("manifest.json"), "{err}");
}

#[test]
fn vocabulary_size_mismatch_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), &[], 4, WriterOptions::default());
    std::fs::write(dir.path().join("vocab.tsv"), "0\tx\t1\t1\n").unwrap();
    let corpus = Corpus::open(dir.path()).unwrap();
    let err = corpus.vocabulary().unwrap_err().to_string();
    assert!(err.contains("vocabulary_size = 4"), "{err}");
}

#[test]
fn export_writes_one_line_of_terms_per_document() {
    let dir = tempfile::tempdir().unwrap();
    let docs = vec![
        Document {
            id: "a".into(),
            tokens: vec![0, 2],
        },
        Document {
            id: "b".into(),
            tokens: vec![1],
        },
    ];
    write(dir.path(), &docs, 3, WriterOptions::default());
    let corpus = Corpus::open(dir.path()).unwrap();
    let out = dir.path().join("export.txt");
    assert_eq!(export_terms(&corpus, &out).unwrap(), 2);
    assert_eq!(std::fs::read_to_string(&out).unwrap(), "t0 t2\nt1\n");
}

#[test]
fn encoder_errors_surface_with_the_part_path() {
    let dir = tempfile::tempdir().unwrap();
    let mut w = CorpusWriter::create(dir.path(), small_options()).unwrap();
    // A directory where the first part file should go makes the encoder fail.
    std::fs::create_dir(dir.path().join("docs/part-00000.parquet")).unwrap();
    let mut result = Ok(());
    for i in 0..20 {
        result = result.and_then(|()| w.write_document(&format!("d{i}"), &[1, 2]));
    }
    let err = match result {
        Err(e) => e,
        Ok(()) => w.finish(&vocab(3), ManifestExtras::default()).unwrap_err(),
    };
    assert!(err.to_string().contains("part-00000.parquet"), "{err}");
    assert!(Corpus::open(dir.path()).is_err());
}
