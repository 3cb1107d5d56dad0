//! The pipeline against a reference model: for random documents, the corpus read back through its
//! vocabulary equals the analyzer's terms of each kept document, in input order, whatever the
//! thread count; counts and manifest agree.

#![allow(clippy::unwrap_used)] // helpers outside #[test] fns fail loudly on purpose

use std::collections::HashMap;

use datasets::Corpus;
use ingest::{
    Analyzer, AnalyzerConfig, IngestOptions, ParquetColumns, Preset, Progress, VocabularyFilter,
};
use proptest::prelude::*;

const WORDS: &[&str] = &[
    "river",
    "rivers",
    "forest",
    "forests",
    "the",
    "and",
    "running",
    "runs",
    "mountain",
    "valley",
    "x86",
    "über",
    "naïve",
    "café",
    "of",
    "data",
    "databases",
    "model",
    "modelling",
    "a",
];

fn options(
    input: &std::path::Path,
    out: &std::path::Path,
    threads: usize,
    min_count: u64,
) -> IngestOptions {
    IngestOptions {
        inputs: vec![input.display().to_string()],
        format: None,
        parquet: ParquetColumns {
            text: "text".into(),
            id: None,
        },
        analyzer: AnalyzerConfig::preset(Preset::Seed),
        filter: VocabularyFilter {
            min_count,
            ..VocabularyFilter::default()
        },
        threads,
        strict: false,
        max_doc_tokens: ingest::pipeline::DEFAULT_MAX_DOC_TOKENS,
        out_dir: out.to_path_buf(),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(12))]

    #[test]
    fn corpus_matches_the_analyzer(
        docs in prop::collection::vec(prop::collection::vec(0..WORDS.len(), 0..25), 1..60),
        threads in 1usize..4,
        min_count in 1u64..3,
    ) {
        let tmp = tempfile::tempdir().unwrap();
        let input = tmp.path().join("in.tsv");
        let texts: Vec<String> = docs.iter()
            .map(|d| d.iter().map(|&w| WORDS[w]).collect::<Vec<_>>().join(" "))
            .collect();
        let tsv: String = texts.iter().enumerate().map(|(i, t)| format!("d{i}\t{t}\n")).collect();
        std::fs::write(&input, tsv).unwrap();
        let out = tmp.path().join("c");
        let result = ingest::run(&options(&input, &out, threads, min_count), &Progress::default());

        // Reference: analyze each text, count terms, keep those reaching min_count.
        let mut analyzer = Analyzer::new(AnalyzerConfig::preset(Preset::Seed)).unwrap();
        let analyzed: Vec<Vec<String>> = texts.iter().map(|t| analyzer.terms(t)).collect();
        let mut counts: HashMap<&str, u64> = HashMap::new();
        for t in analyzed.iter().flatten() { *counts.entry(t).or_default() += 1; }
        let expected: Vec<(String, Vec<String>)> = analyzed.iter().enumerate()
            .map(|(i, terms)| (format!("d{i}"), terms.iter().filter(|t| counts[t.as_str()] >= min_count).cloned().collect::<Vec<_>>()))
            .filter(|(_, terms)| !terms.is_empty())
            .collect();
        if expected.is_empty() {
            // Nothing to keep: an error, and no corpus (nor staging directory) left behind.
            prop_assert!(matches!(result, Err(ingest::IngestError::NothingKept(_))), "{result:?}");
            prop_assert_eq!(std::fs::read_dir(tmp.path()).unwrap().count(), 1);
            return Ok(());
        }
        let report = result.unwrap();

        let corpus = Corpus::open(&out).unwrap();
        let vocab = corpus.vocabulary().unwrap();
        prop_assert!(vocab.is_ranked());
        let got: Vec<(String, Vec<String>)> = corpus.documents().unwrap()
            .map(|d| { let d = d.unwrap(); (d.id, d.tokens.iter().map(|&t| vocab.term(t).unwrap().to_owned()).collect()) })
            .collect();
        prop_assert_eq!(&got, &expected);
        let tokens: u64 = got.iter().map(|(_, t)| t.len() as u64).sum();
        prop_assert_eq!(corpus.manifest().tokens, tokens);
        prop_assert_eq!(report.tokens, tokens);
        prop_assert_eq!(vocab.total_count(), tokens);
        prop_assert_eq!(report.docs_read, docs.len() as u64);
        prop_assert_eq!(report.docs_kept + report.skipped.values().sum::<u64>(), docs.len() as u64);
    }
}

#[test]
fn strict_stops_at_the_first_skip_and_leaves_no_corpus() {
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("in.tsv");
    std::fs::write(&input, "a\triver forest\nb\t\nc\tvalley\n").unwrap();
    let out = tmp.path().join("c");
    let mut opts = options(&input, &out, 2, 1);
    opts.strict = true;
    let err = ingest::run(&opts, &Progress::default())
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("strict mode") && err.contains("in.tsv:2"),
        "{err}"
    );
    assert!(Corpus::open(&out).is_err());
    assert!(
        !out.join(".ingest-scratch").exists(),
        "scratch files are removed"
    );
}
