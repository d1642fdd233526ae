"""Hypothesis profiles of the fuzz tests: a short deterministic run for CI, a long one by hand.

``ci`` (the default) keeps the whole folder well under a minute on two cores and uses a
fixed seed, so CI never turns red on an input it had not tried before. ``long`` is the
documented soak run (tests/fuzz/README.md): many more examples, random seeds, and the
example database so that a failure found once is replayed first next time.
Select with ``HYPOTHESIS_PROFILE=long``.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

_SLOW_OK = (HealthCheck.too_slow, HealthCheck.data_too_large)

settings.register_profile(
    "ci",
    max_examples=60,
    deadline=2000,  # ms per example: a parser that hangs fails instead of stalling CI
    derandomize=True,
    database=None,
    suppress_health_check=_SLOW_OK,
    print_blob=True,
)
settings.register_profile(
    "long",
    max_examples=3000,
    deadline=5000,
    suppress_health_check=_SLOW_OK,
    print_blob=True,
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
