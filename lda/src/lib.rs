//! Latent Dirichlet Allocation trained by collapsed Gibbs sampling on the ps-core parameter
//! server: the exact O(K) conditional for small K, or Metropolis-Hastings cycles with word and doc
//! proposals (O(1) per token) whose every step leaves the exact conditional invariant.
//!
//! * [`conditional`]: the exact collapsed conditional every step targets; [`alpha`]: the
//!   document-topic prior per topic and its optimisation (Minka's fixed point).
//! * [`alias`], [`mh`]: Vose alias tables, the word proposal and the exactly invariant MH kernel;
//!   [`gibbs`]: the exact O(K) draw for small K; [`sparse`]: the same draw in O(K_d + log K).
//! * [`tokens`], [`doc_topics`]: a worker's tokens grouped by word, and its per-document counts.
//! * [`sampler`]: sampling a vocabulary block against its pulled rows, in document order
//!   (default) or word by word.
//! * [`model`], [`train`], [`corpus`]: n_wk and n_k on ps-core, the pipelined iteration driver and
//!   corpus loading.
//! * [`checkpoint`], [`export`], [`topics`]: checkpoints, the model directory and reading it back.
//! * [`stats`], [`math`], [`loglik`]: goodness-of-fit tests, ln Γ and the collapsed log-likelihood.
//!
//! Training on an embedded parameter server (the trainer drives ps-core's async client from its
//! own sampler threads, so it is called from plain, non-async code):
//!
//! ```
//! use lda::{Hyper, LoadedCorpus, TrainConfig, Trainer};
//! let rt = tokio::runtime::Runtime::new()?;
//! let cluster = ps_core::EmbeddedCluster::start(2, ps_core::ClusterConfig::default())?;
//! let docs = vec![Ok(("a".to_string(), vec![0, 1, 0])), Ok(("b".to_string(), vec![2, 2, 1]))];
//! let corpus = LoadedCorpus::from_documents(docs.into_iter(), 6, 3, vec![], 1)?;
//! let config = TrainConfig::new(Hyper { topics: 2, vocab: 3, alpha: 0.1, beta: 0.01 });
//! let mut trainer = Trainer::new(&cluster.client(), rt.handle().clone(), corpus, config)?;
//! let stats = trainer.run_iteration()?;
//! assert_eq!(stats.iteration, 1);
//! trainer.check_invariants()?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod alias;
pub mod alpha;
pub mod checkpoint;
pub mod cluster;
pub mod conditional;
pub mod corpus;
pub mod doc_topics;
pub mod error;
pub mod export;
pub mod gibbs;
pub mod loglik;
pub mod math;
pub mod mh;
pub mod model;
pub mod pyldavis;
pub mod rng;
pub mod sampler;
pub mod sparse;
pub mod stats;
mod telemetry;
pub mod tokens;
pub mod topics;
pub mod train;
pub mod view;

pub use alpha::{Alpha, AlphaOptimization};
pub use conditional::Hyper;
pub use corpus::LoadedCorpus;
pub use error::{LdaError, Result};
pub use sampler::SamplerKind;
pub use train::{IterationStats, SampleOrder, TrainConfig, Trainer};
