"""Pretrained weights: file, cache, Hub reachable or not, --require-pretrained."""

from __future__ import annotations

import socket

import pytest

from thyroid_bench.hashing import sha256_file
from thyroid_bench.models import weights
from thyroid_bench.models.weights import PretrainedError, hub_reachable, resolve_pretrained

TAG = "timm/densenet169.tv_in1k"


def test_offline_env_is_honoured(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    called = []
    monkeypatch.setattr(socket, "create_connection", lambda *a, **k: called.append(a))
    assert hub_reachable() == (False, "HF_HUB_OFFLINE is set")
    assert called == []  # no network attempt at all


def test_unreachable_hub_is_reported_fast(monkeypatch):
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    seen = {}

    def refuse(address, timeout):
        seen["address"], seen["timeout"] = address, timeout
        raise ConnectionRefusedError("refused")

    monkeypatch.setattr(socket, "create_connection", refuse)
    ok, reason = hub_reachable()
    assert not ok and "huggingface.co is not reachable" in reason
    assert seen == {"address": ("huggingface.co", 443), "timeout": weights.HUB_TIMEOUT_S}


def test_warning_once_then_random_init(monkeypatch):
    monkeypatch.setattr(weights, "cached_weights", lambda tag: None)
    monkeypatch.setattr(weights, "hub_reachable", lambda timeout: (False, "no route"))
    lines = []
    choice = resolve_pretrained("densenet169", TAG, want=True, weights=None, require=False,
                                warn=lines.append)
    assert (choice.pretrained, choice.tag) == (False, "none")
    assert len(lines) == 1 and "no route" in lines[0] and "--weights" in lines[0] and TAG in lines[0]
    with pytest.raises(PretrainedError, match="require-pretrained"):
        resolve_pretrained("densenet169", TAG, want=True, weights=None, require=True, warn=lines.append)


def test_cache_then_hub(monkeypatch, tmp_path):
    cached = tmp_path / "model.safetensors"
    cached.write_bytes(b"weights")
    monkeypatch.setattr(weights, "cached_weights", lambda tag: str(cached))
    choice = resolve_pretrained("densenet169", TAG, want=True, weights=None, require=True)
    assert (choice.pretrained, choice.file, choice.tag, choice.origin) == (True, str(cached), TAG, "cache")
    assert choice.sha256 == sha256_file(cached)
    monkeypatch.setattr(weights, "cached_weights", lambda tag: None)
    monkeypatch.setattr(weights, "hub_reachable", lambda timeout: (True, "ok"))
    choice = resolve_pretrained("densenet169", TAG, want=True, weights=None, require=True)
    assert (choice.pretrained, choice.file, choice.origin) == (True, None, "hub")


def test_weights_file_and_not_wanted(tmp_path):
    f = tmp_path / "w.pth"
    f.write_bytes(b"x")
    choice = resolve_pretrained("resnet50", TAG, want=False, weights=f, require=False)
    assert (choice.tag, choice.file, choice.origin) == ("file:w.pth", str(f), "file")
    assert resolve_pretrained("resnet50", TAG, want=False, weights=None, require=True).tag == "none"
    with pytest.raises(PretrainedError, match="no such file"):
        resolve_pretrained("resnet50", TAG, want=True, weights=tmp_path / "missing.pth", require=False)
