#!/usr/bin/env python
"""Thin wrapper for a checkout: the same as the installed `seg-uda-visualize` command (seg_uda/cli/visualize.py)."""
import sys

from seg_uda.cli.visualize import main

if __name__ == "__main__":
    sys.exit(main())
