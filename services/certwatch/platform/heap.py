"""The cyclic garbage collector's settings for a long-running service process.

A service's startup leaves a large heap that lives as long as the process (modules, the
gRPC and OpenTelemetry machinery, pools, caches: ~80,000 objects). With CPython's defaults
every full collection walks all of it again, and a young collection runs every 700
allocations: on the hot path of a signed HTTP request that was ~20 us of its ~150 us of CPU
(measured in bench/). Reference counting frees almost everything a request allocates, so
collecting rarely costs little memory.
"""

from __future__ import annotations

import gc

YOUNG_THRESHOLD = 10_000  # allocations between young collections (CPython's default: 700)


def settle() -> None:
    """Call once the process has started: what it holds now is moved out of the collector's
    generations (`gc.freeze`; never walked again, never freed), and young collections run
    every YOUNG_THRESHOLD allocations."""
    gc.collect()
    gc.freeze()
    _, middle, old = gc.get_threshold()
    gc.set_threshold(YOUNG_THRESHOLD, middle, old)
