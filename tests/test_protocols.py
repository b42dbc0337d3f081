"""Protocols are data: the paper's parameters, overrides, validation, defaults per device."""

from __future__ import annotations

import json

import pytest

from thyroid_bench.protocols import (
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


def test_linear_probe_freezes():
    lp = get_protocol("linear-probe")
    assert lp.linear_probe and lp.pretrained and lp.selection_fold == 0


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
    assert set(PROTOCOLS) == {"paper", "quick", "linear-probe"}
