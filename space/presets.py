"""Named architectures: the EfficientNet family and the MobileNetV2 / MnasNet references, and the one
function that turns any text a user may give for a network (preset, reference, arch string) into a spec."""
from __future__ import annotations

from dataclasses import dataclass

from effnas.space import references
from effnas.space.arch import ArchSpec
from effnas.space.compound import scale
from effnas.space.cost import Network
from effnas.space.errors import UserError

EFFICIENTNET_B0 = (
    "stem_c32 ds_r1_k3_s1_e1_c16_se0.25 ir_r2_k3_s2_e6_c24_se0.25 ir_r2_k5_s2_e6_c40_se0.25 "
    "ir_r3_k3_s2_e6_c80_se0.25 ir_r3_k5_s1_e6_c112_se0.25 ir_r4_k5_s2_e6_c192_se0.25 "
    "ir_r1_k3_s1_e6_c320_se0.25 head_c1280"
)
MOBILENETV2 = (
    "stem_c32 ds_r1_k3_s1_c16_nre ir_r2_k3_s2_e6_c24_nre ir_r3_k3_s2_e6_c32_nre ir_r4_k3_s2_e6_c64_nre "
    "ir_r3_k3_s1_e6_c96_nre ir_r3_k3_s2_e6_c160_nre ir_r1_k3_s1_e6_c320_nre head_c1280"
)
MNASNET_A1 = (
    "stem_c32 ds_r1_k3_s1_e1_c16_noskip_nre ir_r2_k3_s2_e6_c24_nre ir_r3_k5_s2_e3_c40_se0.25_nre "
    "ir_r4_k3_s2_e6_c80_nre ir_r2_k3_s1_e6_c112_se0.25_nre ir_r3_k5_s2_e6_c160_se0.25_nre "
    "ir_r1_k3_s1_e6_c320_nre head_c1280"
)
MNASNET_B1 = (
    "stem_c32 ds_r1_k3_s1_c16_noskip_nre ir_r3_k3_s2_e3_c24_nre ir_r3_k5_s2_e3_c40_nre "
    "ir_r3_k5_s2_e6_c80_nre ir_r2_k3_s1_e6_c96_nre ir_r4_k5_s2_e6_c192_nre "
    "ir_r1_k3_s1_e6_c320_noskip_nre head_c1280"
)


@dataclass(frozen=True)
class Preset:
    name: str
    base: str
    width: float = 1.0
    depth: float = 1.0
    resolution: int = 224
    dropout: float = 0.2

    def arch(self, *, width: float | None = None, depth: float | None = None) -> ArchSpec:
        """The base architecture scaled by this preset's (or the given) width and depth."""
        w = self.width if width is None else width
        d = self.depth if depth is None else depth
        return scale(ArchSpec.parse(self.base), width=w, depth=d)


_EFFICIENTNETS = {
    "b0": (1.0, 1.0, 224, 0.2), "b1": (1.0, 1.1, 240, 0.2), "b2": (1.1, 1.2, 260, 0.3),
    "b3": (1.2, 1.4, 300, 0.3), "b4": (1.4, 1.8, 380, 0.4), "b5": (1.6, 2.2, 456, 0.4),
    "b6": (1.8, 2.6, 528, 0.5), "b7": (2.0, 3.1, 600, 0.5),
}

PRESETS: dict[str, Preset] = {
    f"efficientnet-{k}": Preset(f"efficientnet-{k}", EFFICIENTNET_B0, *v) for k, v in _EFFICIENTNETS.items()
}
PRESETS["mobilenetv2"] = Preset("mobilenetv2", MOBILENETV2)
PRESETS["mnasnet-a1"] = Preset("mnasnet-a1", MNASNET_A1)
PRESETS["mnasnet-b1"] = Preset("mnasnet-b1", MNASNET_B1)


def get(name: str) -> Preset:
    try:
        return PRESETS[name]
    except KeyError:
        raise UserError(f"unknown preset {name!r}; available: {', '.join(PRESETS)}") from None


def resolve(text: str) -> tuple[Network, Preset | None]:
    """A preset, a reference or an arch string -> (the spec, at the preset's scaling; the preset or None)."""
    if not isinstance(text, str):
        raise UserError(f"expected a preset, a reference or an arch string, got {text!r}")
    if text in PRESETS:
        preset = PRESETS[text]
        return preset.arch(), preset
    if text in references.REFERENCES:
        return references.REFERENCES[text], None
    if "_" not in text:
        names = ", ".join([*PRESETS, *references.REFERENCES])
        raise UserError(f"unknown preset or reference {text!r}; available: {names} or an arch string")
    return ArchSpec.parse(text), None


def network(text: str) -> Network:
    """Any text naming a network -> its spec: what a trial, ``effnas train`` and ``effnas bench`` build."""
    return resolve(text)[0]


def efficientnet(text: str, *, role: str) -> ArchSpec:
    """A preset or arch string where only an EfficientNet-style spec makes sense (a search space's base,
    a baseline to scale); a reference is refused with the reason."""
    spec = network(text)
    if not isinstance(spec, ArchSpec):
        raise UserError(f"{role} must be an EfficientNet-style preset or arch string; {text!r} is a reference "
                        "network, which has no stages to search or scale")
    return spec
