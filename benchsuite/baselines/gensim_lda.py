"""gensim LdaMulticore (online variational Bayes); `--iterations` is the number of passes."""

import time

import gensim
from gensim.corpora import Dictionary
from gensim.models import LdaMulticore

from common import arguments, read_docs, write_model

args = arguments("gensim")
docs = read_docs(args.terms)
dictionary = Dictionary(docs)
bow = [dictionary.doc2bow(d) for d in docs]
t0 = time.perf_counter()
lda = LdaMulticore(bow, num_topics=args.k, id2word=dictionary, workers=max(1, args.threads - 1),
                   passes=args.iterations, alpha=[args.alpha] * args.k, eta=args.beta,
                   random_state=args.seed, chunksize=2000)
seconds = time.perf_counter() - t0
vocab = [dictionary[i] for i in range(len(dictionary))]
write_model(args.out, "gensim", args.dataset, lda.get_topics(), vocab, args.alpha, seconds,
            {"passes": args.iterations, "version": gensim.__version__})
