"""`thyroid-bench prepare` for tsb-synthetic: the official build, reruns, previews, the card."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from thyroid_bench.cli import main
from thyroid_bench.data.card import synthetic_card
from thyroid_bench.data.format import read_manifest, render_card, resolve_dataset, verify_dataset
from thyroid_bench.data.official import pinned_fingerprint
from thyroid_bench.data.prepare import prepare_synthetic, synthetic_name
from thyroid_bench.schema import CLASS_NAMES

REPO = Path(__file__).resolve().parents[1]
MINI = {"train": (6, 5, 3, 4), "internal": (3, 3, 2, 2), "external": (2, 2, 1, 2)}


@pytest.fixture(scope="module")
def official(tmp_path_factory):
    """The full official cohort, built once (about half a minute on two cores)."""
    home = tmp_path_factory.mktemp("official")
    return prepare_synthetic(home=home, progress=False)


def test_official_build_matches_the_pinned_fingerprint(official):
    report = verify_dataset(official)
    assert report.ok, report.problems
    assert report.fingerprint == pinned_fingerprint("tsb-synthetic", "1.0.0")
    assert report.official is True
    assert "official  tsb-synthetic 1.0.0" in report.render()


def test_official_build_has_table1_counts(official):
    manifest = read_manifest(official)
    expected = {"train": (1040, 902, 97, 429), "internal": (260, 226, 25, 108),
                "external": (120, 49, 13, 120)}
    for split, counts in expected.items():
        assert manifest["splits"][split]["class_counts"] == dict(zip(CLASS_NAMES, counts))
    assert manifest["splits"]["external"]["center_counts"] == {"center2": 302}
    assert manifest["synthetic"] is True


def test_repository_card_is_the_card_prepare_writes(official):
    written = (official / "README.md").read_text()
    assert (REPO / "dataset_card.md").read_text() == written
    assert written == render_card(read_manifest(official), synthetic_card(read_manifest(official)))
    assert pinned_fingerprint("tsb-synthetic", "1.0.0") in written


def test_mini_variant_rerun_and_preview(tmp_path, capsys):
    path = prepare_synthetic(home=tmp_path, counts=MINI, preview=tmp_path / "p.png", progress=False)
    assert path == tmp_path / "tsb-synthetic-mini" / "1.0.0"
    assert verify_dataset(path).official is None  # unofficial: not pinned
    assert Image.open(tmp_path / "p.png").size[0] > 200
    mtime = (path / "manifest.json").stat().st_mtime_ns
    assert prepare_synthetic(home=tmp_path, counts=MINI, progress=True) == path
    assert (path / "manifest.json").stat().st_mtime_ns == mtime  # kept, not rebuilt
    assert "already prepared" in capsys.readouterr().err


def test_other_seed_is_named_apart():
    assert synthetic_name(None) == "tsb-synthetic"
    assert synthetic_name(7) == "tsb-synthetic-seed7"


def test_tampered_official_is_not_official(official, tmp_path):
    import shutil
    import json

    copy = tmp_path / "tsb-synthetic" / "1.0.0"
    shutil.copytree(official, copy)
    manifest = json.loads((copy / "manifest.json").read_text())
    manifest["fingerprint"] = "0" * 64
    (copy / "manifest.json").write_text(json.dumps(manifest))
    report = verify_dataset(copy)
    assert not report.ok and report.official is True  # content still matches the pin...
    assert "dataset fingerprint differs from the manifest's" in report.problems


def test_cli_prepare_default_home(monkeypatch, tmp_path, capsys):
    import thyroid_bench.data.prepare as prep

    real = prep.synthetic.generate_cohort
    def mini(seed, counts=None, progress=True, workers=1):
        return real(seed, counts=MINI, progress=False, workers=workers)

    monkeypatch.setattr(prep.synthetic, "generate_cohort", mini)
    monkeypatch.setenv("THYROID_BENCH_HOME", str(tmp_path))
    assert main(["prepare", "--seed", "3"]) == 0
    out = capsys.readouterr().out
    assert f"dataset ready: {tmp_path / 'tsb-synthetic-seed3' / '1.0.0'}" in out
    assert resolve_dataset("tsb-synthetic-seed3") == tmp_path / "tsb-synthetic-seed3" / "1.0.0"
