#!/usr/bin/env python
"""Thin wrapper for a checkout: the same as the installed `seg-uda-train` command (seg_uda/cli/train.py)."""
import sys

from seg_uda.cli.train import main

if __name__ == "__main__":
    sys.exit(main())
