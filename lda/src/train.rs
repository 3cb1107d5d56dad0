//! The training driver: T sampler threads, each owning a shard of the documents, walk their
//! vocabulary in blocks every iteration. A thread pulls the rows of block b+1 while it samples
//! block b, pushes each block's deltas asynchronously (at most `max_pushes_in_flight` per thread
//! before it waits: back-pressure), and waits for its pushes at the end of the iteration.
//!
//! Sampler threads are plain OS threads; the ps-core client is async, so they drive it through a
//! tokio [`Handle`]: pulls and pushes are spawned on the runtime and awaited with `block_on`.
//!
//! n_k is pushed and pulled back synchronously once a thread has sampled 16 K tokens since the
//! last time (K numbers each way) and after its last block, so each thread's
//! view holds its own moves exactly and other threads' up to their last sync; n_wk rows are
//! pulled per block and see every push applied by then. Each MH step is exact for whatever view
//! it samples against; with one thread every view is current, the chain samples the exact
//! posterior and runs are reproducible.
//!
//! That is the eager schedule. By default ([`TrainConfig::deterministic`]) several threads are
//! reproducible too: a thread's n_wk pushes are held (in memory, one iteration's changes) until
//! every thread has sampled, and n_k is pushed once at the end and not pulled in between, so each
//! thread samples against the model as the iteration began plus its own moves, whatever the
//! timing.

use std::collections::VecDeque;
use std::ops::Range;
use std::time::Instant;

use ps_core::Client;
use tokio::runtime::Handle;
use tokio::task::JoinHandle;

use crate::alpha::{Alpha, AlphaOptimization, DocCountHistogram};
use crate::conditional::Hyper;
use crate::corpus::LoadedCorpus;
use crate::error::{LdaError, Result};
use crate::loglik;
use crate::model::{PsModel, row_nonzeros};
use crate::rng::{SamplerRng, stream};
use crate::sampler::{Deltas, SamplerKind, Worker};
use crate::tokens::TokenShard;
use crate::view::ModelView;

/// The order in which a thread samples the tokens of a vocabulary block.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SampleOrder {
    /// Word by word, each word's tokens in document order.
    Word,
    /// The whole block in document order, its rows held at once (LightLDA's order).
    Doc,
}

/// Largest block of a thread in row elements (words × K) in document order: the block's rows
/// are held in two scratch arrays of this many counts (2 MB together, about a core's L2 cache;
/// larger blocks made the rows of rare words cache misses, smaller ones add document passes).
pub const BLOCK_CELLS: usize = 1 << 18;

/// Settings of a training run.
#[derive(Debug, Clone)]
pub struct TrainConfig {
    /// Token order within a block.
    pub order: SampleOrder,
    pub hyper: Hyper,
    /// How tokens are drawn (MH cycles or the exact conditional).
    pub sampler: SamplerKind,
    /// (word, doc) MH cycles per token.
    pub mh_cycles: u32,
    pub threads: usize,
    pub seed: u64,
    /// Tokens per vocabulary block of one thread.
    pub block_tokens: usize,
    /// Pushes a thread may have in flight before it waits for the oldest.
    pub max_pushes_in_flight: usize,
    /// Compute the log-likelihood after every iteration (costs a pass over the model).
    pub loglik: bool,
    /// Prefix of the ps-core model names.
    pub model_prefix: String,
    /// Index of this trainer's first random stream: a cluster worker's threads take streams
    /// apart from every other worker's.
    pub stream_base: usize,
    /// Open the models that a cluster driver created instead of creating them.
    pub join_existing: bool,
    /// Optimise an asymmetric α from the documents' topic counts (None: α stays symmetric).
    pub optimize_alpha: Option<AlphaOptimization>,
    /// Reproducible with several threads: each thread samples against the model as it stood when
    /// the iteration began plus its own moves (its n_wk pushes are held until every thread has
    /// finished, n_k is not synchronised in between), so timing cannot change a draw. The
    /// default: in the threads benchmark it was as good as sharing moves eagerly, and faster.
    pub deterministic: bool,
}

impl TrainConfig {
    pub fn new(hyper: Hyper) -> Self {
        TrainConfig {
            order: SampleOrder::Doc,
            hyper,
            sampler: SamplerKind::Mh,
            mh_cycles: 2,
            threads: 1,
            seed: 1,
            block_tokens: 1 << 18,
            max_pushes_in_flight: 4,
            loglik: true,
            model_prefix: "lda.".into(),
            stream_base: 0,
            join_existing: false,
            optimize_alpha: None,
            deterministic: true,
        }
    }

    pub fn validate(&self) -> Result<()> {
        self.hyper.validate()?;
        if self.mh_cycles == 0
            || self.threads == 0
            || self.block_tokens == 0
            || self.max_pushes_in_flight == 0
        {
            return Err(LdaError::InvalidConfig(
                "mh steps, threads, block size and pushes in flight must be positive".into(),
            ));
        }
        Ok(())
    }
}

/// What one iteration did.
#[derive(Debug, Clone, serde::Serialize)]
pub struct IterationStats {
    pub iteration: u32,
    pub loglik: Option<f64>,
    /// exp(−log p(w, z)/N) of the collapsed joint (not a predictive perplexity).
    pub joint_perplexity: Option<f64>,
    pub tokens_per_s: f64,
    /// Wall time of the whole iteration, log-likelihood included.
    pub seconds: f64,
    /// Wall time of sampling alone.
    pub sampling_seconds: f64,
    /// Time sampler threads spent waiting for ps-core (pulls not ready, push back-pressure),
    /// summed over threads.
    pub ps_wait_seconds: f64,
}

/// A training run: workers, their model on ps-core and the iteration count.
///
/// Its methods block on ps-core requests through the runtime handle it was given, so they must be
/// called from plain threads, not from inside an async task.
#[derive(Debug)]
pub struct Trainer {
    pub(crate) config: TrainConfig,
    pub(crate) model: PsModel,
    pub(crate) handle: Handle,
    pub(crate) workers: Vec<Worker>,
    pub(crate) doc_ids: Vec<Vec<String>>,
    pub(crate) terms: Vec<String>,
    /// Display forms by word id (empty: the terms are shown).
    pub(crate) display: Vec<String>,
    pub(crate) word_counts: Vec<u64>,
    pub(crate) tokens: u64,
    pub(crate) iteration: u32,
    /// The document-topic prior the workers sample with (symmetric unless optimised).
    pub(crate) alpha: Alpha,
}

impl Trainer {
    /// A fresh run: uniform random assignments from the seed, counts pushed to new models.
    pub fn new(
        client: &Client,
        handle: Handle,
        corpus: LoadedCorpus,
        config: TrainConfig,
    ) -> Result<Self> {
        let (topics, seed, base) = (config.hyper.topics, config.seed, config.stream_base);
        Self::assemble(client, handle, corpus, config, 0, |s, tokens| {
            let mut rng = stream(seed, base + s);
            tokens.assign_uniform(topics, &mut rng);
            Ok(rng)
        })
    }

    /// Builds workers (each initialized by `init`, which returns its RNG), creates the models and
    /// loads them with the workers' counts.
    pub(crate) fn assemble(
        client: &Client,
        handle: Handle,
        corpus: LoadedCorpus,
        mut config: TrainConfig,
        iteration: u32,
        mut init: impl FnMut(usize, &mut TokenShard) -> Result<SamplerRng>,
    ) -> Result<Self> {
        config.validate()?;
        if config.sampler == SamplerKind::Sparse {
            // Its tree of q_k serves one word at a time.
            config.order = SampleOrder::Word;
        }
        if corpus.vocab != config.hyper.vocab {
            return Err(LdaError::InvalidConfig(format!(
                "the corpus has {} words but the model is configured for {}",
                corpus.vocab, config.hyper.vocab
            )));
        }
        let word_topics = config.order == SampleOrder::Word;
        let mut workers = Vec::with_capacity(corpus.shards.len());
        let mut doc_ids = Vec::with_capacity(corpus.shards.len());
        for (s, shard) in corpus.shards.into_iter().enumerate() {
            let mut tokens =
                TokenShard::build(shard.documents(), corpus.vocab, word_topics, |d| {
                    shard.ids[d].clone()
                })?;
            let ids = shard.ids;
            let rng = init(s, &mut tokens)?;
            workers.push(Worker::new(
                tokens,
                &config.hyper,
                config.sampler,
                config.mh_cycles,
                rng,
            ));
            doc_ids.push(ids);
        }
        let model = if config.join_existing {
            handle.block_on(PsModel::open(client, &config.hyper, &config.model_prefix))?
        } else {
            handle.block_on(PsModel::create(client, &config.hyper, &config.model_prefix))?
        };
        let alpha = Alpha::symmetric(config.hyper.topics, config.hyper.alpha);
        let trainer = Trainer {
            alpha,
            config,
            model,
            handle,
            workers,
            doc_ids,
            terms: corpus.terms,
            display: corpus.display,
            word_counts: corpus.word_counts,
            tokens: corpus.tokens,
            iteration,
        };
        trainer.load_counts()?;
        Ok(trainer)
    }

    /// Pushes every worker's n_wk and n_k contributions (the model starts empty).
    fn load_counts(&self) -> Result<()> {
        let k = self.config.hyper.topics as usize;
        let mut scratch = vec![0i32; k];
        let mut totals = vec![0i64; k];
        for w in &self.workers {
            let mut d = Deltas::default();
            let words = w.tokens.words();
            for (j, &word) in words.iter().enumerate() {
                for i in w.tokens.word_tokens(j) {
                    let (_, pos) = w.tokens.token(i);
                    scratch[w.tokens.assignments()[pos as usize] as usize] += 1;
                }
                for (t, c) in scratch.iter_mut().enumerate() {
                    if *c != 0 {
                        d.rows.push(u64::from(word));
                        d.cols.push(t as u32);
                        d.values.push(*c);
                        totals[t] += i64::from(*c);
                        *c = 0;
                    }
                }
            }
            self.handle
                .block_on(self.model.push_counts(&d.rows, &d.cols, &d.values))?;
        }
        let nz: Vec<(u32, i64)> = totals
            .iter()
            .enumerate()
            .filter(|(_, c)| **c != 0)
            .map(|(t, &c)| (t as u32, c))
            .collect();
        self.handle.block_on(self.model.push_totals(&nz))?;
        Ok(())
    }

    pub fn iteration(&self) -> u32 {
        self.iteration
    }

    pub fn config(&self) -> &TrainConfig {
        &self.config
    }

    pub fn num_tokens(&self) -> u64 {
        self.tokens
    }

    pub fn num_docs(&self) -> usize {
        self.doc_ids.iter().map(Vec::len).sum()
    }

    pub fn model(&self) -> &PsModel {
        &self.model
    }

    /// Worker memory per token: assignments, word index and document-topic counts.
    pub fn worker_bytes_per_token(&self) -> f64 {
        let bytes: usize = self
            .workers
            .iter()
            .map(|w| w.tokens.memory_bytes() + w.doc_topics.memory_bytes())
            .sum();
        bytes as f64 / self.tokens.max(1) as f64
    }

    /// Samples every token once.
    pub fn run_iteration(&mut self) -> Result<IterationStats> {
        let started = Instant::now();
        let totals = self.handle.block_on(self.model.pull_totals())?;
        let cfg = &self.config;
        let model = &self.model;
        let handle = &self.handle;
        let results: Vec<Result<ShardOutcome>> = std::thread::scope(|scope| {
            let joins: Vec<_> = self
                .workers
                .iter_mut()
                .map(|w| {
                    let totals = totals.clone();
                    scope.spawn(move || sample_shard(w, model, handle, cfg, totals))
                })
                .collect();
            joins
                .into_iter()
                .map(|j| {
                    j.join().unwrap_or_else(|_| {
                        Err(LdaError::Thread("a sampler thread panicked".into()))
                    })
                })
                .collect()
        });
        let mut ps_wait = 0.0;
        let mut held = Vec::new();
        let mut failed = None;
        for r in results {
            match r {
                Ok(outcome) => {
                    ps_wait += outcome.waited;
                    held.extend(outcome.held);
                }
                Err(e) => failed = failed.or(Some(e)),
            }
        }
        // Deterministic mode: every thread has sampled against the same model; now it moves.
        // The threads that finished push even if another failed, so that the model stays the
        // function of their assignments that their n_k pushes already assume.
        self.push_held(held)?;
        if let Some(e) = failed {
            return Err(e);
        }
        let sampling = started.elapsed().as_secs_f64();
        self.iteration += 1;
        if let Some(opt) = self.config.optimize_alpha
            && opt.due(self.iteration)
        {
            self.optimize_alpha(opt.rounds);
        }
        let (loglik, joint_perplexity) = if self.config.loglik {
            let ll = self.loglik()?;
            (Some(ll), Some(loglik::joint_perplexity(ll, self.tokens)))
        } else {
            (None, None)
        };
        let stats = IterationStats {
            iteration: self.iteration,
            loglik,
            joint_perplexity,
            tokens_per_s: self.tokens as f64 / sampling.max(1e-9),
            seconds: started.elapsed().as_secs_f64(),
            sampling_seconds: sampling,
            ps_wait_seconds: ps_wait,
        };
        let m = &crate::telemetry::SAMPLER;
        m.iteration.set(f64::from(self.iteration));
        m.tokens.add(self.tokens);
        m.tokens_per_s.set(stats.tokens_per_s);
        m.ps_wait
            .add_duration(std::time::Duration::from_secs_f64(ps_wait.max(0.0)));
        tracing::debug!(?stats, "iteration done");
        Ok(stats)
    }

    /// Pushes deltas held back by deterministic sampling, with at most `max_pushes_in_flight` per
    /// thread outstanding.
    fn push_held(&self, held: Vec<Deltas>) -> Result<()> {
        let limit = self.config.max_pushes_in_flight * self.workers.len().max(1);
        let mut pushes: VecDeque<PushTask> = VecDeque::new();
        for d in held {
            pushes.push_back(spawn_push(&self.model, &self.handle, d));
            while pushes.len() > limit {
                if let Some(p) = pushes.pop_front() {
                    self.handle.block_on(p).map_err(join_err)??;
                }
            }
        }
        for p in pushes {
            self.handle.block_on(p).map_err(join_err)??;
        }
        Ok(())
    }

    /// The document-topic prior α_k the workers sample with.
    pub fn alpha(&self) -> &Alpha {
        &self.alpha
    }

    /// Replaces α (every worker samples with it from the next iteration on).
    pub fn set_alpha(&mut self, alpha: Alpha) -> Result<()> {
        if alpha.topics() != self.config.hyper.topics as usize {
            return Err(LdaError::InvalidConfig(format!(
                "alpha has {} topics but the model has {}",
                alpha.topics(),
                self.config.hyper.topics
            )));
        }
        self.use_alpha(alpha);
        Ok(())
    }

    /// Every worker samples with `alpha` from now on.
    fn use_alpha(&mut self, alpha: Alpha) {
        self.workers.iter_mut().for_each(|w| w.set_alpha(&alpha));
        self.alpha = alpha;
    }

    /// Moves α towards its MAP estimate given the current n_dk of every document, by at most
    /// `rounds` fixed-point rounds (0: all the way; see [`crate::alpha`]).
    pub fn optimize_alpha(&mut self, rounds: u32) {
        let mut hist = DocCountHistogram::new(self.config.hyper.topics as usize);
        for w in &self.workers {
            hist.merge(&w.doc_count_histogram());
        }
        let alpha = hist.optimize_rounds(&self.alpha, rounds);
        tracing::debug!(sum = alpha.sum(), "alpha optimised");
        self.use_alpha(alpha);
    }

    /// The model on ps-core as a read-only view.
    pub fn view(&self) -> ModelView<'_> {
        ModelView {
            model: &self.model,
            handle: &self.handle,
            hyper: self.config.hyper,
            terms: &self.terms,
            display: &self.display,
            word_counts: &self.word_counts,
            tokens: self.tokens,
        }
    }

    /// log p(w, z) of the current state, from the model on ps-core and the workers' n_dk.
    pub fn loglik(&self) -> Result<f64> {
        Ok(self.view().word_loglik()? + self.doc_loglik())
    }

    /// The document part of log p(w, z) over this trainer's documents.
    pub fn doc_loglik(&self) -> f64 {
        self.workers
            .iter()
            .map(|w| loglik::doc_part(&self.alpha, &w.tokens, &w.doc_topics))
            .sum()
    }

    /// Checks the model on ps-core against the corpus: Σ_k n_wk = count of w, n_k = Σ_w n_wk,
    /// Σ_k n_k = N, no negative count. Only meaningful when this trainer holds every token.
    pub fn check_invariants(&self) -> Result<()> {
        self.view().check_invariants()
    }

    /// The non-zero n_dk of every document this trainer holds, with its id and length.
    pub fn for_each_doc_topics(&self, mut f: impl FnMut(&str, u32, &mut Vec<(u32, u32)>)) {
        let mut nz = Vec::new();
        for (w, doc_ids) in self.workers.iter().zip(&self.doc_ids) {
            for (d, id) in doc_ids.iter().enumerate() {
                w.doc_topics.nonzeros(d as u32, &mut nz);
                f(id, w.tokens.doc_len(d as u32), &mut nz);
            }
        }
    }
}

/// Word-index ranges of about `block_tokens` tokens each.
fn blocks(tokens: &TokenShard, block_tokens: usize, max_words: usize) -> Vec<Range<usize>> {
    let mut out = Vec::new();
    let (mut start, mut acc) = (0usize, 0usize);
    for j in 0..tokens.words().len() {
        acc += tokens.word_tokens(j).len();
        if acc >= block_tokens || j + 1 - start >= max_words {
            out.push(start..j + 1);
            start = j + 1;
            acc = 0;
        }
    }
    if start < tokens.words().len() {
        out.push(start..tokens.words().len());
    }
    out
}

/// Tokens a thread samples between synchronisations of n_k: a sync moves K numbers each way, so
/// it is spread over at least 16 tokens per topic, which keeps its cost a few percent of sampling
/// whatever K (at K = 65,535 a block holds only 4 words) while other threads' moves stay fresh
/// (a sync per iteration only cost measurable topic quality with 2 threads).
fn totals_sync_tokens(topics: u32) -> usize {
    topics as usize * 16
}

/// Tokens of the shard's words `range`.
fn block_token_count(tokens: &TokenShard, range: &Range<usize>) -> usize {
    if range.is_empty() {
        return 0;
    }
    tokens.word_tokens(range.end - 1).end - tokens.word_tokens(range.start).start
}

type Pull = JoinHandle<ps_core::Result<Vec<ps_core::Row<i32>>>>;
type PushTask = JoinHandle<Result<()>>;

/// Pushes `deltas` to n_wk on the runtime.
fn spawn_push(model: &PsModel, handle: &Handle, deltas: Deltas) -> PushTask {
    let m = model.clone();
    handle.spawn(async move {
        m.push_deltas(&deltas.rows, &deltas.cols, &deltas.values)
            .await
    })
}

fn join_err(e: tokio::task::JoinError) -> LdaError {
    LdaError::Thread(format!("ps-core task: {e}"))
}

/// What one thread's iteration left: the seconds it waited for ps-core, and in deterministic
/// mode the deltas it holds back until every thread has sampled.
struct ShardOutcome {
    waited: f64,
    held: Vec<Deltas>,
}

/// One thread's iteration over its shard.
fn sample_shard(
    w: &mut Worker,
    model: &PsModel,
    handle: &Handle,
    cfg: &TrainConfig,
    mut totals: Vec<i64>,
) -> Result<ShardOutcome> {
    let mut held = Vec::new();
    let mut waited = std::time::Duration::ZERO;
    let max_words = match cfg.order {
        SampleOrder::Word => usize::MAX,
        SampleOrder::Doc => (BLOCK_CELLS / cfg.hyper.topics as usize).max(1),
    };
    let plan = blocks(&w.tokens, cfg.block_tokens, max_words);
    let rows_of = |r: &Range<usize>, w: &Worker| -> Vec<u64> {
        w.tokens.words()[r.clone()]
            .iter()
            .map(|&x| u64::from(x))
            .collect()
    };
    let spawn_pull = |rows: Vec<u64>| -> Pull {
        let m = model.nwk.clone();
        handle.spawn(async move { m.pull_rows(&rows).await })
    };
    let mut next: Option<Pull> = plan.first().map(|r| spawn_pull(rows_of(r, w)));
    let mut pushes: VecDeque<PushTask> = VecDeque::new();
    let mut total_deltas = Vec::new();
    let sync_every = totals_sync_tokens(cfg.hyper.topics);
    let mut since_sync = 0usize;
    for (b, range) in plan.iter().enumerate() {
        let Some(pull) = next.take() else { break };
        let t0 = Instant::now();
        let rows = handle.block_on(pull).map_err(join_err)??;
        waited += t0.elapsed();
        // Prefetch the next block while this one is sampled.
        if let Some(r) = plan.get(b + 1) {
            next = Some(spawn_pull(rows_of(r, w)));
        }
        let mut deltas = Deltas::default();
        match cfg.order {
            SampleOrder::Word => {
                for (j, row) in range.clone().zip(&rows) {
                    w.sample_word(j, row_nonzeros(row), &mut totals, &mut deltas)?;
                }
            }
            SampleOrder::Doc => w.sample_block(
                range.clone(),
                rows.iter().map(row_nonzeros),
                &mut totals,
                &mut deltas,
            )?,
        }
        if cfg.deterministic {
            held.push(deltas);
        } else {
            pushes.push_back(spawn_push(model, handle, deltas));
        }
        // n_k (K numbers) is pushed and pulled back synchronously once a thread has sampled
        // enough tokens to pay for it, and after its last block: the view then holds every
        // thread's moves up to their last sync, and exactly this thread's own.
        let t0 = Instant::now();
        since_sync += block_token_count(&w.tokens, range);
        let last = b + 1 == plan.len();
        // Deterministic mode pushes n_k once, at the end: nobody pulls it before the next
        // iteration, so its view cannot depend on timing.
        if last || (since_sync >= sync_every && !cfg.deterministic) {
            since_sync = 0;
            w.take_total_deltas(&mut total_deltas);
            handle.block_on(model.push_totals(&total_deltas))?;
            if !last {
                totals = handle.block_on(model.pull_totals())?;
            }
        }
        while pushes.len() > cfg.max_pushes_in_flight {
            if let Some(p) = pushes.pop_front() {
                handle.block_on(p).map_err(join_err)??;
            }
        }
        waited += t0.elapsed();
    }
    w.finish_iteration();
    let t0 = Instant::now();
    for p in pushes {
        handle.block_on(p).map_err(join_err)??;
    }
    waited += t0.elapsed();
    Ok(ShardOutcome {
        waited: waited.as_secs_f64(),
        held,
    })
}

#[cfg(test)]
mod enumeration_tests;
