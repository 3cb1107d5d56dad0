//! `_Model`: an LDA model behind the Python `LDA` estimator. Either trained here, by `lda`'s
//! `Trainer` on an embedded parameter server (as `glint-lda train` without `--master`), or
//! loaded from a model directory (`phi.npy` + `vocab.txt`, and whatever else the directory
//! holds). Inference, held-out perplexity and coherence are the `evaluation` crate's, computed
//! from φ, so a trained and a loaded model give the same answers.
//!
//! The state sits behind a mutex that is only taken with the GIL released, so a training
//! callback may read the model (its φ, its top words) between iterations.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use evaluation::{AlignedDocs, FoldInMethod, FoldInOptions, PerplexityOptions, TopicModel};
use lda::export::{AlphaValue, HyperFile, SparseCounts};
use lda::{Hyper, SamplerKind, TrainConfig, Trainer};
use numpy::{PyArray1, PyArray2, PyArrayMethods};
use ps_core::{ClusterConfig, EmbeddedCluster};
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::PyString;

use crate::corpus::{Corpus, corpus_data, not_a_corpus};
use crate::{GlintError, default_threads, detached, json_to_py, message};

/// `corpus.json` in a model directory (read by `glint-lda infer` for raw text).
const CORPUS_INFO_FILE: &str = "corpus.json";
const METRICS_FILE: &str = "metrics.jsonl";

/// A model being trained in this process.
struct Training {
    trainer: Trainer,
    /// The in-process shards that hold n_wk and n_k; they live as long as the trainer.
    _cluster: EmbeddedCluster,
    /// `corpus.json` to write beside the model.
    corpus_info: serde_json::Value,
    display: Vec<String>,
    /// The lines of `metrics.jsonl`, one per iteration.
    metrics: Vec<String>,
    train_seconds: f64,
}

/// φ as the model directory's `phi.npy` holds it, and the model every metric uses (the same φ
/// with rows renormalised by `TopicModel::new`, so a trained and a loaded model score alike).
struct Phi {
    raw: Vec<f64>,
    model: TopicModel,
}

impl Phi {
    fn new(raw: Vec<f64>, vocab: Vec<String>, alpha: Option<Vec<f64>>, topics: usize) -> Res<Self> {
        let model = TopicModel::new(topics, raw.clone(), vocab, alpha).map_err(text)?;
        Ok(Phi { raw, model })
    }
}

/// A model read from a directory.
struct Loaded {
    phi: Arc<Phi>,
    hyper: Option<serde_json::Value>,
    counts: Option<SparseCounts>,
    totals: Option<Vec<i64>>,
    display: Vec<String>,
    corpus_info: Option<serde_json::Value>,
    /// The lines of `metrics.jsonl`, kept as text: serde_json's default float parsing is not
    /// exact to the last bit, Python's is.
    metrics: Vec<String>,
}

enum Source {
    Training(Box<Training>),
    Loaded(Box<Loaded>),
}

struct State {
    source: Source,
    /// φ of a training model as of the iteration it was pulled at.
    phi: Option<(u32, Arc<Phi>)>,
}

type Res<T> = Result<T, String>;

/// The `TopicModel` inside a shared `Phi`.
struct TopicModelRef(Arc<Phi>);

impl std::ops::Deref for TopicModelRef {
    type Target = TopicModel;

    fn deref(&self) -> &TopicModel {
        &self.0.model
    }
}

fn text(e: impl std::error::Error) -> String {
    message(&e)
}

impl State {
    fn training(&mut self) -> Res<&mut Training> {
        match &mut self.source {
            Source::Training(t) => Ok(t),
            Source::Loaded(_) => Err(
                "a model loaded from a directory cannot be trained further; fit a new one".into(),
            ),
        }
    }

    /// φ with its vocabulary and α (pulled from the parameter server once per iteration).
    fn phi(&mut self) -> Res<Arc<Phi>> {
        let t = match &self.source {
            Source::Loaded(l) => return Ok(Arc::clone(&l.phi)),
            Source::Training(t) => t,
        };
        let iteration = t.trainer.iteration();
        if let Some((at, phi)) = &self.phi
            && *at == iteration
        {
            return Ok(Arc::clone(phi));
        }
        let k = t.trainer.config().hyper.topics as usize;
        let raw = t.trainer.phi().map_err(text)?;
        let phi = Arc::new(Phi::new(
            raw,
            t.trainer.vocabulary(),
            Some(t.trainer.alpha().values().to_vec()),
            k,
        )?);
        self.phi = Some((iteration, Arc::clone(&phi)));
        Ok(phi)
    }

    /// The model every metric takes.
    fn topic_model(&mut self) -> Res<TopicModelRef> {
        Ok(TopicModelRef(self.phi()?))
    }

    fn display(&self) -> &[String] {
        match &self.source {
            Source::Training(t) => &t.display,
            Source::Loaded(l) => &l.display,
        }
    }

    /// The analyzer the training corpus was made with.
    fn analyzer(&self) -> Res<ingest::AnalyzerConfig> {
        let info = match &self.source {
            Source::Training(t) => Some(&t.corpus_info),
            Source::Loaded(l) => l.corpus_info.as_ref(),
        };
        let value = info
            .and_then(|i| i.get("analyzer"))
            .filter(|a| !a.is_null())
            .ok_or("the model records no analyzer (corpus.json), so it cannot analyse text: pass a Corpus")?;
        serde_json::from_value(value.clone())
            .map_err(|e| format!("the model's analyzer settings are not valid: {e}"))
    }

    fn hyperparameters(&mut self) -> Res<serde_json::Value> {
        match &self.source {
            Source::Training(t) => {
                let c = t.trainer.config();
                let h = c.hyper;
                serde_json::to_value(HyperFile {
                    topics: h.topics,
                    vocabulary: h.vocab,
                    alpha: AlphaValue::of(t.trainer.alpha()),
                    beta: h.beta,
                    iterations: t.trainer.iteration(),
                    mh_steps: c.mh_cycles,
                    seed: c.seed,
                    threads: c.threads,
                    documents: t.trainer.num_docs(),
                    tokens: t.trainer.num_tokens(),
                })
                .map_err(text)
            }
            Source::Loaded(l) => {
                // The directory's file (a baseline's may hold only α), completed from φ.
                let mut h = match &l.hyper {
                    Some(serde_json::Value::Object(o)) => o.clone(),
                    _ => serde_json::Map::new(),
                };
                let m = &l.phi.model;
                h.entry("topics").or_insert(m.topics.into());
                h.entry("vocabulary").or_insert(m.vocab_size().into());
                let alpha = m.alpha.as_ref().and_then(|a| a.first().copied());
                h.entry("alpha").or_insert(alpha.into());
                Ok(serde_json::Value::Object(h))
            }
        }
    }

    fn save(&mut self, dir: &Path) -> Res<()> {
        let model = self.topic_model()?;
        match &self.source {
            Source::Training(t) => {
                t.trainer.export(dir).map_err(text)?;
                write_json(&dir.join(CORPUS_INFO_FILE), &t.corpus_info)?;
                write_text(&dir.join(METRICS_FILE), &t.metrics)
            }
            Source::Loaded(l) => {
                fs::create_dir_all(dir).map_err(|e| io_err(dir, e))?;
                let array = datasets::npy::Array2 {
                    rows: model.topics,
                    cols: model.vocab_size(),
                    data: l.phi.raw.clone(),
                };
                datasets::npy::write(&dir.join(evaluation::model::PHI_FILE), &array)
                    .map_err(text)?;
                write_text(&dir.join(evaluation::model::VOCAB_FILE), &model.vocab)?;
                if !l.display.is_empty() {
                    write_text(&dir.join(lda::export::DISPLAY_FILE), &l.display)?;
                }
                if let Some(h) = &l.hyper {
                    write_json(&dir.join(lda::export::HYPERPARAMETERS_FILE), h)?;
                }
                if let Some(c) = &l.counts {
                    lda::export::write_word_topic(&dir.join(lda::export::WORD_TOPIC_FILE), c)
                        .map_err(text)?;
                }
                if let Some(t) = &l.totals {
                    let v = serde_json::to_value(t).map_err(text)?;
                    write_json(&dir.join(lda::export::TOPIC_TOTALS_FILE), &v)?;
                }
                if let Some(info) = &l.corpus_info {
                    write_json(&dir.join(CORPUS_INFO_FILE), info)?;
                }
                if !l.metrics.is_empty() {
                    write_text(&dir.join(METRICS_FILE), &l.metrics)?;
                }
                Ok(())
            }
        }
    }

    fn check_invariants(&self) -> Res<()> {
        match &self.source {
            Source::Training(t) => t.trainer.check_invariants().map_err(text),
            Source::Loaded(l) => {
                let (Some(counts), Some(totals)) = (&l.counts, &l.totals) else {
                    return Ok(());
                };
                let mut sums = vec![0i64; totals.len()];
                for (&t, &c) in counts.topics.iter().zip(&counts.counts) {
                    let slot = sums
                        .get_mut(t as usize)
                        .ok_or_else(|| format!("word_topic.parquet names topic {t}"))?;
                    *slot += i64::from(c);
                }
                if &sums != totals {
                    return Err(format!(
                        "topic_totals.json holds {totals:?} but the counts sum to {sums:?}"
                    ));
                }
                Ok(())
            }
        }
    }
}

fn io_err(path: &Path, e: std::io::Error) -> String {
    format!("{}: {e}", path.display())
}

fn write_json(path: &Path, value: &serde_json::Value) -> Res<()> {
    let text = serde_json::to_string_pretty(value).map_err(self::text)? + "\n";
    fs::write(path, text).map_err(|e| io_err(path, e))
}

/// One line per entry.
fn write_text(path: &Path, lines: &[String]) -> Res<()> {
    let mut out = String::with_capacity(lines.iter().map(|l| l.len() + 1).sum());
    for l in lines {
        out.push_str(l);
        out.push('\n');
    }
    fs::write(path, out).map_err(|e| io_err(path, e))
}

fn read_json_if_present(path: &Path) -> Res<Option<serde_json::Value>> {
    match fs::read_to_string(path) {
        Ok(t) => serde_json::from_str(&t)
            .map(Some)
            .map_err(|e| format!("{}: {e}", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io_err(path, e)),
    }
}

fn read_lines_if_present(path: &Path) -> Res<Option<Vec<String>>> {
    match fs::read_to_string(path) {
        Ok(t) => Ok(Some(t.lines().map(str::to_owned).collect())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io_err(path, e)),
    }
}

impl Loaded {
    /// Reads a model directory: `phi.npy` and `vocab.txt` are required, the rest is kept when
    /// present (so that `save` writes it back).
    fn read(dir: &Path) -> Res<Self> {
        let model = TopicModel::load(dir).map_err(text)?;
        // φ exactly as stored (the model's rows are renormalised).
        let raw = datasets::npy::read(&dir.join(evaluation::model::PHI_FILE))
            .map_err(text)?
            .data;
        let hyper = read_json_if_present(&dir.join(lda::export::HYPERPARAMETERS_FILE))?;
        let counts_path = dir.join(lda::export::WORD_TOPIC_FILE);
        let counts = if counts_path.is_file() {
            Some(lda::export::read_word_topic(&counts_path).map_err(text)?)
        } else {
            None
        };
        let totals_path = dir.join(lda::export::TOPIC_TOTALS_FILE);
        let totals = match read_json_if_present(&totals_path)? {
            Some(v) => Some(
                serde_json::from_value::<Vec<i64>>(v)
                    .map_err(|e| format!("{}: {e}", totals_path.display()))?,
            ),
            None => None,
        };
        let display = read_lines_if_present(&dir.join(lda::export::DISPLAY_FILE))?
            .filter(|d| d.len() == model.vocab_size())
            .unwrap_or_default();
        let corpus_info = read_json_if_present(&dir.join(CORPUS_INFO_FILE))?;
        let metrics = read_lines_if_present(&dir.join(METRICS_FILE))?
            .unwrap_or_default()
            .into_iter()
            .filter(|l| !l.trim().is_empty())
            .collect();
        Ok(Loaded {
            phi: Arc::new(Phi { raw, model }),
            hyper,
            counts,
            totals,
            display,
            corpus_info,
            metrics,
        })
    }
}

/// How `transform` folds documents in.
/// The sampler `name` ("auto", "gibbs", "sparse" or "mh") picks at `topics` topics.
pub(crate) fn parse_sampler(name: &str, topics: u32) -> PyResult<SamplerKind> {
    match name.to_ascii_lowercase().as_str() {
        "mh" => Ok(SamplerKind::Mh),
        "gibbs" => Ok(SamplerKind::Gibbs),
        "sparse" => Ok(SamplerKind::Sparse),
        "auto" => Ok(SamplerKind::auto(topics)),
        other => Err(PyValueError::new_err(format!(
            "sampler must be 'auto', 'gibbs', 'sparse' or 'mh', got {other:?}"
        ))),
    }
}

fn fold_in_method(method: &str, mh_steps: u32) -> PyResult<FoldInMethod> {
    match method.to_ascii_lowercase().as_str() {
        "mh" => Ok(FoldInMethod::Mh {
            cycles: mh_steps.max(1),
        }),
        "gibbs" => Ok(FoldInMethod::Gibbs),
        "sparse" => Ok(FoldInMethod::Sparse),
        other => Err(PyValueError::new_err(format!(
            "method must be 'mh', 'sparse' or 'gibbs', got {other:?}"
        ))),
    }
}

fn fold_in_options(sweeps: u32, burn_in: u32, seed: u64) -> PyResult<FoldInOptions> {
    let opts = FoldInOptions {
        sweeps,
        burn_in,
        seed,
    };
    opts.validate()
        .map_err(|e| PyValueError::new_err(message(&e)))?;
    Ok(opts)
}

/// An LDA model (the native half of `glint_lda.LDA`; use that class).
#[pyclass(module = "glint_lda._glint_lda", name = "_Model", frozen)]
pub struct Model {
    state: Mutex<State>,
}

impl Model {
    fn new(source: Source) -> Self {
        Model {
            state: Mutex::new(State { source, phi: None }),
        }
    }

    /// Runs `work` on the state with the GIL released.
    fn with_state<T: Send>(
        &self,
        py: Python<'_>,
        work: impl FnOnce(&mut State) -> Res<T> + Send,
    ) -> PyResult<T> {
        detached(py, || {
            let mut state = self.state.lock().map_err(|_| {
                "the model is unusable: an earlier call failed inside the library".to_string()
            })?;
            work(&mut state)
        })
    }

    /// `docs` (a Corpus, aligned by term, or strings analysed as the training corpus was) in
    /// the model's columns.
    fn align(&self, py: Python<'_>, docs: &Bound<'_, PyAny>, what: &str) -> PyResult<AlignedDocs> {
        if let Some(corpus) = corpus_data(docs) {
            return self.with_state(py, move |st| {
                let model = st.topic_model()?;
                Ok(corpus.aligned(&model.term_index()))
            });
        }
        if docs.is_instance_of::<PyString>() {
            return Err(PyTypeError::new_err(format!(
                "{what} must be a Corpus or a list of str, not one str"
            )));
        }
        let mut texts = Vec::new();
        for item in docs.try_iter().map_err(|_| not_a_corpus(what))? {
            let item = item?;
            let s = item.cast::<PyString>().map_err(|_| not_a_corpus(what))?;
            texts.push(s.to_cow()?.into_owned());
        }
        self.with_state(py, move |st| {
            let model = st.topic_model()?;
            let config = st.analyzer()?;
            let mut analyzer = ingest::Analyzer::new(config).map_err(text)?;
            let index = model.term_index();
            let mut out = AlignedDocs::default();
            for (n, body) in texts.iter().enumerate() {
                let mut doc = Vec::new();
                analyzer.for_each_term(body, &mut |t| match index.get(t) {
                    Some(&c) => doc.push(c),
                    None => out.dropped_tokens += 1,
                });
                out.kept_tokens += doc.len() as u64;
                out.ids.push(n.to_string());
                out.docs.push(doc);
            }
            Ok(out)
        })
    }
}

#[pymethods]
impl Model {
    /// Starts a training run on `corpus`: in-process parameter-server shards, sampler threads,
    /// and topic assignments drawn uniformly from `seed` (iteration 0).
    #[staticmethod]
    #[pyo3(signature = (corpus, topics, alpha = None, beta = 0.01, seed = 1, sampler = "auto", mh_steps = 2, threads = None, shards = None, optimize_interval = 10, optimize_burn_in = 50))]
    #[allow(clippy::too_many_arguments)]
    fn train(
        py: Python<'_>,
        corpus: PyRef<'_, Corpus>,
        topics: u32,
        alpha: Option<f64>,
        beta: f64,
        seed: u64,
        sampler: &str,
        mh_steps: u32,
        threads: Option<usize>,
        shards: Option<usize>,
        optimize_interval: u32,
        optimize_burn_in: u32,
    ) -> PyResult<Model> {
        if topics < 2 {
            return Err(PyValueError::new_err(format!(
                "k must be at least 2, got {topics}"
            )));
        }
        let sampler = parse_sampler(sampler, topics)?;
        let data = Arc::clone(&corpus.data);
        if data.tokens.is_empty() {
            return Err(GlintError::new_err("the corpus holds no tokens"));
        }
        let threads = default_threads(threads);
        let hyper = Hyper {
            topics,
            vocab: data.vocab_size,
            alpha: alpha.unwrap_or(50.0 / f64::from(topics)),
            beta,
        };
        let mut config = TrainConfig::new(hyper);
        config.sampler = sampler;
        config.mh_cycles = mh_steps;
        config.threads = threads;
        config.seed = seed;
        config.optimize_alpha = (optimize_interval > 0).then_some(lda::AlphaOptimization {
            interval: optimize_interval,
            burn_in: optimize_burn_in,
            rounds: lda::AlphaOptimization::DEFAULT_ROUNDS,
        });
        config
            .validate()
            .map_err(|e| PyValueError::new_err(message(&e)))?;
        let handle = crate::runtime()?.handle().clone();
        let training = detached(py, move || {
            let loaded = data.loaded(threads).map_err(text)?;
            let cluster =
                EmbeddedCluster::start(shards.unwrap_or(threads).max(1), ClusterConfig::default())
                    .map_err(text)?;
            let trainer = Trainer::new(&cluster.client(), handle, loaded, config).map_err(text)?;
            Ok(Training {
                trainer,
                _cluster: cluster,
                corpus_info: data.info(),
                display: data.display(),
                metrics: Vec::new(),
                train_seconds: 0.0,
            })
        })?;
        Ok(Model::new(Source::Training(Box::new(training))))
    }

    /// Runs `iterations` Gibbs iterations. After each: Ctrl-C is checked (KeyboardInterrupt is
    /// raised with the model at the last completed iteration), then `callback(dict)` is called
    /// with iteration, loglik, joint_perplexity, heldout_perplexity (on `test` every
    /// `eval_every` iterations and after the last, else None), tokens_per_s, seconds,
    /// train_seconds and ps_wait_seconds. An exception from the callback stops training too.
    #[pyo3(signature = (iterations, callback = None, test = None, eval_every = 10, eval_sweeps = 100))]
    fn run(
        &self,
        py: Python<'_>,
        iterations: u32,
        callback: Option<Bound<'_, PyAny>>,
        test: Option<Bound<'_, PyAny>>,
        eval_every: u32,
        eval_sweeps: u32,
    ) -> PyResult<()> {
        if eval_every == 0 || eval_sweeps < 2 {
            return Err(PyValueError::new_err(
                "eval_every must be positive and eval_sweeps at least 2",
            ));
        }
        let heldout = match &test {
            Some(t) => Some(self.align(py, t, "test")?),
            None => None,
        };
        let heldout = heldout.as_ref();
        let (start, threads, seed) = self.with_state(py, |st| {
            let t = st.training()?;
            let c = t.trainer.config();
            Ok((t.trainer.iteration(), c.threads, c.seed))
        })?;
        let last = start.saturating_add(iterations);
        let opts = PerplexityOptions {
            fold_in: FoldInOptions {
                sweeps: eval_sweeps,
                burn_in: eval_sweeps / 2,
                seed,
            },
            alpha: None,
            threads,
        };
        let opts = &opts;
        for _ in 0..iterations {
            let line = self.with_state(py, move |st| {
                let t = st.training()?;
                let stats = t.trainer.run_iteration().map_err(text)?;
                t.train_seconds += stats.seconds;
                let train_seconds = t.train_seconds;
                let due = stats.iteration % eval_every == 0 || stats.iteration == last;
                let held = match heldout {
                    Some(docs) if due => {
                        let model = st.topic_model()?;
                        let r =
                            evaluation::held_out_perplexity(&model, docs, opts).map_err(text)?;
                        Some(r.perplexity)
                    }
                    _ => None,
                };
                let line = serde_json::json!({
                    "iteration": stats.iteration,
                    "loglik": stats.loglik,
                    "joint_perplexity": stats.joint_perplexity,
                    "heldout_perplexity": held,
                    "tokens_per_s": stats.tokens_per_s,
                    "seconds": stats.seconds,
                    "train_seconds": train_seconds,
                    "ps_wait_seconds": stats.ps_wait_seconds,
                });
                st.training()?
                    .metrics
                    .push(serde_json::to_string(&line).map_err(text)?);
                Ok(line)
            })?;
            py.check_signals()?;
            if let Some(cb) = &callback {
                cb.call1((json_to_py(py, &line)?,))?;
            }
        }
        Ok(())
    }

    /// Reads a model directory written by `glint-lda train` or `save` (or any directory with
    /// phi.npy and vocab.txt).
    #[staticmethod]
    fn load(py: Python<'_>, dir: PathBuf) -> PyResult<Model> {
        let loaded = detached(py, move || Loaded::read(&dir))?;
        Ok(Model::new(Source::Loaded(Box::new(loaded))))
    }

    /// Whether the model can be trained further (it was trained in this process).
    #[getter]
    fn trainable(&self, py: Python<'_>) -> PyResult<bool> {
        self.with_state(py, |st| Ok(matches!(st.source, Source::Training(_))))
    }

    /// Iterations trained so far (for a loaded model, as its hyperparameters.json records).
    #[getter]
    fn iterations(&self, py: Python<'_>) -> PyResult<u32> {
        self.with_state(py, |st| match &st.source {
            Source::Training(t) => Ok(t.trainer.iteration()),
            Source::Loaded(l) => Ok(l
                .hyper
                .as_ref()
                .and_then(|h| h.get("iterations"))
                .and_then(serde_json::Value::as_u64)
                .unwrap_or(0) as u32),
        })
    }

    /// The contents of hyperparameters.json (topics, vocabulary, alpha, beta, iterations, ...).
    fn hyperparameters<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let value = self.with_state(py, |st| st.hyperparameters())?;
        json_to_py(py, &value)
    }

    /// One dict per iteration trained (the lines of metrics.jsonl).
    fn metrics<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let array = self.with_state(py, |st| {
            let lines = match &st.source {
                Source::Training(t) => &t.metrics,
                Source::Loaded(l) => &l.metrics,
            };
            Ok(format!("[{}]", lines.join(",")))
        })?;
        py.import("json")?.call_method1("loads", (array,))
    }

    /// φ, K × V float64, rows summing to 1.
    fn topic_word<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyArray2<f64>>> {
        let (k, v, phi) = self.with_state(py, |st| {
            let phi = st.phi()?;
            Ok((phi.model.topics, phi.model.vocab_size(), phi.raw.clone()))
        })?;
        PyArray1::from_vec(py, phi).reshape([k, v])
    }

    /// α per topic, or None when a loaded model's directory records none.
    fn alpha(&self, py: Python<'_>) -> PyResult<Option<Vec<f64>>> {
        self.with_state(py, |st| Ok(st.topic_model()?.alpha.clone()))
    }

    /// The term of each column of φ (vocab.txt).
    fn vocabulary(&self, py: Python<'_>) -> PyResult<Vec<String>> {
        self.with_state(py, |st| Ok(st.topic_model()?.vocab.clone()))
    }

    /// The readable form of each column (display.txt; the terms when there is none).
    fn display_vocabulary(&self, py: Python<'_>) -> PyResult<Vec<String>> {
        self.with_state(py, |st| {
            let model = st.topic_model()?;
            let display = st.display();
            Ok(if display.len() == model.vocab_size() {
                display.to_vec()
            } else {
                model.vocab.clone()
            })
        })
    }

    /// The `n` most probable words of each topic, most probable first, by their readable forms
    /// (`raw_terms` for the terms, e.g. stems).
    #[pyo3(signature = (n = 10, raw_terms = false))]
    fn top_words(&self, py: Python<'_>, n: usize, raw_terms: bool) -> PyResult<Vec<Vec<String>>> {
        self.with_state(py, |st| {
            let model = st.topic_model()?;
            let display = st.display();
            let names = if !raw_terms && display.len() == model.vocab_size() {
                display
            } else {
                &model.vocab
            };
            Ok((0..model.topics)
                .map(|k| {
                    model
                        .top_words(k, n)
                        .into_iter()
                        .map(|w| names[w as usize].clone())
                        .collect()
                })
                .collect())
        })
    }

    /// θ (documents × K, rows summing to 1) of `docs` folded into φ: a Corpus (aligned by term)
    /// or a list of str (analysed as the training corpus was). Terms the model does not know
    /// are dropped; a document left empty gets the prior's mean.
    #[pyo3(signature = (docs, sweeps = 20, burn_in = 10, method = "mh", mh_steps = 1, alpha = None, seed = 1, threads = None))]
    #[allow(clippy::too_many_arguments)]
    fn transform<'py>(
        &self,
        py: Python<'py>,
        docs: &Bound<'py, PyAny>,
        sweeps: u32,
        burn_in: u32,
        method: &str,
        mh_steps: u32,
        alpha: Option<f64>,
        seed: u64,
        threads: Option<usize>,
    ) -> PyResult<Bound<'py, PyArray2<f64>>> {
        let method = fold_in_method(method, mh_steps)?;
        let opts = fold_in_options(sweeps, burn_in, seed)?;
        let aligned = self.align(py, docs, "docs")?;
        let n = aligned.len();
        let threads = default_threads(threads);
        let (k, theta) = self.with_state(py, move |st| {
            let model = st.topic_model()?;
            let alpha = model.alpha_or(alpha).map_err(text)?;
            let theta = evaluation::infer_theta(&model, &aligned, &alpha, &opts, method, threads)
                .map_err(text)?;
            Ok((model.topics, theta))
        })?;
        PyArray1::from_vec(py, theta).reshape([n, k])
    }

    /// Held-out perplexity of `docs` by document completion (the `evaluation` crate's; as
    /// `glint-lda eval`): a dict with perplexity, log_likelihood, held_out_tokens, ...
    #[pyo3(signature = (docs, sweeps = 100, burn_in = 50, alpha = None, seed = 1, threads = None))]
    #[allow(clippy::too_many_arguments)]
    fn perplexity<'py>(
        &self,
        py: Python<'py>,
        docs: &Bound<'py, PyAny>,
        sweeps: u32,
        burn_in: u32,
        alpha: Option<f64>,
        seed: u64,
        threads: Option<usize>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let fold_in = fold_in_options(sweeps, burn_in, seed)?;
        let aligned = self.align(py, docs, "docs")?;
        let opts = PerplexityOptions {
            fold_in,
            alpha,
            threads: default_threads(threads),
        };
        let value = self.with_state(py, move |st| {
            let model = st.topic_model()?;
            let r = evaluation::held_out_perplexity(&model, &aligned, &opts).map_err(text)?;
            serde_json::to_value(r).map_err(text)
        })?;
        json_to_py(py, &value)
    }

    /// UMass and NPMI coherence of each topic's `top_n` words against the documents of
    /// `corpus` (a dict with umass, npmi, per_topic, ...).
    #[pyo3(signature = (corpus, top_n = 10))]
    fn coherence<'py>(
        &self,
        py: Python<'py>,
        corpus: &Bound<'py, PyAny>,
        top_n: usize,
    ) -> PyResult<Bound<'py, PyAny>> {
        let aligned = self.align(py, corpus, "corpus")?;
        let value = self.with_state(py, move |st| {
            let model = st.topic_model()?;
            let c = evaluation::coherence(&model, &aligned, top_n).map_err(text)?;
            serde_json::to_value(c).map_err(text)
        })?;
        json_to_py(py, &value)
    }

    /// θ of the training documents, (n_dk + α_k)/(N_d + Σα), with their ids: (ids, documents × K).
    fn doc_topic<'py>(
        &self,
        py: Python<'py>,
    ) -> PyResult<(Vec<String>, Bound<'py, PyArray2<f64>>)> {
        let (ids, k, theta) = self.with_state(py, |st| {
            let t = st.training().map_err(|_| {
                "the training documents' topics are only known to a model trained in this process"
                    .to_string()
            })?;
            let alpha = t.trainer.alpha();
            let k = alpha.topics();
            let (mut ids, mut theta) = (Vec::new(), Vec::new());
            t.trainer.for_each_doc_topics(|id, len, nz| {
                alpha.extend_theta_row(len, nz, &mut theta);
                ids.push(id.to_owned());
            });
            Ok((ids, k, theta))
        })?;
        let n = ids.len();
        Ok((ids, PyArray1::from_vec(py, theta).reshape([n, k])?))
    }

    /// Checks the count invariants: Σ_k n_wk = occurrences of w, Σ_w n_wk = n_k, Σ n_k = tokens
    /// (for a loaded model, that its counts add up to its topic totals). Raises GlintError.
    fn check_invariants(&self, py: Python<'_>) -> PyResult<()> {
        self.with_state(py, |st| st.check_invariants())
    }

    /// Writes the model directory `glint-lda` reads (phi.npy, vocab.txt, hyperparameters.json,
    /// word_topic.parquet, topic_totals.json, doc_topic.parquet, display.txt, corpus.json,
    /// metrics.jsonl; a loaded model writes back what it was loaded with).
    fn save(&self, py: Python<'_>, dir: PathBuf) -> PyResult<()> {
        self.with_state(py, move |st| st.save(&dir))
    }
}
