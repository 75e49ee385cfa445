#!/usr/bin/env python
"""Thin wrapper for a checkout: the same as the installed `seg-uda-generate` command (seg_uda/cli/generate.py)."""
import sys

from seg_uda.cli.generate import main

if __name__ == "__main__":
    sys.exit(main())
