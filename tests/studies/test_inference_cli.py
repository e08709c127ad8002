"""predict, export and bench on a trained run (the session's ``trained_run``), as a user runs them."""
from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file

from effnas.search.training.inference import load_trained
from effnas.studies.cli import main
from effnas.studies.export import export
from tests.conftest import TINY


def test_predict_prints_classes_of_pngs(trained_run, digit_pngs, capsys):
    images = sorted(str(p) for p in digit_pngs.rglob("*.png"))[:4]
    assert main(["predict", str(trained_run), *images, "--top-k", "3", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["image"] for r in rows] == images
    for row in rows:
        probabilities = [t["probability"] for t in row["top"]]
        assert len(row["top"]) == 3 and probabilities == sorted(probabilities, reverse=True)
        assert {t["class"] for t in row["top"]} <= {str(d) for d in range(10)}
    assert main(["predict", str(trained_run), images[0]]) == 0
    line = capsys.readouterr().out.strip()
    assert line.startswith(images[0] + ": ") and line.count(",") == 4  # five classes by default


def test_predict_agrees_with_the_final_evaluation(trained_run, digit_pngs):
    """The test images' accuracy through predict equals the run's held-out accuracy in evaluation.json."""
    from effnas.studies.predict import predict

    images = sorted(digit_pngs.rglob("*.png"))
    rows = predict(str(trained_run), [str(p) for p in images], top_k=1)
    correct = sum(row["top"][0]["class"] == path.parent.name for row, path in zip(rows, images))
    evaluation = json.loads((trained_run / "evaluation.json").read_text())
    assert correct / len(images) == pytest.approx(evaluation["test"]["accuracy"])


@pytest.mark.parametrize("args, fragment", [
    (["predict", "nowhere", "x.png"], "does not exist"),
    (["export", "nowhere", "--format", "onnx"], "neither a training run folder"),
    (["bench", "resnet18", "--runs", "10"], "at least 10 warm-up and 50 timed runs"),
    (["bench", "efficientnet-b0", "--device", "tpu"], "expected cpu, cuda or cuda:N"),
])
def test_bad_input(args, fragment, capsys):
    assert main(args) == 2
    assert fragment in capsys.readouterr().err


def test_onnx_export_matches_torch(trained_run, tmp_path):
    pytest.importorskip("onnxruntime")
    result = export(str(trained_run), fmt="onnx", out=str(tmp_path / "m.onnx"))
    assert result["max_abs_error"] <= 1e-4 and result["weights"] == "ema"
    import onnxruntime

    trained = load_trained(str(trained_run))
    x = torch.randn(5, 3, 16, 16)
    session = onnxruntime.InferenceSession(str(tmp_path / "m.onnx"), providers=["CPUExecutionProvider"])
    got = session.run(None, {"images": x.numpy()})[0]
    with torch.no_grad():
        assert abs(got - trained.model(x).numpy()).max() <= 1e-4  # another batch size than the export's
    sidecar = json.loads((tmp_path / "m.onnx.json").read_text())
    assert sidecar["classes"] == [str(d) for d in range(10)] and sidecar["resolution"] == 16


def test_pt2_export_runs_as_the_network(trained_run, tmp_path):
    result = export(str(trained_run), fmt="pt2", out=str(tmp_path / "m.pt2"))
    program = torch.export.load(str(tmp_path / "m.pt2"))
    trained = load_trained(str(trained_run))
    x = torch.randn(3, 3, 16, 16)
    with torch.no_grad():
        assert torch.allclose(program.module()(x), trained.model(x), atol=1e-5)
    assert result["max_abs_error"] <= 1e-5


def test_timm_export_keys_map_one_to_one(trained_run, tmp_path):
    export(str(trained_run), fmt="timm", out=str(tmp_path / "timm"))
    recipe = json.loads((tmp_path / "timm" / "recipe.json").read_text())
    weights = load_file(tmp_path / "timm" / "model.safetensors")
    trained = load_trained(str(trained_run))
    assert len(weights) == len(trained.model.state_dict())
    assert "conv_stem.weight" in weights and "blocks.1.0.conv_pwl.weight" in weights
    assert recipe["arch_def"] == [["ds_r1_k3_s1_e1_c8_se0.25"], ["ir_r2_k3_s2_e3_c16"]]
    timm = pytest.importorskip("timm")  # needs torchvision; CI has none: checked where timm imports
    from effnas.models.timm_compat import build_timm

    theirs = build_timm(recipe).eval()
    theirs.load_state_dict(weights)
    assert isinstance(theirs, timm.models.efficientnet.EfficientNet)
    assert sum(p.numel() for p in theirs.parameters()) == sum(p.numel() for p in trained.model.parameters())
    x = torch.randn(2, 3, 16, 16)
    with torch.no_grad():
        assert torch.allclose(theirs(x), trained.model(x), atol=1e-5)


def test_timm_recipes_of_presets_and_references_rebuild_the_network():
    """Parameter for parameter, and output for output, for every preset and reference (where timm imports)."""
    from effnas.models import build
    from effnas.models.timm_compat import build_timm, recipe, state_dict
    from effnas.space import presets

    pytest.importorskip("timm")
    for name in ("efficientnet-b0", "efficientnet-b3", "mobilenetv2", "mnasnet-a1", "resnet18", "resnet50"):
        arch = presets.network(name)
        ours = build(arch, num_classes=5).eval()
        theirs = build_timm(recipe(arch, num_classes=5)).eval()
        theirs.load_state_dict(state_dict(ours.state_dict(), arch))
        x = torch.randn(1, 3, 64, 64)
        with torch.no_grad():
            assert torch.allclose(theirs(x), ours(x), atol=1e-4), name


def test_bench_reports_what_it_measured(trained_run, capsys):
    assert main(["bench", str(trained_run), "--json", "--threads", "1"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["resolution"] == 16 and result["batch"] == 1 and result["runs"] == 50 and result["warmup"] == 10
    assert result["device"] == "cpu" and result["dtype"] == "float32" and result["memory_format"] == "channels_last"
    assert result["torch"] == torch.__version__ and result["threads"] == 1
    assert 0 < result["median_ms"] <= result["p90_ms"]
    assert result["images_per_second"] == pytest.approx(1000 / result["median_ms"])
    assert main(["bench", TINY, "--resolution", "32", "--batch", "4"]) == 0
    assert "batch 4 at 32px" in capsys.readouterr().out


def test_predict_json_streams_the_same_array_json_dumps_writes(trained_run, digit_pngs, capsys):
    from effnas.studies.predict import predict

    images = sorted(str(p) for p in digit_pngs.rglob("*.png"))[:3]
    assert main(["predict", str(trained_run), *images, "--top-k", "2", "--json"]) == 0
    assert capsys.readouterr().out == json.dumps(list(predict(str(trained_run), images, top_k=2)), indent=2) + "\n"


def test_predict_runs_in_bounded_batches_with_the_rows_of_one_batch(trained_run, digit_pngs, monkeypatch):
    """However many images, the network sees at most a batch of them at once, and each row is what one batch
    of all the images gives."""
    import effnas.studies.predict as predict_module
    from effnas.space import presets

    images = sorted(str(p) for p in digit_pngs.rglob("*.png"))
    whole = list(predict_module.predict(str(trained_run), images, top_k=3))
    monkeypatch.setattr(predict_module, "MAX_BATCH", 4)
    seen = []
    original = load_trained

    def watched(text):
        trained = original(text)
        trained.model.register_forward_pre_hook(lambda module, args: seen.append(args[0].shape[0]))
        return trained

    monkeypatch.setattr(predict_module, "load_trained", watched)
    rows = list(predict_module.predict(str(trained_run), images, top_k=3))
    assert max(seen) == 4 and sum(seen) == len(images) == 30
    for row, reference in zip(rows, whole, strict=True):
        assert row["image"] == reference["image"]
        assert [t["class"] for t in row["top"]] == [t["class"] for t in reference["top"]]
        assert [t["probability"] for t in row["top"]] == pytest.approx([t["probability"] for t in reference["top"]],
                                                                      abs=1e-5)
    from effnas.space.cost import inference_activations

    big = type("T", (), {"config": {"network": "efficientnet-b7", "num_classes": 1000}, "resolution": 600})()
    per_image = 4 * inference_activations(presets.network("efficientnet-b7"), 600)
    assert 1 <= predict_module.batch_size(big) <= predict_module.BATCH_BYTES // per_image < 4  # B7 at 600 px


def _broken(trained_run, tmp_path, how: str):
    """A copy of the run whose inference weights hold a NaN, or whose batch-norm variances are negative (finite
    weights, NaN outputs)."""
    import shutil

    from safetensors import safe_open
    from safetensors.torch import save_file

    run = tmp_path / f"run-{how}"
    shutil.copytree(trained_run, run)
    for path in run.glob("checkpoints/*/*.safetensors"):
        if path.name == "optimizer.safetensors":
            continue
        with safe_open(str(path), "pt") as handle:
            metadata = handle.metadata()
        tensors = load_file(path)
        for name, tensor in tensors.items():
            if how == "nan" and name.endswith("weight"):
                tensor.view(-1)[0] = float("nan")
            if how == "variance" and name.endswith("running_var"):
                tensor.fill_(-1.0)
        save_file(tensors, path, metadata=metadata)
    return run


@pytest.mark.parametrize("how, fragment", [("nan", "non-finite weights"), ("variance", "non-finite outputs")])
@pytest.mark.parametrize("command", ["predict", "onnx", "pt2", "bench"])
def test_a_network_with_non_finite_weights_or_outputs_is_an_error(trained_run, digit_pngs, tmp_path, capsys, how,
                                                                  fragment, command):
    run = _broken(trained_run, tmp_path, how)
    out = tmp_path / "out"
    out.mkdir()
    image = str(sorted(digit_pngs.rglob("*.png"))[0])
    args = {"predict": ["predict", str(run), image], "bench": ["bench", str(run)],
            "onnx": ["export", str(run), "--format", "onnx", "--out", str(out / "m.onnx")],
            "pt2": ["export", str(run), "--format", "pt2", "--out", str(out / "m.pt2")]}[command]
    assert main(args) == 2
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("effnas: error: ") and fragment in lines[0], captured.err
    assert captured.out == "" and list(out.iterdir()) == []
