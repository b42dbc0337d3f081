"""Protocol versions: ``quick@1`` is the protocol every committed quick entry ran under, bit for
bit; ``quick@2`` is a new version; the leaderboard keeps versions apart and checks the version
an entry claims."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import pytest
import torch

from test_leaderboard import edit_entry, make_dataset, make_run
from thyroid_bench.evaluation.entry import read_entry
from thyroid_bench.harness.protocols import LATER_FIELDS, ProtocolError, get_protocol, version_of
from thyroid_bench.harness.train import class_weights, task_loss
from thyroid_bench.leaderboard import SubmissionError, submit
from thyroid_bench.leaderboard.names import entry_id, protocol_label
from thyroid_bench.leaderboard.render import render_leaderboard
from thyroid_bench.tasks import get_task

ROOT = Path(__file__).resolve().parents[1]
COMMITTED = sorted((ROOT / "leaderboard" / "entries").glob("*/*/*/entry.json"))


def test_quick_1_is_the_protocol_of_every_committed_quick_entry():
    quick = [e for e in map(read_entry, COMMITTED) if e.protocol.name == "quick"]
    # version 1 records no version: the 27 baselines made before versions existed, and the
    # three four-pattern timm:resnet18 quick@1 runs made after, which record the same
    first = [e for e in quick if "version" not in e.protocol.parameters]
    assert len(first) == 30
    for entry in first:
        assert version_of(entry.protocol.parameters) == 1
        expected = get_protocol("quick@1").for_task(get_task(entry.task)).to_dict()
        assert entry.protocol.parameters == expected
        assert protocol_label(entry) == "quick@1"
    second = [e for e in quick if e not in first]
    assert second, "the quick@2 baselines are committed"
    for entry in second:
        assert entry.protocol.parameters["version"] == 2 and protocol_label(entry) == "quick@2"
        assert entry.protocol.parameters == get_protocol("quick@2").for_task(get_task(entry.task)).to_dict()
    # the ids of committed entries are what they were: no version in a version-1 id
    path = next(p for p in COMMITTED if read_entry(p).protocol.name == "quick")
    from thyroid_bench.hashing import sha256_file
    assert entry_id(read_entry(path), sha256_file(path)) == path.parent.name


def test_names_and_versions():
    assert get_protocol("quick").label == "quick@2"  # a bare name: the latest version
    assert get_protocol("quick@1").version == 1 and get_protocol("quick", 1).label == "quick@1"
    assert get_protocol("paper").label == "paper@1"
    q1, q2 = get_protocol("quick@1"), get_protocol("quick@2")
    changed = {k for k in q2.to_dict() if q1.to_dict().get(k) != q2.to_dict()[k]}
    assert changed == {"version", "class_weight_power", "description"}
    assert set(q1.to_dict()) & set(LATER_FIELDS) == set()  # a version-1 record is as it was
    with pytest.raises(ProtocolError, match=r"has no version 9; versions: quick@1, quick@2"):
        get_protocol("quick@9")
    with pytest.raises(ProtocolError, match="expected NAME or NAME@VERSION"):
        get_protocol("quick@two")
    with pytest.raises(ProtocolError, match="did you mean quick"):
        get_protocol("quik@1")
    with pytest.raises(ProtocolError, match="version must be >= 1"):
        q2.with_overrides(version=0)


def test_a_task_without_class_weighting_trains_unweighted_under_quick_2():
    q2 = get_protocol("quick@2")
    assert q2.for_task(get_task("four-pattern")).class_weight_power == 1.0
    residual = q2.for_task(get_task("residual-tissue"))
    assert get_task("residual-tissue").class_weighting is False
    assert residual.class_weight_power == 0.0 and residual.label == "quick@2"
    record = residual.to_dict()  # what an entry records: version 2, class weights off
    assert record["version"] == 2 and record["class_weight_power"] == 0.0
    assert record["description"] == q2.description
    assert class_weights(torch.tensor([0, 0, 1, 2, 3]), 4, residual.class_weight_power) is None


def test_class_weights_by_hand():
    y = torch.tensor([0, 0, 0, 1, -1])  # -1: unknown grade, not counted; class 2 has no case
    assert class_weights(y, 3, 0.0) is None
    w = class_weights(y, 3, 1.0)
    # (1/3, 1, 1) scaled so the 4 counted cases average 1: 4 / (3 * 1/3 + 1 * 1) = 2
    assert torch.allclose(w, torch.tensor([2 / 3, 2.0, 2.0]))
    w = class_weights(y, 3, 0.5)
    s = 4 / (3 * 3 ** -0.5 + 1)
    assert torch.allclose(w, torch.tensor([s * 3 ** -0.5, s, s]))


def test_weighted_loss_by_hand():
    logits = torch.tensor([[2.0, 0.0, -1.0], [0.5, 0.5, 0.0]])
    target = torch.tensor([[1.0, 0.0, 0.0], [0.0, 0.3, 0.7]])  # a mix-up row
    w = torch.tensor([0.5, 1.0, 3.0])
    logp = torch.log_softmax(logits, 1)
    by_hand = -((w * target * logp).sum(1)).mean()
    assert math.isclose(task_loss(logits, target, class_weights=w).item(), by_hand.item(), rel_tol=1e-6)
    # no weights: exactly the unweighted loss (quick@1 computes with no weight at all)
    assert torch.equal(task_loss(logits, target), torch.nn.functional.cross_entropy(logits, target))
    # with a detection reading the unknown-grade column keeps weight 1
    t4 = torch.tensor([[0.0, 0.0, 0.0, 1.0], [0.0, 1.0, 0.0, 0.0]])
    by_hand = -(torch.logsumexp(logp[0, 1:], 0) + w[1] * logp[1, 1]) / 2
    got = task_loss(logits, t4, negative_index=0, class_weights=w)
    assert math.isclose(got.item(), by_hand.item(), rel_tol=1e-6)


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    base = tmp_path_factory.mktemp("versions")
    home = base / "home"
    dataset = make_dataset(home)
    return {"home": home, "dataset": dataset, "base": base}


def test_versions_are_separate_rows_never_one_mean(world, tmp_path):
    lb = tmp_path / "lb"
    runs = [make_run(tmp_path / f"v{v}-s{s}", world["dataset"], seed=s, protocol=f"quick@{v}",
                     skill=0.25 if v == 1 else 0.6, noise_seed=10 * v + s)
            for v in (1, 2) for s in (0, 1)]
    accepted = submit(runs, leaderboard=lb, home=world["home"])
    assert len(accepted.entry_ids) == 4  # same model and seeds: not duplicates across versions
    assert sorted(i.rsplit("-", 1)[0] for i in accepted.entry_ids) == [
        "toy-a-quick-seed0", "toy-a-quick-seed1", "toy-a-quick2-seed0", "toy-a-quick2-seed1"]
    (section,) = render_leaderboard(lb, write=False).sections
    groups = {g.protocol: g for g in section.groups}
    assert set(groups) == {"quick@1", "quick@2"}
    for v, g in ((1, groups["quick@1"]), (2, groups["quick@2"])):
        mine = [read_entry(r / "entry.json") for r in runs if r.name.startswith(f"v{v}")]
        f1 = [e.metrics["external"]["macro_f1"] for e in mine]
        assert g.seeds == [0, 1]
        assert math.isclose(g.stats["external"]["macro_f1"].mean, sum(f1) / 2, rel_tol=1e-12)
    page = (lb / "README.md").read_text()
    assert "`quick@1`" in page and "`quick@2`" in page and "class_weight_power=1" in page


@pytest.mark.parametrize("change, message", [
    (lambda p: p.update(version=3), "'quick@3' is not a registered protocol version"),
    (lambda p: p.update(version="2"), "not a version number"),
    (lambda p: p.update(version=True), "not a version number"),
    (lambda p: p.pop("version"), "protocol.parameters.class_weight_power is 1.0, but protocol 'quick@1'"),
    (lambda p: p.update(class_weight_power=0.5), "class_weight_power is 0.5, but protocol 'quick@2'"),
])
def test_a_claimed_version_is_checked(world, tmp_path, change, message):
    run = make_run(tmp_path / "run", world["dataset"], protocol="quick@2")
    edit_entry(run, lambda d: change(d["protocol"]["parameters"]))
    with pytest.raises(SubmissionError, match="protocol") as info:
        submit(run, leaderboard=tmp_path / "lb", home=world["home"])
    assert info.value.check == "protocol" and message in str(info.value)
    assert not (tmp_path / "lb").exists() or not list((tmp_path / "lb").rglob("entry.json"))


def test_the_version_is_not_an_override(world, tmp_path):
    run = make_run(tmp_path / "run", world["dataset"], protocol="quick@2")
    edit_entry(run, lambda d: d["protocol"]["overrides"].update(version=1))
    with pytest.raises(SubmissionError, match="protocol.overrides.version: not a parameter that can"):
        submit(run, leaderboard=tmp_path / "lb", home=world["home"])
