"""``effnas export``: a trained network as ONNX (checked against torch with onnxruntime), a ``torch.export``
program (.pt2), or a timm state dict plus the recipe that rebuilds it in timm.

Each export goes beside the run (``RUN/export/``) unless ``--out`` names a path (checked before any work: writable,
not a device, not one of the run's own files), is written atomically, and gets a JSON sidecar with what its input
needs: resolution, the training split's mean and std (of pixels in [0, 1]) and the class names.
"""
from __future__ import annotations

import contextlib
import io
import json
import logging
import stat
import warnings
from pathlib import Path
from typing import Any

import torch

from effnas.models import timm_compat
from effnas.search.training import checkpoint
from effnas.search.training.inference import Trained, check_finite_output, load_trained
from effnas.search.utils.files import check_writable, write_together
from effnas.space import presets
from effnas.space.errors import SearchError, UserError
from effnas.studies.config import EXPORT_FORMATS
from effnas.studies.outputs import check_output

ONNX_TOLERANCE = 1e-4
TIMM_FILES = ("model.safetensors", "recipe.json")


def output_path(trained: Trained, fmt: str, out: str | None) -> Path:
    """Where the export goes, checked before any work: a file (onnx, pt2; a pt2 name ends in .pt2, as
    torch.export's archives do) or a folder (timm) that can be written, not a device or a FIFO, and not among the
    run's own files (its export/ folder aside)."""
    run = trained.path.parent.parent
    default = run / "export" / ("timm" if fmt == "timm" else f"model.{fmt}")
    path = default if out is None else Path(out).expanduser()
    try:
        resolved, own = path.resolve(), run.resolve()
    except (OSError, RuntimeError) as exc:  # a loop of symbolic links
        raise UserError(f"--out {str(path)!r} cannot be resolved ({exc})") from None
    if path.is_symlink() and not path.exists():
        raise UserError(f"--out {str(path)!r} is a symbolic link to nothing; give a plain path")
    if path.exists():
        _check_existing(path, fmt)
    if resolved.is_relative_to(own) and not resolved.is_relative_to(own / "export"):
        raise UserError(f"--out {str(path)!r} is inside the run folder {str(run)!r}, among the files it was "
                        f"exported from; give a path outside it (or leave --out out: {str(default)!r})")
    written = [path, *(path / name for name in TIMM_FILES)] if fmt == "timm" else [path, sidecar(path)]
    for each in written:  # the output and every file it writes
        check_output(each, flag="--out", exports_of=run)
    if out is not None and not path.parent.is_dir():
        raise UserError(f"--out {out!r}: directory {str(path.parent)!r} does not exist")
    if fmt == "pt2" and path.suffix != ".pt2":
        raise UserError(f"--out {str(path)!r}: a pt2 export's name must end in .pt2")
    check_writable(path, what="--out", directory=fmt == "timm")
    return path


def sidecar(path: Path) -> Path:
    """The JSON beside an ONNX or pt2 export: what its input needs."""
    return path.with_name(path.name + ".json")


def _check_existing(path: Path, fmt: str) -> None:
    """An existing output is replaced only when it is what the export writes: a regular file, or a folder (timm)."""
    if fmt == "timm":
        if not path.is_dir():
            raise UserError(f"--out {str(path)!r} exists and is not a directory (a timm export is a folder)")
    elif path.is_dir():
        raise UserError(f"--out {str(path)!r} is a directory; give a file name")
    elif not stat.S_ISREG(path.stat().st_mode):
        raise UserError(f"--out {str(path)!r} exists and is not a regular file (a device, FIFO or socket)")


def export(text: str, *, fmt: str, out: str | None = None, batch: int = 8) -> dict[str, Any]:
    if fmt not in EXPORT_FORMATS:
        raise UserError(f"unknown export format {fmt!r}; allowed: {', '.join(EXPORT_FORMATS)}")
    trained = load_trained(text)
    trained.check_images("export")
    path = output_path(trained, fmt, out)
    path.parent.mkdir(parents=True, exist_ok=True)
    example = check_inputs(trained, batch=batch)
    result = {"format": fmt, "path": str(path), "weights": trained.weights}
    if fmt == "timm":
        _timm(trained, path)
        return result
    data, result["max_abs_error"] = (_onnx if fmt == "onnx" else _pt2)(trained.model, example)
    inputs = json.dumps(_inputs(trained), indent=2, sort_keys=True) + "\n"
    write_together({path: data, sidecar(path): inputs.encode()})  # the model and what its input needs, or neither
    return result


def check_inputs(trained: Trained, *, batch: int) -> torch.Tensor:
    """Inputs an export is checked on: validation images of the run (its evaluation's examples), normalised as in
    training, else random pixels. Gaussian noise would be far outside what the network saw: a trained B0's logits
    reach ~190 on it, where float32 itself is off by ~5e-4, against ~1.7 and ~2e-6 on its images."""
    import base64
    import io

    import numpy as np
    from PIL import Image

    evaluation = trained.path.parent.parent / checkpoint.EVALUATION
    examples = checkpoint.read_json(evaluation).get("examples", []) if evaluation.exists() else []
    if examples:
        images = [torch.from_numpy(np.asarray(Image.open(io.BytesIO(base64.b64decode(e["png"]))).convert("RGB"))
                                   .copy()).permute(2, 0, 1) for e in examples[:max(batch, 1)]]
        pixels = torch.stack(images)
    else:
        size = trained.resolution
        pixels = torch.randint(0, 256, (batch, 3, size, size), generator=torch.Generator().manual_seed(0))
    return trained.normalize(pixels)


def _inputs(trained: Trained) -> dict[str, Any]:
    return {"input": "float32 N x 3 x R x R, RGB, (pixels / 255 - mean) / std", "resolution": trained.resolution,
            "mean": trained.config["mean"], "std": trained.config["std"], "classes": trained.classes,
            "arch": trained.config["arch"], "weights": trained.weights}


@contextlib.contextmanager
def _quiet():
    """The ONNX exporter logs what it skips (torchvision's operators) and warns about its own internals."""
    logger = logging.getLogger("torch.onnx")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        logger.setLevel(level)


def _onnx(model: torch.nn.Module, example: torch.Tensor) -> tuple[bytes, float]:
    """(the ONNX file's bytes, the largest difference): exported with a dynamic batch, run with onnxruntime and
    compared with torch; only a model that agrees within ONNX_TOLERANCE is returned to be written."""
    try:
        import onnxruntime
    except ImportError:
        raise UserError("--format onnx needs onnx, onnxscript and onnxruntime: pip install 'effnas[export]'") from None
    batch = torch.export.Dim("batch", min=1, max=4096)
    archive = io.BytesIO()  # in memory until it is checked; then written as any file (whole, or not at all)
    with _quiet():
        torch.onnx.export(model, (example,), archive, input_names=["images"], output_names=["logits"],
                          dynamic_shapes=({0: batch},), dynamo=True, external_data=False, verbose=False)
    session = onnxruntime.InferenceSession(archive.getvalue(), providers=["CPUExecutionProvider"])
    error = 0.0
    for inputs in (example, example[:1]):
        with torch.no_grad():
            expected = model(inputs)
        check_finite_output(expected, "the run's network")
        got = session.run(["logits"], {"images": inputs.numpy()})[0]
        check_finite_output(torch.from_numpy(got), "the ONNX export (under onnxruntime)")
        error = max(error, float(abs(got - expected.numpy()).max()))
    if error > ONNX_TOLERANCE:
        raise SearchError(f"the ONNX export differs from torch by {error:.2e} on the run's images (> "
                          f"{ONNX_TOLERANCE}); not written")
    return archive.getvalue(), error


def _pt2(model: torch.nn.Module, example: torch.Tensor) -> tuple[bytes, float]:
    batch = torch.export.Dim("batch", min=1, max=4096)
    with _quiet():
        program = torch.export.export(model, (example,), dynamic_shapes=({0: batch},))
    with torch.no_grad():
        expected, got = model(example), program.module()(example)
    check_finite_output(expected, "the run's network")
    check_finite_output(got, "the torch.export program")
    archive = io.BytesIO()  # saved in memory, then written as any file: torch's own writer aborts on a full disk
    torch.export.save(program, archive)
    return archive.getvalue(), float((got - expected).abs().max())


def _timm(trained: Trained, folder: Path) -> None:
    """folder/model.safetensors (timm's keys) and folder/recipe.json (see models/timm_compat.py)."""
    arch = presets.network(trained.config["network"])
    values = {**timm_compat.recipe(arch, num_classes=int(trained.config["num_classes"])), **_inputs(trained)}
    weights = timm_compat.state_dict(trained.model.state_dict(), arch)
    folder.mkdir(exist_ok=True)
    contents = (checkpoint.to_bytes(weights, {"format": "pt"}), (json.dumps(values, indent=2) + "\n").encode())
    write_together({folder / name: data for name, data in zip(TIMM_FILES, contents)})
