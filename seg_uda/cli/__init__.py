"""Command-line entry points (`seg-uda-train`, `seg-uda-evaluate`, `seg-uda-visualize`, `seg-uda-generate`);
`tools/*.py` are thin wrappers around them for use from a checkout."""
