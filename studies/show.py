"""``effnas show``: the stages, parameters and multiply-adds of any architecture, 2-D or 3-D."""
from __future__ import annotations

from dataclasses import replace

from effnas.space import presets
from effnas.space.arch import check_dims
from effnas.space.checks import within
from effnas.space.compound import check_multiplier, scale
from effnas.space.cost import stage_costs
from effnas.space.errors import UserError
from effnas.space.references import ResNetSpec
from effnas.studies.tables import extent, text_table


def describe(text: str, *, width: float | None = None, depth: float | None = None,
             resolution: int | None = None, num_classes: int = 1000, dims: int | None = None,
             in_channels: int | None = None) -> dict:
    """The JSON-able description of a preset, reference or arch string, scaled, at a resolution, as an image or
    volume network (``dims``) with ``in_channels`` input channels (both default to the arch string's)."""
    for name, value in (("width", width), ("depth", depth)):
        if value is not None:
            check_multiplier(name, value)
    arch, preset = presets.resolve(text)
    reference = isinstance(arch, ResNetSpec)
    if reference and (width, depth, dims, in_channels) != (None, None, None, None):
        raise UserError(f"{text} is a reference network: it takes no --width, --depth, --dims or --in-channels")
    if reference:
        resolution = 224 if resolution is None else resolution
    elif preset is not None:
        arch = preset.arch(width=width, depth=depth)
        resolution = preset.resolution if resolution is None else resolution
    else:
        if width is not None or depth is not None:
            arch = scale(arch, width=width or 1.0, depth=depth or 1.0)
        resolution = 224 if resolution is None else resolution
    if dims is not None:
        arch = replace(arch, dims=check_dims(dims))
    if in_channels is not None:
        if not within(in_channels, 1, integer=True):
            raise UserError(f"in_channels must be a positive integer, got {in_channels!r}")
        arch = replace(arch, in_channels=in_channels)
    rows = stage_costs(arch, resolution, num_classes=num_classes)
    stem, *stage_rows, head = rows
    return {
        "arch": str(arch),
        "preset": preset.name if preset else None,
        "dims": arch.dims,
        "in_channels": arch.in_channels,
        "reference": str(arch) if reference else None,
        "resolution": resolution,
        "num_classes": num_classes,
        "params": sum(r.params for r in rows),
        "macs": sum(r.macs for r in rows),
        "stem": {"channels": arch.stem, "kernel": 7 if reference else 3, "out_size": stem.out_size,
                 "params": stem.params, "macs": stem.macs},
        "stages": [_stage_row(s, r) for s, r in zip(arch.stages, stage_rows)],
        "head": {"channels": arch.head, "params": head.params, "macs": head.macs},
    }


def _stage_row(stage, row) -> dict:
    return {
        "block": stage.block, "kernel": stage.kernel, "stride": stage.stride,
        "expansion": stage.expansion, "se": stage.se, "repeats": stage.repeats,
        "channels": stage.channels, "skip": stage.skip, "activation": stage.activation,
        "out_size": row.out_size, "params": row.params, "macs": row.macs,
    }


def format_table(info: dict) -> str:
    dims = info.get("dims", 2)
    header = ("stage", "block", "k", "s", "e", "se", "r", "ch", "out", "params", "MACs")
    reference = info.get("reference") is not None
    rows = [("stem", "conv+pool" if reference else "conv", str(info["stem"].get("kernel", 3)), "2", "-", "-", "1",
             str(info["stem"]["channels"]), extent(info["stem"]["out_size"], dims=dims), f"{info['stem']['params']:,}",
             f"{info['stem']['macs']:,}")]
    for i, s in enumerate(info["stages"]):
        rows.append((str(i), s["block"], str(s["kernel"]), str(s["stride"]), _num(s["expansion"]),
                     _num(s["se"]) if s["se"] else "-", str(s["repeats"]), str(s["channels"]),
                     extent(s["out_size"], dims=dims), f"{s['params']:,}", f"{s['macs']:,}"))
    rows.append(("head", "fc" if reference else "conv+fc", "1", "1", "-", "-", "1", str(info["head"]["channels"]),
                 f"{info['num_classes']}", f"{info['head']['params']:,}", f"{info['head']['macs']:,}"))
    rows.append(("total", "", "", "", "", "", "", "", "", f"{info['params']:,}", f"{info['macs']:,}"))
    lines = text_table([header, *rows], left=(0, 1), rule=True)
    volume = f" volume, {info['in_channels']} input channel(s)" if dims == 3 else ""
    name = info["preset"] or info.get("reference") or "architecture"
    title = f"{name} at {extent(info['resolution'], dims=dims)}{volume}, " \
            f"{info['num_classes']} classes"
    note = (f"params {info['params']:,}  MACs {info['macs']:,} ({info['macs'] / 1e9:.3f} G)\n"
            "MACs are multiply-adds of convolutions and the classifier (the paper's \"FLOPs\").")
    return "\n".join([title, info["arch"], "", *lines, "", note])


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else f"{x:g}"
