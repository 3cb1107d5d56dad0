//! The trainer on an embedded ps-core cluster: count invariants after every iteration with
//! several threads and pipelined blocks, recovery of a synthetic corpus's φ, exact resumption from
//! a checkpoint, and the model directory.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;

use datasets::synthetic::{DocLength, SyntheticSpec, generate};
use lda::stats::mean_best_match_hellinger;
use lda::{Hyper, LoadedCorpus, TrainConfig, Trainer};
use ps_core::{ClusterConfig, EmbeddedCluster};

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

fn corpus(dir: &Path, topics: u32, docs: u64, vocab: u32, len: f64) {
    let spec = SyntheticSpec {
        documents: docs,
        vocabulary: vocab,
        topics,
        mean_doc_len: len,
        doc_length: DocLength::Poisson,
        alpha: 0.2,
        beta: 0.05,
        seed: 5,
        write_theta: false,
    };
    generate(&spec, dir).unwrap();
}

fn config(c: &LoadedCorpus, topics: u32, threads: usize, seed: u64) -> TrainConfig {
    let mut cfg = TrainConfig::new(Hyper {
        topics,
        vocab: c.vocab,
        alpha: 0.1,
        beta: 0.01,
    });
    cfg.threads = threads;
    cfg.seed = seed;
    cfg.block_tokens = 700; // many blocks: exercises prefetching and pushes in flight
    cfg
}

#[test]
fn invariants_hold_after_every_iteration_and_topics_are_recovered() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("corpus");
    corpus(&dir, 5, 1000, 300, 100.0);
    let rt = runtime();
    let cluster = EmbeddedCluster::start(3, ClusterConfig::default()).unwrap();
    let th = 2;
    let loaded = LoadedCorpus::open(&dir, th).unwrap();
    let cfg = config(&loaded, 5, th, 9);
    let mut t = Trainer::new(&cluster.client(), rt.handle().clone(), loaded, cfg).unwrap();
    t.check_invariants().unwrap();
    let first = t.loglik().unwrap();
    let mut last = first;
    for _ in 0..150 {
        let s = t.run_iteration().unwrap();
        t.check_invariants().unwrap();
        last = s.loglik.unwrap();
        assert!(s.tokens_per_s > 0.0 && s.joint_perplexity.unwrap() > 1.0);
        if s.iteration.is_multiple_of(50) {
            eprintln!("{s:?}");
        }
    }
    assert!(
        last > first,
        "log-likelihood did not rise: {first} -> {last}"
    );

    let out = tmp.path().join("model");
    t.export(&out).unwrap();
    let truth = datasets::npy::read(&dir.join("phi.npy")).unwrap();
    let found = datasets::npy::read(&out.join("phi.npy")).unwrap();
    assert_eq!((found.rows, found.cols), (5, truth.cols));
    let rows =
        |a: &datasets::npy::Array2| (0..a.rows).map(|r| a.row(r).to_vec()).collect::<Vec<_>>();
    for r in rows(&found) {
        assert!((r.iter().sum::<f64>() - 1.0).abs() < 1e-9);
    }
    let mut dist = mean_best_match_hellinger(&rows(&truth), &rows(&found));
    eprintln!(
        "2 threads, 3 shards: mean best-match Hellinger {dist:.4}, loglik {first:.0} -> {last:.0}"
    );
    if dist >= 0.1 {
        // Two threads interleave differently from run to run, and a chain occasionally settles
        // in a mode with two topics merged (about 0.3); an independent chain gets a second
        // chance, which a broken sampler would fail as well.
        let loaded = LoadedCorpus::open(&dir, th).unwrap();
        let mut cfg = config(&loaded, 5, th, 10);
        cfg.model_prefix = "second.".into();
        let mut t2 = Trainer::new(&cluster.client(), rt.handle().clone(), loaded, cfg).unwrap();
        for _ in 0..150 {
            t2.run_iteration().unwrap();
        }
        let out2 = tmp.path().join("model2");
        t2.export(&out2).unwrap();
        let found2 = datasets::npy::read(&out2.join("phi.npy")).unwrap();
        dist = mean_best_match_hellinger(&rows(&truth), &rows(&found2));
        eprintln!("second chain: mean best-match Hellinger {dist:.4}");
    }
    // Observed 0.070 after 150 iterations (0.10 after 60): φ ~ Dirichlet(0.05) has many rare words
    // whose probabilities 100k tokens pin down only roughly.
    assert!(dist < 0.1, "mean best-match Hellinger {dist}");

    let vocab = std::fs::read_to_string(out.join("vocab.txt")).unwrap();
    assert_eq!(vocab.lines().count(), truth.cols);
    let topics = lda::topics::top_words(&out, 5, false).unwrap();
    assert_eq!(topics.len(), 5);
    assert!(
        topics
            .iter()
            .all(|t| t.words.len() == 5 && t.words.windows(2).all(|w| w[0].1 >= w[1].1))
    );
    assert_eq!(
        topics.iter().map(|t| t.tokens).sum::<i64>() as u64,
        t.num_tokens()
    );
}

fn assignments(dir: &Path) -> Vec<u8> {
    std::fs::read(dir.join("checkpoint").join("assign-0.bin")).unwrap()
}

#[test]
fn a_resumed_run_equals_an_uninterrupted_one() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("corpus");
    corpus(&dir, 4, 80, 150, 40.0);
    let rt = runtime();

    // Uninterrupted: 6 iterations.
    let full = tmp.path().join("full");
    {
        let cluster = EmbeddedCluster::start(2, ClusterConfig::default()).unwrap();
        let c = LoadedCorpus::open(&dir, 1).unwrap();
        let cfg = config(&c, 4, 1, 3);
        let mut t = Trainer::new(&cluster.client(), rt.handle().clone(), c, cfg).unwrap();
        for _ in 0..6 {
            t.run_iteration().unwrap();
        }
        t.save_checkpoint(&full).unwrap();
        t.export(&full).unwrap();
    }
    // Interrupted after 3, resumed on a new cluster for 3 more.
    let part = tmp.path().join("part");
    {
        let cluster = EmbeddedCluster::start(2, ClusterConfig::default()).unwrap();
        let c = LoadedCorpus::open(&dir, 1).unwrap();
        let cfg = config(&c, 4, 1, 3);
        let mut t = Trainer::new(&cluster.client(), rt.handle().clone(), c, cfg).unwrap();
        for _ in 0..3 {
            t.run_iteration().unwrap();
        }
        t.save_checkpoint(&part).unwrap();
    }
    assert_ne!(
        assignments(&part),
        assignments(&full),
        "3 and 6 iterations should differ"
    );
    {
        let cluster = EmbeddedCluster::start(3, ClusterConfig::default()).unwrap();
        let c = LoadedCorpus::open(&dir, 1).unwrap();
        let cfg = config(&c, 4, 1, 3);
        let mut t = Trainer::resume(&cluster.client(), rt.handle().clone(), c, cfg, &part).unwrap();
        assert_eq!(t.iteration(), 3);
        t.check_invariants().unwrap();
        for _ in 0..3 {
            t.run_iteration().unwrap();
        }
        t.save_checkpoint(&part).unwrap();
        t.export(&part).unwrap();
    }
    assert_eq!(assignments(&part), assignments(&full));
    assert_eq!(
        std::fs::read(part.join("phi.npy")).unwrap(),
        std::fs::read(full.join("phi.npy")).unwrap()
    );
}

/// A change of one training setting.
type ConfigChange = fn(&mut TrainConfig);

#[test]
fn resume_refuses_other_settings() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("corpus");
    corpus(&dir, 3, 30, 60, 20.0);
    let rt = runtime();
    let model = tmp.path().join("m");
    let cluster = EmbeddedCluster::start(1, ClusterConfig::default()).unwrap();
    let c = LoadedCorpus::open(&dir, 1).unwrap();
    let cfg = config(&c, 3, 1, 3);
    let t = Trainer::new(&cluster.client(), rt.handle().clone(), c, cfg).unwrap();
    t.save_checkpoint(&model).unwrap();
    let cluster = EmbeddedCluster::start(1, ClusterConfig::default()).unwrap();
    let c = LoadedCorpus::open(&dir, 1).unwrap();
    let cfg = config(&c, 4, 1, 3);
    let e = Trainer::resume(&cluster.client(), rt.handle().clone(), c, cfg, &model)
        .err()
        .map(|e| e.to_string());
    assert!(
        e.as_deref()
            .unwrap_or("")
            .contains("differs from the checkpoint"),
        "{e:?}"
    );
    // The settings that shape the chain beyond the model's size are checked too.
    let changes: [(&str, ConfigChange); 2] = [
        ("--sync", |c| c.deterministic = false),
        ("--optimize-interval", |c| {
            c.optimize_alpha = Some(lda::AlphaOptimization {
                interval: 5,
                burn_in: 0,
                rounds: 1,
            })
        }),
    ];
    for (flag, change) in changes {
        let cluster = EmbeddedCluster::start(1, ClusterConfig::default()).unwrap();
        let c = LoadedCorpus::open(&dir, 1).unwrap();
        let mut cfg = config(&c, 3, 1, 3);
        change(&mut cfg);
        let e = Trainer::resume(&cluster.client(), rt.handle().clone(), c, cfg, &model)
            .err()
            .map(|e| e.to_string());
        assert!(e.as_deref().unwrap_or("").contains(flag), "{flag}: {e:?}");
    }
}

#[test]
fn word_order_keeps_the_invariants_too() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("corpus");
    corpus(&dir, 4, 200, 300, 50.0);
    let rt = runtime();
    let cluster = EmbeddedCluster::start(2, ClusterConfig::default()).unwrap();
    let loaded = LoadedCorpus::open(&dir, 2).unwrap();
    let mut cfg = config(&loaded, 4, 2, 11);
    cfg.order = lda::SampleOrder::Word;
    let mut t = Trainer::new(&cluster.client(), rt.handle().clone(), loaded, cfg).unwrap();
    let first = t.loglik().unwrap();
    let mut last = first;
    for _ in 0..20 {
        last = t.run_iteration().unwrap().loglik.unwrap();
        t.check_invariants().unwrap();
    }
    assert!(last > first, "{first} -> {last}");
}

/// A transport that loses the response to every push's first two deliveries (after the shard
/// applied it), and passes everything else through: with a client that makes two attempts, every
/// block's push ends `PushUnconfirmed`. Before the trainer resent tokens, that error ended the
/// run; now it must finish with exact counts (every invariant after every iteration).
struct LosePushAnswers {
    inner: std::sync::Arc<dyn ps_core::transport::Transport>,
    seen: std::sync::Mutex<std::collections::HashMap<(u64, u64), u32>>,
    lost: std::sync::atomic::AtomicU64,
}

impl ps_core::transport::Transport for LosePushAnswers {
    fn shards(&self) -> usize {
        self.inner.shards()
    }

    fn call(
        &self,
        shard: usize,
        request: std::sync::Arc<ps_core::message::Request>,
    ) -> futures::future::BoxFuture<'static, ps_core::Result<ps_core::message::Response>> {
        let lose = match &*request {
            ps_core::message::Request::Push(p) => {
                let mut seen = self.seen.lock().unwrap();
                let n = seen.entry((p.writer, p.seq)).or_insert(0);
                *n += 1;
                *n <= 2
            }
            _ => false,
        };
        if lose {
            self.lost.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }
        let answer = self.inner.call(shard, request);
        Box::pin(async move {
            let response = answer.await?;
            if lose {
                return Err(ps_core::PsError::Transient("test: response lost".into()));
            }
            Ok(response)
        })
    }
}

#[test]
fn unconfirmed_pushes_are_resent_and_counts_stay_exact() {
    use std::sync::Arc;
    use std::time::Duration;

    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("corpus");
    corpus(&dir, 4, 200, 100, 40.0);
    let rt = runtime();
    let mut cluster_config = ClusterConfig::default();
    cluster_config.client.max_attempts = 2;
    cluster_config.client.backoff_initial = Duration::from_millis(1);
    cluster_config.client.backoff_max = Duration::from_millis(2);
    let cluster = EmbeddedCluster::start(2, cluster_config).unwrap();
    let lossy = Arc::new(LosePushAnswers {
        inner: Arc::new(cluster.transport()),
        seen: Default::default(),
        lost: Default::default(),
    });
    let client = cluster.client_with(lossy.clone());
    let loaded = LoadedCorpus::open(&dir, 2).unwrap();
    let mut cfg = config(&loaded, 4, 2, 3);
    cfg.block_tokens = 300;
    let mut t = Trainer::new(&client, rt.handle().clone(), loaded, cfg).unwrap();
    t.check_invariants().unwrap();
    for _ in 0..3 {
        t.run_iteration().unwrap();
        t.check_invariants().unwrap();
    }
    // Each push's answer was lost twice: every one of them went through a resend.
    assert!(lossy.lost.load(std::sync::atomic::Ordering::SeqCst) > 20);
}

/// φ, and every document's id with its sorted non-zero n_dk.
type RunOutcome = (Vec<f64>, Vec<(String, Vec<(u32, u32)>)>);

/// φ and every document's n_dk after `iterations` deterministic iterations with 2 threads.
fn deterministic_run(
    dir: &Path,
    sampler: lda::SamplerKind,
    seed: u64,
    iterations: u32,
) -> RunOutcome {
    let rt = runtime();
    let cluster = EmbeddedCluster::start(3, ClusterConfig::default()).unwrap();
    let c = LoadedCorpus::open(dir, 2).unwrap();
    let mut cfg = config(&c, 6, 2, seed);
    cfg.sampler = sampler;
    cfg.deterministic = true;
    cfg.optimize_alpha = Some(lda::AlphaOptimization {
        interval: 2,
        burn_in: 2,
        rounds: 0,
    });
    let mut t = Trainer::new(&cluster.client(), rt.handle().clone(), c, cfg).unwrap();
    for _ in 0..iterations {
        t.run_iteration().unwrap();
        t.check_invariants().unwrap();
    }
    let mut docs = Vec::new();
    t.for_each_doc_topics(|id, _, nz| {
        nz.sort_unstable();
        docs.push((id.to_owned(), nz.clone()));
    });
    (t.phi().unwrap(), docs)
}

#[test]
fn two_threads_in_deterministic_mode_reproduce_a_run_bit_for_bit() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("corpus");
    corpus(&dir, 6, 300, 400, 60.0);
    for sampler in [
        lda::SamplerKind::Mh,
        lda::SamplerKind::Gibbs,
        lda::SamplerKind::Sparse,
    ] {
        let first = deterministic_run(&dir, sampler, 11, 8);
        let again = deterministic_run(&dir, sampler, 11, 8);
        assert!(first == again, "{sampler:?}: two runs of seed 11 differ");
        // The comparison can tell runs apart: another seed gives another model.
        let other = deterministic_run(&dir, sampler, 12, 8);
        assert!(
            first.0 != other.0,
            "{sampler:?}: seeds 11 and 12 gave the same φ"
        );
    }
}
