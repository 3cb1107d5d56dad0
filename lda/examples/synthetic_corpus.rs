//! Writes a synthetic LDA corpus (with its true φ) for benchmarks, plus `terms.txt` (one document
//! per line of space-separated terms) so other toolkits train on exactly the same documents:
//! `cargo run -p lda --example synthetic_corpus -- OUT_DIR TOKENS [VOCAB] [TOPICS] [DOC_LEN] [SEED]`.

use std::path::PathBuf;
use std::process::ExitCode;

use datasets::synthetic::{DocLength, SyntheticSpec, generate};
use datasets::{Corpus, export_terms};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let num = |i: usize, default: f64| -> Option<f64> {
        match args.get(i) {
            Some(s) => s.parse().ok(),
            None => Some(default),
        }
    };
    let (Some(out), Some(tokens), Some(vocab), Some(topics), Some(len), Some(seed)) = (
        args.first().map(PathBuf::from),
        num(1, 1e6),
        num(2, 50_000.0),
        num(3, 100.0),
        num(4, 200.0),
        num(5, 42.0),
    ) else {
        eprintln!("usage: synthetic_corpus OUT_DIR TOKENS [VOCAB] [TOPICS] [DOC_LEN] [SEED]");
        return ExitCode::from(2);
    };
    let spec = SyntheticSpec {
        documents: (tokens / len).ceil().max(1.0) as u64,
        vocabulary: vocab as u32,
        topics: topics as u32,
        mean_doc_len: len,
        doc_length: DocLength::Poisson,
        alpha: 0.1,
        beta: 0.01,
        seed: seed as u64,
        write_theta: false,
    };
    let result = generate(&spec, &out).and_then(|m| {
        export_terms(&Corpus::open(&out)?, &out.join("terms.txt"))?;
        Ok(m)
    });
    match result {
        Ok(m) => {
            println!(
                "{} documents, {} tokens, {} words in {}",
                m.documents,
                m.tokens,
                m.vocabulary_size,
                out.display()
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
