"""Spark MLlib LDA in local mode, `--optimizer em` or `online`, with MLlib's own default priors
for each optimizer (EM needs concentrations above 1: docConcentration = 50/K + 1 and
topicConcentration = 1.1; online uses 1/K), as Glint's comparison ran it."""

import sys
import time

import numpy as np

from common import arguments, read_docs, write_model

optimizer = "em"
if "--optimizer" in sys.argv:
    i = sys.argv.index("--optimizer")
    optimizer = sys.argv[i + 1]
    del sys.argv[i:i + 2]
args = arguments(f"mllib-{optimizer}")

from pyspark.ml.clustering import LDA
from pyspark.ml.feature import CountVectorizer
from pyspark.sql import SparkSession

spark = (SparkSession.builder.master(f"local[{args.threads}]").appName("glint-lda baseline")
         .config("spark.driver.memory", "8g").config("spark.ui.enabled", "false")
         .config("spark.ui.showConsoleProgress", "false").getOrCreate())
spark.sparkContext.setLogLevel("ERROR")
spark.sparkContext.setCheckpointDir("/tmp/glint-mllib-checkpoints")
docs = read_docs(args.terms)
df = spark.createDataFrame([(i, d) for i, d in enumerate(docs)], ["id", "words"])
cv = CountVectorizer(inputCol="words", outputCol="features", minDF=1.0, vocabSize=1 << 24).fit(df)
features = cv.transform(df).select("id", "features").cache()
features.count()
t0 = time.perf_counter()
model = LDA(k=args.k, maxIter=args.iterations, optimizer=optimizer, seed=args.seed,
            checkpointInterval=10).fit(features)
seconds = time.perf_counter() - t0
phi = np.array(model.topicsMatrix().toArray()).T  # topicsMatrix is V x K
write_model(args.out, f"mllib-{optimizer}", args.dataset, phi, list(cv.vocabulary), args.alpha,
            seconds, {"iterations": args.iterations, "spark": spark.version})
spark.stop()
