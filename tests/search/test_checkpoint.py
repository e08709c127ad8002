"""Checkpoints: what comes back trains on exactly as what was saved, and a crash mid-write loses nothing."""
from __future__ import annotations

import os

import pytest
import torch

from effnas.models import build
from effnas.search.settings import TrainSettings
from effnas.search.training import checkpoint, inference
from effnas.search.training.optim import make_optimizer
from effnas.space.arch import ArchSpec
from effnas.space.errors import UserError

TINY = ArchSpec.parse("stem_c8 ds_r1_k3_s1_c8_se0.25 ir_r1_k3_s2_e3_c16 head_c32")


def _setup(seed: int = 0):
    torch.manual_seed(seed)
    model = build(TINY, num_classes=4, dropout=0.0, drop_path=0.0).to(memory_format=torch.channels_last)
    return model, make_optimizer(model, TrainSettings(lr=1e-2))


def _steps(model, optimizer, count: int) -> None:
    generator = torch.Generator().manual_seed(count)
    for _ in range(count):
        x = torch.randn(8, 3, 16, 16, generator=generator).contiguous(memory_format=torch.channels_last)
        loss = torch.nn.functional.cross_entropy(model(x), torch.randint(0, 4, (8,), generator=generator))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()


def _save(folder, model, optimizer, epoch):
    return checkpoint.save_checkpoint(folder, epoch=epoch, model=model.state_dict(), ema=None,
                                      optimizer=optimizer.state_dict(), state={"history": []}, metadata={})


@pytest.mark.parametrize("fix_layout", [True, False])
def test_saved_and_loaded_state_trains_on_bit_for_bit(tmp_path, fix_layout):
    model, optimizer = _setup()
    _steps(model, optimizer, 3)
    _save(tmp_path, model, optimizer, 1)
    _steps(model, optimizer, 3)
    resumed, resumed_optimizer = _setup(seed=1)
    saved = checkpoint.load_checkpoint(checkpoint.latest_checkpoint(tmp_path))
    resumed.load_state_dict(saved.model)
    if fix_layout:
        checkpoint.restore_optimizer(resumed_optimizer, saved.optimizer)
    else:  # what plain load_state_dict gives: contiguous moments beside channels_last weights
        resumed_optimizer.load_state_dict(saved.optimizer)
    _steps(resumed, resumed_optimizer, 3)
    same = all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), resumed.state_dict().values()))
    assert same == fix_layout


def test_a_crash_while_writing_leaves_the_previous_checkpoint(tmp_path, monkeypatch):
    model, optimizer = _setup()
    _save(tmp_path, model, optimizer, 1)
    real = os.replace

    def crash(src, dst):
        if str(dst).endswith("epoch-0002"):
            raise KeyboardInterrupt  # as if killed between writing the files and the rename
        return real(src, dst)

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(KeyboardInterrupt):
        _save(tmp_path, model, optimizer, 2)
    monkeypatch.setattr(os, "replace", real)
    assert checkpoint.latest_checkpoint(tmp_path).name == "epoch-0001"
    assert checkpoint.load_checkpoint(checkpoint.latest_checkpoint(tmp_path)).epoch == 1
    _save(tmp_path, model, optimizer, 2)
    assert [p.name for p in (tmp_path / checkpoint.CHECKPOINTS).iterdir()] == ["epoch-0002"]


def test_checkpoint_of_names_what_it_needs(tmp_path):
    with pytest.raises(UserError, match="neither a training run folder"):
        inference.checkpoint_of(str(tmp_path))
    (tmp_path / checkpoint.CONFIG).write_text("{}")
    with pytest.raises(UserError, match="no checkpoint yet"):
        inference.checkpoint_of(str(tmp_path))


def test_a_corrupt_weights_file_is_a_user_error(tmp_path):
    model, optimizer = _setup()
    path = _save(tmp_path, model, optimizer, 1)
    (path / checkpoint.WEIGHTS).write_bytes(b"\x08\x00\x00\x00\x00\x00\x00\x00{nonsense")
    with pytest.raises(UserError, match="not readable safetensors"):
        checkpoint.load_checkpoint(path)
