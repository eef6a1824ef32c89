"""The `--tiny` flag every benchmark script has: tiny inputs that run in seconds, so a test can run each script.

A helper module, not a script (tests/test_benchmarks.py runs every `benchmarks/*.py` not starting with `_`).
"""

from __future__ import annotations

import argparse


def parse_args(parser: argparse.ArgumentParser, tiny: dict[str, object]) -> argparse.Namespace:
    """Parse the command line after adding `--tiny`, which switches the defaults to `tiny`; options given still win."""
    parser.add_argument("--tiny", action="store_true",
                        help="tiny inputs that run in seconds, to check that the script works; the figures mean nothing")
    args = parser.parse_args()
    if args.tiny:
        parser.set_defaults(**tiny)
        args = parser.parse_args()
    return args
