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


def rows_table(rows: Sequence[dict], columns: Sequence[str], *, left: Sequence[str] = ()) -> str:
    """A table of dict rows: floats to four places (large ones with thousands separators), ints grouped."""

    def fmt(value) -> str:
        if isinstance(value, float):
            return f"{value:.4f}".rstrip("0").rstrip(".") if abs(value) < 1e4 else f"{value:,.0f}"
        if isinstance(value, int):
            return f"{value:,}"
        return "" if value is None else str(value)

    table = [tuple(columns)] + [tuple(fmt(r.get(c)) for c in columns) for r in rows]
    return "\n".join(text_table(table, left=[i for i, c in enumerate(columns) if c in left]))


def extent(size: int, *, dims: int) -> str:
    """The side of a square or cube written out: 32x32 or 16x16x16."""
    return "x".join([str(size)] * dims)


def input_size(resolution: int, *, dims: int | None) -> str:
    """An input's size in a sentence: 32px for an image, 16x16x16 voxels for a volume."""
    return f"{resolution}px" if dims in (None, 2) else f"{extent(resolution, dims=dims)} voxels"
