"""Performance benchmarks behind ``rectransfer bench <name>``: each writes one JSON file.

Every benchmark module in :data:`BENCHMARKS` exposes ``HELP`` (one line), ``add_arguments(parser)``
and ``run(args) -> dict``; the command line writes the returned dict atomically to ``--out`` and
prints it. Figures are measured side by side with their reference in the same run, so ratios are
comparable across machines; absolute seconds are for this machine only.
"""

from __future__ import annotations

import importlib
from types import ModuleType

# name of the sub-command -> module under rectransfer.evaluation.perf
BENCHMARKS: dict[str, str] = {
    "encode": "encode_bench",
    "pretrain": "pretrain_bench",
    "export": "export_bench",
    "adapt": "adapt_bench",
    "online": "online_bench",
    "report": "report_bench",
}


def benchmark_module(name: str) -> ModuleType:
    """The module implementing ``rectransfer bench <name>``."""
    return importlib.import_module(f"rectransfer.evaluation.perf.{BENCHMARKS[name]}")
