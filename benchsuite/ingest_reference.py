"""Python reference for benchsuite/ingest.sh: the same job as `glint-lda ingest --preset seed`
done the usual Python way, on one core.

gensim's simple_preprocess (tokenise, lower-case, drop tokens outside 2..32 chars), gensim's
English stop words, stems of 3..14 chars, then term and document frequencies with a Counter.
Two stemmers: `pystemmer` (default) is Snowball English ("Porter2") in C from PyStemmer, the same
algorithm as rust-stemmers and the strongest reference; `gensim` is gensim's own pure-Python
PorterStemmer, memoised per distinct word as a careful Python user would.
HTML from WARC is stripped with warcio + a regex (script/style dropped), a weaker but faster
converter than a real parser, so the reference is not slowed by its HTML handling.

Prints one JSON line: documents, tokens, vocabulary, uncompressed bytes, seconds.
"""

import gzip
import json
import re
import sys
import time
from collections import Counter

import Stemmer
from gensim.parsing.porter import PorterStemmer
from gensim.parsing.preprocessing import STOPWORDS
from gensim.utils import simple_preprocess

PYSTEMMER = Stemmer.Stemmer("english")


def gensim_stemmer():
    porter = PorterStemmer()
    memo = {}

    def stem_words(words):
        out = []
        for w in words:
            s = memo.get(w)
            if s is None:
                s = memo[w] = porter.stem(w)
            out.append(s)
        return out

    return stem_words
SCRIPT = re.compile(rb"<(script|style|noscript)[^>]*>.*?</\1\s*>", re.S | re.I)
TAG = re.compile(rb"<[^>]*>")


def texts_tsv(path):
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        for line in f:
            _, _, text = line.rstrip(b"\n").partition(b"\t")
            yield len(line), text.decode("utf-8", "replace")


def texts_parquet(path, column):
    import pyarrow.parquet as pq

    table = pq.ParquetFile(path)
    for batch in table.iter_batches(columns=[column], batch_size=8192):
        for value in batch.column(0).to_pylist():
            if value:
                yield len(value.encode("utf-8")), value


def texts_warc(path):
    from warcio.archiveiterator import ArchiveIterator

    with open(path, "rb") as f:
        for record in ArchiveIterator(f):
            if record.rec_type != "response" or record.http_headers is None:
                continue
            if "html" not in (record.http_headers.get_header("Content-Type") or ""):
                continue
            raw = record.content_stream().read()
            body = TAG.sub(b" ", SCRIPT.sub(b" ", raw))
            yield len(raw), body.decode("utf-8", "replace")


def main():
    stemmer, kind, path = sys.argv[1], sys.argv[2], sys.argv[3]
    stem_words = PYSTEMMER.stemWords if stemmer == "pystemmer" else gensim_stemmer()
    if kind == "tsv":
        docs = texts_tsv(path)
    elif kind == "parquet":
        docs = texts_parquet(path, sys.argv[4])
    elif kind == "warc":
        docs = texts_warc(path)
    else:
        raise SystemExit(f"unknown kind {kind}")
    start = time.perf_counter()
    counts, doc_freq = Counter(), Counter()
    n_docs = n_tokens = n_bytes = 0
    for size, text in docs:
        n_bytes += size
        words = [w for w in simple_preprocess(text, min_len=2, max_len=32) if w not in STOPWORDS]
        stems = [s for s in stem_words(words) if 3 <= len(s) <= 14]
        if not stems:
            continue
        n_docs += 1
        n_tokens += len(stems)
        counts.update(stems)
        doc_freq.update(set(stems))
    seconds = time.perf_counter() - start
    print(json.dumps({
        "documents": n_docs,
        "tokens": n_tokens,
        "vocabulary": len(counts),
        "uncompressed_bytes": n_bytes,
        "seconds": seconds,
    }))


if __name__ == "__main__":
    main()
