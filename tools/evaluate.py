#!/usr/bin/env python
"""Thin wrapper for a checkout: the same as the installed `seg-uda-evaluate` command (seg_uda/cli/evaluate.py)."""
import sys

from seg_uda.cli.evaluate import main

if __name__ == "__main__":
    sys.exit(main())
