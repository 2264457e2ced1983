"""`radpipe bench`: each suite measures radpipe against a baseline in the same run, as ratios.

ingest.py (vs a naive loop and the decode floor), train.py (Ray Train vs plain PyTorch), prune.py (full vs
pruned vs random data), volume.py (3D training memory), deid.py (scrubber recall and precision), scale.py
(the driver's cost at 10^4..10^6 files).
"""

from pathlib import Path

# The checkout: benchmarks run from a clone and read its configs/, tests/ data and .cache/corpora.
CHECKOUT = Path(__file__).resolve().parents[2]
