"""Plain-text tables for the terminal: columns two spaces apart, numbers right-aligned."""
from __future__ import annotations

from collections.abc import Sequence


def text_table(rows: Sequence[Sequence[str]], *, left: Sequence[int] = (), rule: bool = False) -> list[str]:
    """The lines of a table whose first row is the header; ``left`` columns are left-aligned."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    if rule:
        rows = [rows[0], tuple("-" * w for w in widths), *rows[1:]]
    return ["  ".join(c.ljust(w) if i in left else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths))).rstrip()
            for row in rows]
