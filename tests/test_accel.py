"""How a run uses its device (mixed precision, channels-last, torch.compile) and data-parallel
training under torchrun, exercised on the CPU (gloo backend, two processes)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import numpy as np
import pytest
import torch
from torch import nn

from thyroid_bench.errors import ThyroidBenchError
from thyroid_bench.evaluation.predictions import read_predictions
from thyroid_bench.harness.preprocess import SplitTensors
from thyroid_bench.harness.protocols import get_protocol
from thyroid_bench.harness.run import run
from thyroid_bench.harness.train import Accel, fit, predict_proba, resolve_accel
from thyroid_bench.tasks import DEFAULT_TASK, get_task

CPU = torch.device("cpu")
TASK = get_task(DEFAULT_TASK)

# A network without batch norm or dropout: a data-parallel step then equals the
# single-process step on the same batch exactly (up to float summation order).
FACTORY = '''
from torch import nn


def tiny_net(num_classes=4, in_chans=3):
    return nn.Sequential(nn.Conv2d(in_chans, 4, 3, stride=2), nn.ReLU(), nn.AdaptiveAvgPool2d(4),
                         nn.Flatten(), nn.Linear(64, num_classes))
'''


@pytest.fixture(scope="module")
def tiny(tiny_run_dataset):
    return tiny_run_dataset


@pytest.fixture(scope="module")
def factory(tmp_path_factory):
    path = tmp_path_factory.mktemp("factory") / "tinynet.py"
    path.write_text(FACTORY)
    return f"{path}:tiny_net"


def test_accel_defaults_per_device_and_bad_values():
    assert resolve_accel(CPU) == Accel(amp=None, channels_last=True, compile=False)
    assert resolve_accel(CPU, channels_last="off") == Accel(amp=None, channels_last=False)
    assert resolve_accel(CPU, amp="bf16", channels_last="on") == Accel("bfloat16", True)
    with pytest.raises(ThyroidBenchError, match="fp16 needs CUDA"):
        resolve_accel(CPU, amp="fp16")
    with pytest.raises(ThyroidBenchError, match="--amp 'half'"):
        resolve_accel(CPU, amp="half")
    with pytest.raises(ThyroidBenchError, match="--channels-last 'yes'"):
        resolve_accel(CPU, channels_last="yes")


def test_cuda_settings_trade_determinism_for_speed_and_cpu_restores_it():
    from thyroid_bench.harness.train import set_determinism

    try:
        set_determinism(0, 1, "cuda")  # only flags: runs without a GPU
        assert not torch.are_deterministic_algorithms_enabled()
        assert torch.backends.cudnn.benchmark and torch.get_float32_matmul_precision() == "high"
    finally:
        set_determinism(0, 1, "cpu")
    assert torch.are_deterministic_algorithms_enabled()
    assert not torch.backends.cudnn.benchmark and torch.get_float32_matmul_precision() == "highest"


class _Probe(nn.Module):
    """Records the memory format, dtype and autocast state of every batch it sees."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)
        self.fc = nn.Linear(4, TASK.num_classes)
        self.seen: list[tuple[bool, torch.dtype, bool]] = []

    def forward(self, x):
        self.seen.append((x.is_contiguous(memory_format=torch.channels_last) and x.shape[1] > 1,
                          self.conv(x).dtype, torch.is_inference_mode_enabled()))
        return self.fc(self.conv(x).mean((2, 3)))


def _split(n: int, seed: int) -> SplitTensors:
    g = torch.Generator().manual_seed(seed)
    return SplitTensors(torch.rand((n, 1, 16, 16), generator=g), torch.arange(n) % TASK.num_classes,
                        [f"c{i}" for i in range(n)], np.zeros(n, dtype=np.int64))


@pytest.mark.parametrize("accel", [Accel(), Accel(amp="bfloat16", channels_last=True)])
def test_gpu_path_settings_reach_the_model_on_cpu(accel):
    probe = _Probe()
    proto = get_protocol("quick").with_overrides(epochs=1, batch_size=4)
    fit(probe, proto, _split(8, 0), _split(4, 1), task=TASK, device=CPU, seed=0, in_chans=3,
        log=lambda m: None, progress=False, accel=accel)
    train_steps, val_pass = probe.seen[:2], probe.seen[2]
    want_dtype = torch.bfloat16 if accel.amp else torch.float32
    assert train_steps == [(accel.channels_last, want_dtype, False)] * 2
    assert val_pass == (accel.channels_last, want_dtype, True)  # selection runs in inference mode
    prob = predict_proba(probe, _split(5, 2).x, device=CPU, in_chans=3, accel=accel)
    assert prob.shape == (5, TASK.num_classes) and np.allclose(prob.sum(1), 1.0)


def test_run_records_device_settings(tiny, factory, tmp_path):
    res = run(factory, dataset=tiny, out=tmp_path / "bf16", protocol="quick", epochs=1, batch_size=8,
              num_threads=1, bootstrap=0, progress=False, amp="bf16", channels_last="on")
    config = json.loads((res.run_dir / "config.json").read_text())
    assert config["accel"] == {"amp": "bfloat16", "channels_last": True, "compile": False}
    assert config["world_size"] == 1
    assert res.entry.environment.amp is True and res.entry.environment.deterministic is True


def _torchrun(args: list[str], cwd) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           "-m", "thyroid_bench.cli", "run", *args]
    return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=300)


def test_torchrun_two_processes_match_one_process(tiny, factory, tmp_path):
    common = ["--model", factory, "--dataset", str(tiny), "--protocol", "quick", "--epochs", "2",
              "--batch-size", "8", "--num-threads", "1", "--bootstrap", "50", "--device", "cpu",
              "--quiet"]
    proc = _torchrun([*common, "--out", str(tmp_path / "ddp")], cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    single = run(factory, dataset=tiny, out=tmp_path / "one", protocol="quick", epochs=2,
                 batch_size=8, num_threads=1, bootstrap=50, progress=False, device="cpu")
    # Rank 0 alone wrote: one run folder, one entry, the table printed once.
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ddp", "one"]
    assert proc.stdout.count("run folder:") == 1
    entry = json.loads((tmp_path / "ddp" / "entry.json").read_text())
    assert "2 processes" in entry["environment"]["device_name"]
    config = json.loads((tmp_path / "ddp" / "config.json").read_text())
    assert config["world_size"] == 2
    assert [h["epoch"] for h in config["history"]] == [1, 2]
    for split in ("internal", "external"):
        ddp = read_predictions(tmp_path / "ddp" / f"predictions/{split}.csv", TASK)
        one = read_predictions(single.run_dir / f"predictions/{split}.csv", TASK)
        assert ddp.case_ids == one.case_ids
        np.testing.assert_allclose(ddp.probs, one.probs, atol=1e-5)
        assert not np.allclose(one.probs, 0.25, atol=1e-3)  # it trained: not a constant guess


def test_torchrun_batch_must_split_evenly(tiny, factory, tmp_path):
    proc = _torchrun(["--model", factory, "--dataset", str(tiny), "--epochs", "1", "--batch-size",
                      "7", "--num-threads", "1", "--device", "cpu", "--quiet",
                      "--out", str(tmp_path / "odd")], cwd=tmp_path)
    assert proc.returncode != 0
    assert "batch size 7 does not split evenly over 2 processes" in proc.stderr
    assert not (tmp_path / "odd").exists()  # refused before any folder was made


@pytest.mark.skipif(not (shutil.which("c++") or shutil.which("g++")),
                    reason="torch.compile (inductor) needs a C++ compiler on the CPU")
def test_compiled_training_gives_the_eager_result():
    proto = get_protocol("quick").with_overrides(epochs=2, batch_size=4)
    probs = {}
    for compiled in (False, True):
        torch.manual_seed(0)
        net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(2), nn.Flatten(),
                            nn.Linear(16, TASK.num_classes))
        fit(net, proto, _split(16, 0), _split(4, 1), task=TASK, device=CPU, seed=0, in_chans=3,
            log=lambda m: None, progress=False, accel=Accel(compile=compiled))
        probs[compiled] = predict_proba(net, _split(8, 2).x, device=CPU, in_chans=3)
    assert not np.allclose(probs[False], 1 / TASK.num_classes, atol=1e-4)  # a real output, not a constant
    np.testing.assert_allclose(probs[True], probs[False], atol=1e-6)
