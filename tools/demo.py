#!/usr/bin/env python
"""Thin wrapper for a checkout: the same as the installed `seg-uda-demo` command (seg_uda/cli/demo.py)."""
import sys

from seg_uda.cli.demo import main

if __name__ == "__main__":
    sys.exit(main())
