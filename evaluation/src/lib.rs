//! Topic-model quality, computed from φ alone so that every system's model — glint-lda's or a
//! baseline's `phi.npy` + `vocab.txt` — is scored by the same code.
//!
//! * [`perplexity`]: held-out perplexity by document completion (Wallach et al. 2009), the
//!   predictive figure (unlike the collapsed joint's exp(−log p(w, z)/N) that training logs).
//! * [`coherence`]: UMass and NPMI coherence of the top words, and topic diversity.
//! * [`recovery`], [`matching`]: distance to a known truth after a one-to-one topic matching.
//! * [`fold_in`], [`infer`]: θ for new documents with φ fixed (inference, and the basis of
//!   perplexity), written to Parquet.
//! * [`report`]: the comparison report (HTML with inline SVG, and Markdown).
//! * [`model`], [`docs`]: a model directory, and documents aligned to its vocabulary by term.
//!
//! ```
//! use evaluation::{AlignedDocs, PerplexityOptions, TopicModel, held_out_perplexity};
//! // Two topics over four terms, α = 0.1.
//! let phi = vec![0.45, 0.45, 0.05, 0.05, 0.05, 0.05, 0.45, 0.45];
//! let vocab = ["a", "b", "c", "d"].map(String::from).to_vec();
//! let model = TopicModel::new(2, phi, vocab, Some(vec![0.1, 0.1]))?;
//! let test = AlignedDocs::from_ids(vec!["d".into()], vec![vec![0, 1, 0, 1, 0, 1]], 4);
//! let r = held_out_perplexity(&model, &test, &PerplexityOptions::default())?;
//! assert!(r.perplexity > 1.0 && r.perplexity < 4.0);
//! # Ok::<(), evaluation::EvalError>(())
//! ```

pub mod coherence;
pub mod docs;
pub mod error;
pub mod fold_in;
pub mod fold_in_mh;
pub mod fold_in_sparse;
pub mod infer;
pub mod matching;
pub mod model;
pub mod perplexity;
pub mod recovery;
pub mod report;

pub use coherence::{Coherence, coherence, topic_diversity};
pub use docs::AlignedDocs;
pub use error::{EvalError, Result};
pub use fold_in::{FoldIn, FoldInOptions};
pub use infer::{FoldInMethod, infer_theta, write_theta};
pub use model::TopicModel;
pub use perplexity::{HeldOutPerplexity, PerplexityOptions, held_out_perplexity};
pub use recovery::{Truth, topic_recovery};
pub use report::{RunSummary, render_html, render_markdown};
