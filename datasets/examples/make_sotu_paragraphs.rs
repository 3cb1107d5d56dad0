//! Regenerates the committed quickstart corpus `data/sotu-paragraphs.tsv.gz` from the shared
//! State of the Union file (one address per line, newlines collapsed): addresses are split at
//! sentence ends into paragraph-sized documents of about 120 words. The output is byte-for-byte
//! reproducible.
//!
//! ```text
//! cargo run -p datasets --example make_sotu_paragraphs -- ../shared/corpora/sotu.tsv.gz data/sotu-paragraphs.tsv.gz
//! ```

use std::path::PathBuf;
use std::process::ExitCode;

/// Words per paragraph: long enough for topics to show, short enough for many documents.
const TARGET_WORDS: usize = 120;

fn main() -> ExitCode {
    let args: Vec<PathBuf> = std::env::args_os().skip(1).map(PathBuf::from).collect();
    let [input, output] = &args[..] else {
        eprintln!("usage: make_sotu_paragraphs INPUT.tsv.gz OUTPUT.tsv.gz");
        return ExitCode::from(2);
    };
    match datasets::paragraphs::split_tsv_file(input, output, TARGET_WORDS) {
        Ok(stats) => {
            println!(
                "{} addresses -> {} paragraphs in {}",
                stats.documents,
                stats.paragraphs,
                output.display()
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(1)
        }
    }
}
