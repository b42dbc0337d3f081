"""Protocols are data: the paper's parameters, overrides, validation, defaults per device."""

from __future__ import annotations

import json

import pytest

from thyroid_bench.harness.protocols import (
    PROTOCOLS,
    ProtocolError,
    default_protocol_name,
    get_protocol,
)


def test_paper_protocol_matches_the_paper():
    p = get_protocol("paper")
    assert (p.optimizer, p.lr, p.weight_decay, p.epochs, p.batch_size) == ("adam", 1e-3, 1e-4, 300, 12)
    assert (p.dropout, p.hflip_p, p.rotation_deg, p.pretrained) == (0.8, 0.5, 90.0, True)
    assert p.mixup_alpha > 0 and p.input_size is None  # native size: 299 for the inceptions


def test_quick_trains_from_scratch_small_and_selects_on_fold0():
    q = get_protocol("quick")
    assert q.pretrained is False and q.input_size == 64 and q.selection_fold == 0
    assert q.epochs < get_protocol("paper").epochs


def test_linear_probe_trains_the_head_and_leaves_the_backbone_bit_identical(
        tiny_run_dataset, tmp_path, monkeypatch):
    import numpy as np
    import timm
    import torch
    from safetensors.torch import load_file, save_file

    import thyroid_bench.harness.train as train
    from thyroid_bench.data.manifest import read_manifest
    from thyroid_bench.evaluation.suites import selection_scores
    from thyroid_bench.harness.run import run

    lp = get_protocol("linear-probe")
    assert lp.linear_probe and lp.pretrained and lp.selection_fold == 0
    torch.manual_seed(7)  # random backbone weights, given as the "pretrained" file
    src = timm.create_model("test_resnet", num_classes=0, in_chans=1)
    before = {k: v.detach().clone().contiguous() for k, v in src.state_dict().items()}
    save_file(before, str(tmp_path / "w.safetensors"))
    heads_at_start = []
    real_fit = train.fit_linear_probe

    def spy(head, *args, **kwargs):
        heads_at_start.append({k: v.detach().clone() for k, v in head.state_dict().items()})
        return real_fit(head, *args, **kwargs)

    monkeypatch.setattr(train, "fit_linear_probe", spy)
    res = run("timm:test_resnet", dataset=tiny_run_dataset, out=tmp_path / "lp", protocol="linear-probe",
              weights=tmp_path / "w.safetensors", epochs=4, num_threads=1, bootstrap=0, progress=False)
    after = load_file(str(res.run_dir / "model.safetensors"))
    backbone = {k.removeprefix("backbone."): v for k, v in after.items() if k.startswith("backbone.")}
    assert backbone.keys() == before.keys()  # parameters and batch-norm statistics alike
    for name, tensor in before.items():
        assert torch.equal(backbone[name], tensor), name
    assert set(after) - {f"backbone.{k}" for k in before} == {"head.weight", "head.bias"}
    assert len(heads_at_start) == 1
    assert not torch.equal(after["head.weight"], heads_at_start[0]["weight"])
    # The stored head is the selected one: on the cached selection-fold features it scores
    # the best score the run recorded.
    features = load_file(str(res.run_dir / "features.safetensors"))
    logits = features["selection"].double() @ after["head.weight"].double().T + after["head.bias"].double()
    task = read_manifest(tiny_run_dataset).get_task()
    scores = selection_scores(task, features["selection_labels"].numpy(),
                              torch.softmax(logits, 1).numpy())
    assert 1 <= res.entry.selection["best_epoch"] <= 4
    metric = lp.for_task(task).selection_metric
    assert metric == res.entry.selection["metric"] == "macro_f1"  # the task's, recorded
    assert np.isclose(scores[metric], res.entry.selection["best_score"], rtol=0, atol=1e-12)


def test_overrides_and_json():
    q = get_protocol("quick").with_overrides(epochs=1, batch_size=None)
    assert q.epochs == 1 and q.batch_size == get_protocol("quick").batch_size
    assert json.loads(json.dumps(q.to_dict()))["epochs"] == 1
    with pytest.raises(ProtocolError, match="unknown protocol field"):
        q.with_overrides(epoch=3)
    with pytest.raises(ProtocolError, match="epochs must be >= 1"):
        q.with_overrides(epochs=0)


def test_unknown_protocol_suggests():
    with pytest.raises(ProtocolError, match="did you mean quick"):
        get_protocol("quik")


def test_default_per_device():
    assert default_protocol_name("cpu") == "quick"
    assert default_protocol_name("cuda") == "paper"
    assert set(PROTOCOLS) == {"paper@1", "quick@1", "quick@2", "linear-probe@1"}
    assert get_protocol(default_protocol_name("cpu")).label == "quick@2"  # the latest version


def test_selection_follows_the_task_unless_the_protocol_names_it():
    from thyroid_bench.harness.protocols import Protocol
    from thyroid_bench.tasks import get_task

    four = get_task("four-pattern")
    quick = get_protocol("quick")
    assert quick.selection_metric is None
    assert quick.for_task(four).selection_metric == "macro_f1"
    assert quick.for_task(four).to_dict() == {**quick.to_dict(), "selection_metric": "macro_f1"}
    named = quick.with_overrides(selection_metric="accuracy")
    assert named.for_task(four).selection_metric == "accuracy"
    with pytest.raises(ProtocolError, match="selection_fold 5 is not a fold of task four-pattern"):
        quick.with_overrides(selection_fold=5).for_task(four)
    with pytest.raises(ProtocolError, match="selection_fold must be a train fold"):
        Protocol(**{**quick.to_dict(), "selection_fold": -1})
