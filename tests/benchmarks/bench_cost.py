"""cost() against fvcore's trace of EfficientNet-B0 at 224 (target: >= 1000x faster)."""
from __future__ import annotations

import time

import torch

from effnas.models import build
from effnas.space import presets
from effnas.space.cost import cost
from tests.space.test_cost import fvcore_macs


def main() -> dict:
    arch = presets.get("efficientnet-b0").arch()
    repeats = 2000
    start = time.perf_counter()
    for _ in range(repeats):
        analytic = cost(arch, 224)
    analytic_s = (time.perf_counter() - start) / repeats
    model = build(arch)
    traced = []
    for _ in range(3):
        start = time.perf_counter()
        macs = fvcore_macs(model, 224)
        traced.append(time.perf_counter() - start)
    fvcore_s = min(traced)
    assert macs == analytic.macs
    ratio = fvcore_s / analytic_s
    print(f"cost(): {analytic_s * 1e6:.1f} us  fvcore trace: {fvcore_s * 1e3:.1f} ms  ratio {ratio:,.0f}x "
          f"(target >= 1000x) torch {torch.__version__}")
    return {"cost_us": analytic_s * 1e6, "fvcore_ms": fvcore_s * 1e3, "ratio": ratio}


if __name__ == "__main__":
    main()
