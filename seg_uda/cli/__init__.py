"""Command-line entry points (`seg-uda-train`, `seg-uda-evaluate`, `seg-uda-visualize`, `seg-uda-generate`);
`tools/*.py` are thin wrappers around them for use from a checkout."""


def one_line(exc: BaseException) -> str:
    """``exc``'s message on one line, for `error: ...` exits; a DataLoader worker's re-raise keeps its last line."""
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    if len(lines) > 1 and lines[0].startswith("Caught "):  # "Caught X in DataLoader worker ...\nOriginal Traceback"
        _, sep, msg = lines[-1].partition(f"{type(exc).__name__}: ")
        return msg if sep else lines[-1]
    return " ".join(lines)
