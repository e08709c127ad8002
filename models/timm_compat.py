"""The same network in timm: a recipe (timm's own block strings, which effnas's grammar is) and a state dict
whose keys map one to one, so a model trained here loads into ``timm.models.efficientnet.EfficientNet``
(or timm's ``resnet18/34/50``) and gives the same outputs.

Two details of timm are pinned by the recipe: channels are taken as written (``round_chs_fn=int``; timm would
round them to multiples of 8 again), and timm sizes an SE layer as ``round(mid x se / expansion)`` where
effnas (the reference code) takes ``int(block input x se)``; where the two differ, the block gets its own
string whose SE ratio gives effnas's width.
"""
from __future__ import annotations

from dataclasses import replace
from typing import Any

import torch
from torch import nn

from effnas.space.arch import ArchSpec, StageSpec
from effnas.space.cost import Network, mid_channels, se_channels
from effnas.space.errors import UserError
from effnas.space.network import blocks
from effnas.space.references import ResNetSpec

RECIPE_FORMAT = "effnas-timm/1"
_IR = {"expand.0": "conv_pw", "expand.1": "bn1", "depthwise.0": "conv_dw", "depthwise.1": "bn2",
       "se.reduce": "se.conv_reduce", "se.expand": "se.conv_expand", "project.0": "conv_pwl", "project.1": "bn3"}
_DS = {"depthwise.0": "conv_dw", "depthwise.1": "bn1", "se.reduce": "se.conv_reduce",
       "se.expand": "se.conv_expand", "project.0": "conv_pw", "project.1": "bn2"}
_OUTER = {"stem.0": "conv_stem", "stem.1": "bn1", "head.0": "conv_head", "head.1": "bn2", "classifier": "classifier"}


def _timm_se_width(cin: int, stage: StageSpec) -> int:
    """What timm's builder makes of ``seX`` (its se_ratio / exp_ratio, then round(mid x ratio))."""
    ratio = stage.se / (stage.expansion if stage.block == "ir" else 1.0)
    return round(mid_channels(cin, stage) * ratio)


def _blocks(arch: ArchSpec) -> list[list[tuple[StageSpec, int]]]:
    """(stage, block input channels) of every block, stage by stage (timm nests its blocks so)."""
    out: list[list[tuple[StageSpec, int]]] = [[] for _ in arch.stages]
    for block in blocks(arch):
        out[block.stage_index].append((block.stage, block.in_channels))
    return out


def recipe(arch: Network, *, num_classes: int) -> dict[str, Any]:
    """What timm needs to build the same network (JSON-able)."""
    if isinstance(arch, ResNetSpec):
        return {"format": RECIPE_FORMAT, "model": arch.name, "num_classes": num_classes}
    activations = {arch.stages[0].activation, arch.stages[-1].activation}
    if len(activations) > 1:
        raise UserError("timm's EfficientNet gives its stem and head one activation; this arch's first and last "
                        "stages differ (one has nre)")
    arch_def = []
    for stage_blocks in _blocks(arch):
        stage = stage_blocks[0][0]
        exact = all(stage.se == 0 or _timm_se_width(cin, s) == se_channels(cin, s.se) for s, cin in stage_blocks)
        if exact:
            arch_def.append([str(stage)])
            continue
        strings = []
        for index, (s, cin) in enumerate(stage_blocks):  # one string per block, with an SE ratio timm rounds right
            block = replace(s, repeats=1, stride=s.stride if index == 0 else 1, se=0.0)
            if s.se:
                wanted = se_channels(cin, s.se)
                ratio = wanted / mid_channels(cin, s) * (s.expansion if s.block == "ir" else 1.0)
                if round(mid_channels(cin, s) * (ratio / (s.expansion if s.block == "ir" else 1.0))) != wanted:
                    raise UserError(f"no SE ratio makes timm build {wanted} SE channels for block {s}")
                strings.append(f"{block}_se{ratio!r}")  # timm takes any ratio; effnas's grammar stops at 1
            else:
                strings.append(str(block))
        arch_def.append(strings)
    return {"format": RECIPE_FORMAT, "model": "efficientnet", "arch_def": arch_def, "stem_size": arch.stem,
            "num_features": arch.head, "num_classes": num_classes, "act_layer": arch.stages[0].activation}


def state_dict(weights: dict[str, torch.Tensor], arch: Network) -> dict[str, torch.Tensor]:
    """effnas's keys -> timm's (ResNet keys are torchvision's, which are timm's already)."""
    if isinstance(arch, ResNetSpec):
        return dict(weights)
    where = [(number, index, stage) for number, blocks in enumerate(_blocks(arch))
             for index, (stage, _) in enumerate(blocks)]
    out = {}
    for key, value in weights.items():
        parts = key.split(".")
        if parts[0] == "blocks":
            number, index, stage = where[int(parts[1])]
            names = _IR if stage.block == "ir" else _DS
            inner = ".".join(parts[2:-1])
            out[f"blocks.{number}.{index}.{names[inner]}.{parts[-1]}"] = value
        else:
            out[f"{_OUTER['.'.join(parts[:-1])]}.{parts[-1]}"] = value
    return out


def build_timm(values: dict[str, Any]) -> nn.Module:
    """The recipe's network in timm (needs timm installed): ``timm.create_model`` for a ResNet, timm's
    EfficientNet class from the block strings otherwise."""
    import timm
    from timm.models.efficientnet import EfficientNet, decode_arch_def

    if values.get("format") != RECIPE_FORMAT:
        raise UserError(f"not an effnas timm recipe (format {values.get('format')!r}, expected {RECIPE_FORMAT!r})")
    if values["model"] != "efficientnet":
        return timm.create_model(values["model"], num_classes=values["num_classes"], pretrained=False)
    act = {"silu": nn.SiLU, "relu": nn.ReLU}[values["act_layer"]]
    return EfficientNet(block_args=decode_arch_def(values["arch_def"]), num_classes=values["num_classes"],
                        stem_size=values["stem_size"], num_features=values["num_features"], act_layer=act,
                        round_chs_fn=int)
