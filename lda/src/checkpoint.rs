//! Checkpoints: everything needed to continue a run exactly where it stopped.
//!
//! `MODEL_DIR/checkpoint/` holds `state.json` (iteration, settings, each worker's RNG state, n_k,
//! the optimised α if any),
//! `assign-S.bin` (worker S's topic assignments, u16 little-endian, document order) and
//! `word_topic.parquet` (the model's n_wk). A checkpoint is written to `checkpoint.tmp/`, synced,
//! and swapped in by renames, so a crash leaves either the old or the new one.
//!
//! On resume the model is reloaded into ps-core from the assignments (n_wk and n_k are functions
//! of them) and checked against the saved n_wk and n_k.

use std::fs::{self, File};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use ps_core::Client;
use serde::{Deserialize, Serialize};
use tokio::runtime::Handle;

use crate::alpha::{Alpha, AlphaOptimization};
use crate::conditional::Hyper;
use crate::corpus::LoadedCorpus;
use crate::error::{LdaError, Result};
use crate::export::{SparseCounts, read_word_topic, write_json, write_word_topic};
use crate::rng::SamplerRng;
use crate::sampler::SamplerKind;
use crate::train::{SampleOrder, TrainConfig, Trainer};

pub const CHECKPOINT_DIR: &str = "checkpoint";
const STATE_FILE: &str = "state.json";
const FORMAT: u32 = 1;

#[derive(Debug, Serialize, Deserialize)]
struct State {
    format: u32,
    iteration: u32,
    hyper: Hyper,
    mh_cycles: u32,
    /// Settings that shape the visiting order and the draws: a resume with others would not
    /// continue the same chain. Absent in checkpoints of earlier versions.
    #[serde(default)]
    order: Option<SampleOrder>,
    #[serde(default)]
    block_tokens: Option<usize>,
    #[serde(default)]
    sampler: Option<SamplerKind>,
    /// α per topic as the run last set it (absent in earlier versions: the symmetric
    /// `hyper.alpha`).
    #[serde(default)]
    alpha: Option<Vec<f64>>,
    /// How α is optimised (absent in earlier versions: not checked on resume).
    #[serde(default)]
    optimize_alpha: Option<AlphaOptimizationRecord>,
    /// Whether threads sampled deterministically (absent in earlier versions: not checked).
    #[serde(default)]
    deterministic: Option<bool>,
    seed: u64,
    threads: usize,
    tokens: u64,
    shard_tokens: Vec<u64>,
    rngs: Vec<SamplerRng>,
    totals: Vec<i64>,
}

/// `TrainConfig::optimize_alpha` as a checkpoint records it (interval 0: off).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
struct AlphaOptimizationRecord {
    interval: u32,
    burn_in: u32,
    #[serde(default)]
    rounds: u32,
}

impl AlphaOptimizationRecord {
    fn of(o: Option<AlphaOptimization>) -> Self {
        o.map_or(
            AlphaOptimizationRecord {
                interval: 0,
                burn_in: 0,
                rounds: 0,
            },
            |o| AlphaOptimizationRecord {
                interval: o.interval,
                burn_in: o.burn_in,
                rounds: o.rounds,
            },
        )
    }
}

fn assign_file(s: usize) -> String {
    format!("assign-{s}.bin")
}

fn sibling(dir: &Path, suffix: &str) -> PathBuf {
    let mut s = dir.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

fn sync_file(path: &Path) -> Result<()> {
    File::open(path)
        .and_then(|f| f.sync_all())
        .map_err(|e| LdaError::io(path, e))
}

/// Whether `model_dir` holds a checkpoint (or the previous one of an interrupted swap).
pub fn exists(model_dir: &Path) -> bool {
    exists_in(&model_dir.join(CHECKPOINT_DIR))
}

/// Whether the checkpoint directory `dir` holds a checkpoint (or the previous one of an
/// interrupted swap).
pub fn exists_in(dir: &Path) -> bool {
    dir.join(STATE_FILE).is_file() || sibling(dir, ".old").join(STATE_FILE).is_file()
}

/// What a checkpoint holds besides the trainer's own assignments and RNG states.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// The trainer holds every token: the model's n_wk and n_k are saved too and checked on
    /// resume.
    Whole,
    /// The trainer is one cluster worker: only its own part is saved (the model is rebuilt from
    /// every worker's assignments, and the driver checks the invariants).
    Part,
}

impl Trainer {
    /// Writes a checkpoint of the current state into `model_dir/checkpoint`.
    pub fn save_checkpoint(&self, model_dir: &Path) -> Result<()> {
        self.save_checkpoint_to(&model_dir.join(CHECKPOINT_DIR), Scope::Whole)
    }

    /// Writes a checkpoint into the directory `dir` (swapped in by renames).
    pub fn save_checkpoint_to(&self, dir: &Path, scope: Scope) -> Result<()> {
        let dir = dir.to_path_buf();
        let tmp = sibling(&dir, ".tmp");
        let old = sibling(&dir, ".old");
        if tmp.exists() {
            fs::remove_dir_all(&tmp).map_err(|e| LdaError::io(&tmp, e))?;
        }
        fs::create_dir_all(&tmp).map_err(|e| LdaError::io(&tmp, e))?;
        for (s, w) in self.workers.iter().enumerate() {
            let path = tmp.join(assign_file(s));
            let mut bytes = Vec::with_capacity(w.tokens.num_tokens() * 2);
            for &z in w.tokens.assignments() {
                bytes.extend_from_slice(&z.to_le_bytes());
            }
            let mut f = File::create(&path).map_err(|e| LdaError::io(&path, e))?;
            f.write_all(&bytes)
                .and_then(|_| f.sync_all())
                .map_err(|e| LdaError::io(&path, e))?;
        }
        if scope == Scope::Whole {
            let counts: SparseCounts = self.pull_counts()?;
            write_word_topic(&tmp.join("word_topic.parquet"), &counts)?;
            sync_file(&tmp.join("word_topic.parquet"))?;
        }
        let state = State {
            format: FORMAT,
            iteration: self.iteration,
            hyper: self.config.hyper,
            mh_cycles: self.config.mh_cycles,
            order: Some(self.config.order),
            block_tokens: Some(self.config.block_tokens),
            sampler: Some(self.config.sampler),
            alpha: Some(self.alpha.values().to_vec()),
            optimize_alpha: Some(AlphaOptimizationRecord::of(self.config.optimize_alpha)),
            deterministic: Some(self.config.deterministic),
            seed: self.config.seed,
            threads: self.workers.len(),
            tokens: self.tokens,
            shard_tokens: self
                .workers
                .iter()
                .map(|w| w.tokens.num_tokens() as u64)
                .collect(),
            rngs: self.workers.iter().map(|w| w.rng.clone()).collect(),
            totals: match scope {
                Scope::Whole => self.handle.block_on(self.model.pull_totals())?,
                Scope::Part => Vec::new(),
            },
        };
        write_json(&tmp.join(STATE_FILE), &state)?;
        sync_file(&tmp.join(STATE_FILE))?;
        // Swap: checkpoint → checkpoint.old, checkpoint.tmp → checkpoint, drop the old one.
        if old.exists() {
            fs::remove_dir_all(&old).map_err(|e| LdaError::io(&old, e))?;
        }
        if dir.exists() {
            fs::rename(&dir, &old).map_err(|e| LdaError::io(&dir, e))?;
        }
        fs::rename(&tmp, &dir).map_err(|e| LdaError::io(&tmp, e))?;
        if old.exists() {
            fs::remove_dir_all(&old).map_err(|e| LdaError::io(&old, e))?;
        }
        tracing::info!(iteration = self.iteration, dir = %dir.display(), "checkpoint written");
        Ok(())
    }

    /// Continues the run checkpointed in `model_dir`. The corpus and the settings that shape the
    /// sampler (topics, α, β, MH steps, threads) must be those of the checkpointed run.
    pub fn resume(
        client: &Client,
        handle: Handle,
        corpus: LoadedCorpus,
        config: TrainConfig,
        model_dir: &Path,
    ) -> Result<Self> {
        Self::resume_from(
            client,
            handle,
            corpus,
            config,
            &model_dir.join(CHECKPOINT_DIR),
            Scope::Whole,
        )
    }

    /// Continues from the checkpoint in the directory `dir` (or the previous one of an
    /// interrupted swap), written with the same `scope`.
    pub fn resume_from(
        client: &Client,
        handle: Handle,
        corpus: LoadedCorpus,
        config: TrainConfig,
        dir: &Path,
        scope: Scope,
    ) -> Result<Self> {
        let mut dir = dir.to_path_buf();
        if !dir.join(STATE_FILE).is_file() {
            dir = sibling(&dir, ".old");
        }
        let state_path = dir.join(STATE_FILE);
        let text = fs::read_to_string(&state_path).map_err(|e| LdaError::io(&state_path, e))?;
        let state: State = serde_json::from_str(&text)
            .map_err(|e| LdaError::bad_file(&state_path, e.to_string()))?;
        let mismatch = |what: &str| {
            LdaError::InvalidConfig(format!(
                "{what} differs from the checkpoint in {}",
                dir.display()
            ))
        };
        if state.format != FORMAT {
            return Err(LdaError::bad_file(
                &state_path,
                format!("unknown checkpoint format {}", state.format),
            ));
        }
        if state.hyper != config.hyper {
            return Err(mismatch("topics, vocabulary, alpha or beta"));
        }
        if state.mh_cycles != config.mh_cycles {
            return Err(mismatch("--mh-steps"));
        }
        if state.order.is_some_and(|o| o != config.order) {
            return Err(mismatch("--order"));
        }
        if state.block_tokens.is_some_and(|b| b != config.block_tokens) {
            return Err(mismatch("--block-tokens"));
        }
        if state.sampler.is_some_and(|s| s != config.sampler) {
            return Err(mismatch("--sampler"));
        }
        if state
            .optimize_alpha
            .is_some_and(|o| o != AlphaOptimizationRecord::of(config.optimize_alpha))
        {
            return Err(mismatch("--optimize-interval or --optimize-burn-in"));
        }
        if state
            .deterministic
            .is_some_and(|d| d != config.deterministic)
        {
            return Err(mismatch("--sync"));
        }
        if state.threads != corpus.shards.len() || state.rngs.len() != state.threads {
            return Err(mismatch("--threads"));
        }
        if state.tokens != corpus.tokens {
            return Err(mismatch("the corpus"));
        }
        let alpha = state
            .alpha
            .map(Alpha::from_values)
            .transpose()
            .map_err(|e| LdaError::bad_file(&state_path, e.to_string()))?;
        let mut rngs = state.rngs.into_iter();
        let mut trainer = Trainer::assemble(
            client,
            handle,
            corpus,
            config,
            state.iteration,
            |s, tokens| {
                let path = dir.join(assign_file(s));
                let mut bytes = Vec::new();
                File::open(&path)
                    .and_then(|mut f| f.read_to_end(&mut bytes))
                    .map_err(|e| LdaError::io(&path, e))?;
                if bytes.len() != tokens.num_tokens() * 2 {
                    return Err(LdaError::bad_file(
                        &path,
                        format!("{} bytes for {} tokens", bytes.len(), tokens.num_tokens()),
                    ));
                }
                let z: Vec<u16> = bytes
                    .chunks_exact(2)
                    .map(|b| u16::from_le_bytes([b[0], b[1]]))
                    .collect();
                if let Some(&bad) = z.iter().find(|&&t| u32::from(t) >= state.hyper.topics) {
                    return Err(LdaError::bad_file(
                        &path,
                        format!("topic {bad} out of range"),
                    ));
                }
                tokens.set_assignments(z)?;
                rngs.next()
                    .ok_or_else(|| LdaError::bad_file(&state_path, "missing RNG state"))
            },
        )?;
        if let Some(alpha) = alpha {
            trainer
                .set_alpha(alpha)
                .map_err(|e| LdaError::bad_file(&state_path, e.to_string()))?;
        }
        if scope == Scope::Part {
            return Ok(trainer);
        }
        let totals = trainer.handle.block_on(trainer.model.pull_totals())?;
        if totals != state.totals {
            return Err(LdaError::bad_file(
                &state_path,
                "topic totals disagree with the saved assignments",
            ));
        }
        // The counts rebuilt from the assignments must be the saved n_wk, cell for cell.
        let saved_path = dir.join("word_topic.parquet");
        let cells = |c: SparseCounts| {
            let mut v: Vec<(u32, u32, i32)> = (0..c.words.len())
                .map(|i| (c.words[i], c.topics[i], c.counts[i]))
                .collect();
            v.sort_unstable();
            v
        };
        let saved = cells(read_word_topic(&saved_path)?);
        let rebuilt = cells(trainer.pull_counts()?);
        if saved != rebuilt {
            return Err(LdaError::bad_file(
                &saved_path,
                format!(
                    "the saved word-topic counts ({} non-zeros) disagree with the saved assignments ({} non-zeros)",
                    saved.len(),
                    rebuilt.len()
                ),
            ));
        }
        Ok(trainer)
    }
}
