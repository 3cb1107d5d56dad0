//! Model quality measures for glint-lda: held-out perplexity, topic coherence and comparison
//! reports against baseline toolkits.
//!
//! This crate is deliberately empty: no issue has asked for these measures yet, and nothing here
//! pretends to compute them. Training already reports the log-likelihood and the perplexity of the
//! collapsed joint per iteration (`lda`, `metrics.jsonl`).
