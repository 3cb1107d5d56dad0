"""tomotopy LDAModel (exact collapsed Gibbs), alpha fixed (optim_interval = 0)."""

import time

import numpy as np
import tomotopy as tp

from common import arguments, read_docs, write_model

args = arguments("tomotopy")
mdl = tp.LDAModel(k=args.k, alpha=args.alpha, eta=args.beta, seed=args.seed)
for words in read_docs(args.terms):
    mdl.add_doc(words)
mdl.optim_interval = 0
mdl.train(0)
t0 = time.perf_counter()
mdl.train(args.iterations, workers=args.threads)
seconds = time.perf_counter() - t0
phi = np.array([mdl.get_topic_word_dist(t) for t in range(args.k)])
write_model(args.out, "tomotopy", args.dataset, phi, list(mdl.used_vocabs), args.alpha, seconds,
            {"iterations": args.iterations, "version": tp.__version__})
