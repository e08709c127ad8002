from __future__ import annotations

import torch

from effnas.search.data.augment import CropFlip, make_augment


def test_no_crop_no_flip_is_the_identity_and_a_flip_is_exact():
    images = torch.randint(0, 256, (6, 3, 9, 9), dtype=torch.uint8)
    generator = torch.Generator().manual_seed(0)
    identity = CropFlip(crop=False, flip=False)
    assert torch.allclose(identity.apply(images, identity.params(6, generator)), images.float(), atol=1e-3)
    flip = CropFlip(crop=False, flip=True)
    params = flip.params(6, generator)
    out = flip.apply(images, params)
    for i in range(6):
        expected = images[i].flip(-1) if params[i, 0, 0] < 0 else images[i]
        assert torch.allclose(out[i], expected.float(), atol=1e-3)


def test_crops_stay_inside_the_image_and_the_draws_follow_the_generator():
    crop = make_augment("crop", crop_scale=0.25)
    a = crop.params(500, torch.Generator().manual_seed(1))
    assert torch.equal(a, crop.params(500, torch.Generator().manual_seed(1)))
    width, height = a[:, 0, 0].abs(), a[:, 1, 1]
    assert (a[:, 0, 2].abs() <= 1 - width + 1e-6).all() and (a[:, 1, 2].abs() <= 1 - height + 1e-6).all()
    area = width * height
    assert area.min() >= 0.25 * 0.99 and area.max() <= 1.0
    assert make_augment("none", crop_scale=0.5) is None
