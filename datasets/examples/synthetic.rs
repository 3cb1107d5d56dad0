//! Generates a synthetic LDA corpus with its true φ and θ.
//!
//! ```text
//! cargo run -p datasets --example synthetic -- OUT_DIR [DOCS VOCAB TOPICS MEAN_LEN ALPHA BETA SEED]
//! cargo run --release -p datasets --example synthetic -- /tmp/synth-100m 1000000 50000 100 100 0.1 0.01 1
//! ```

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use datasets::synthetic::{SyntheticSpec, generate};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(out) = args.first().map(PathBuf::from) else {
        eprintln!("usage: synthetic OUT_DIR [DOCS VOCAB TOPICS MEAN_LEN ALPHA BETA SEED]");
        return ExitCode::from(2);
    };
    let mut spec = SyntheticSpec::default();
    let num = |i: usize| args.get(i).map(|s| s.parse::<f64>());
    let parsed = (|| -> Result<(), std::num::ParseFloatError> {
        if let Some(v) = num(1) {
            spec.documents = v? as u64;
        }
        if let Some(v) = num(2) {
            spec.vocabulary = v? as u32;
        }
        if let Some(v) = num(3) {
            spec.topics = v? as u32;
        }
        if let Some(v) = num(4) {
            spec.mean_doc_len = v?;
        }
        if let Some(v) = num(5) {
            spec.alpha = v?;
        }
        if let Some(v) = num(6) {
            spec.beta = v?;
        }
        if let Some(v) = num(7) {
            spec.seed = v? as u64;
        }
        Ok(())
    })();
    if let Err(e) = parsed {
        eprintln!("error: bad number: {e}");
        return ExitCode::from(2);
    }
    let started = Instant::now();
    match generate(&spec, &out) {
        Ok(m) => {
            let secs = started.elapsed().as_secs_f64();
            println!(
                "{} documents, {} tokens, {} terms in {} ({secs:.1} s, {:.1} M tokens/s)",
                m.documents,
                m.tokens,
                m.vocabulary_size,
                out.display(),
                m.tokens as f64 / secs / 1e6
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(1)
        }
    }
}
