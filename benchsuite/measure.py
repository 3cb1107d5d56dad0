"""Runs a command and prints its wall time, CPU time and peak RSS as JSON on stderr's last
line (rusage of the child, the figure /usr/bin/time -v reports). Used by benchsuite/ingest.sh."""

import json
import resource
import subprocess
import sys
import time

start = time.perf_counter()
done = subprocess.run(sys.argv[1:])
wall = time.perf_counter() - start
usage = resource.getrusage(resource.RUSAGE_CHILDREN)
print(json.dumps({
    "exit": done.returncode,
    "wall_seconds": wall,
    "cpu_seconds": usage.ru_utime + usage.ru_stime,
    "peak_rss_mb": usage.ru_maxrss / 1024,
}), file=sys.stderr)
sys.exit(done.returncode)
