"""The genome: what an architecture is and what it costs. No torch here.

- ``arch``: StageSpec / ArchSpec and timm's block-string grammar (``parse(str(a)) == a``)
- ``rounding``: the one channel rounding rule and the repeats rule
- ``network``: NetworkSpec (what every spec declares: dims, in_channels, stem, stages, head) and the one block walk
- ``cost``: exact analytic params and multiply-adds of a spec
- ``compound``: width/depth scaling, the (alpha, beta, gamma) grid, scaled members and families
- ``presets``: EfficientNet-B0…B7, MobileNetV2, MnasNet-A1/B1
- ``searchspace``: the per-stage choices a study samples from
- ``references``: the ResNet specs; ``checks``: the one number-in-range check the validators share
- ``errors``: UserError (bad input, exit 2) and SearchError (the work cannot go on, exit 1)
"""
