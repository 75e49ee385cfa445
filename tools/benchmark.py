#!/usr/bin/env python
"""Thin wrapper for a checkout: the same as the installed `seg-uda-benchmark` command (seg_uda/benchmarks/cli.py)."""
import sys

from seg_uda.benchmarks.cli import main

if __name__ == "__main__":
    sys.exit(main())
