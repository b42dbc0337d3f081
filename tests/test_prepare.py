"""`thyroid-bench prepare` for tsb-synthetic: the official build, reruns, previews, the card."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from thyroid_bench.cli import main
from thyroid_bench.data.card import render_card, synthetic_card
from thyroid_bench.data.format import resolve_dataset
from thyroid_bench.data.manifest import read_manifest
from thyroid_bench.data.official import pinned_fingerprint
from thyroid_bench.data.synthetic.prepare import prepare_synthetic, synthetic_name
from thyroid_bench.data.verify import verify_dataset

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
    assert manifest.task == "four-pattern"
    names = ("diffusely_increased", "diffusely_decreased", "focal_increased", "heterogeneous_uptake")
    expected = {"train": (1040, 902, 97, 429), "internal": (260, 226, 25, 108),
                "external": (120, 49, 13, 120)}
    for split, counts in expected.items():
        assert manifest.splits[split].class_counts == dict(zip(names, counts))
    assert manifest.splits["external"].center_counts == {"center2": 302}
    assert manifest.synthetic is True


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
    import thyroid_bench.data.synthetic.prepare as prep

    real = prep.synthetic.cohort_rows
    def mini(seed, counts=None, progress=True, workers=1):
        return real(seed, counts=MINI, progress=False, workers=workers)

    monkeypatch.setattr(prep.synthetic, "cohort_rows", mini)
    monkeypatch.setenv("THYROID_BENCH_HOME", str(tmp_path))
    assert main(["prepare", "--seed", "3"]) == 0
    out = capsys.readouterr().out
    assert f"dataset ready: {tmp_path / 'tsb-synthetic-seed3' / '1.0.0'}" in out
    assert resolve_dataset("tsb-synthetic-seed3") == tmp_path / "tsb-synthetic-seed3" / "1.0.0"


# --------------------------------------------------------------------------- the card writer
@pytest.fixture()
def toy_manifest():
    """An in-memory manifest of a registered toy task: two classes, three folds."""
    from thyroid_bench.data.manifest import Manifest, SplitMeta
    from thyroid_bench.tasks import register_task, unregister_task
    from thyroid_bench.tasks.task import MainScore, Reference, Target, Task, TaskClass

    task = register_task(Task(
        name="toy-card", description="toy", reference=Reference(citation="Toy et al. 2030"),
        modality="planar", folds=3, main_score=MainScore(metric="macro_f1", split="external"),
        target=Target(kind="binary", classes=(
            TaskClass(index=0, name="absent", reading="no residue"),
            TaskClass(index=1, name="present", code="R", reading="residual tissue"))),
    ))
    counts = {"train": (3, 1), "internal": (1, 1), "external": (0, 2)}
    splits = {s: SplitMeta(rows=sum(c), class_counts=dict(zip(task.class_names, c)),
                           center_counts={"siteA": sum(c)}, fingerprint="f" * 64)
              for s, c in counts.items()}
    yield Manifest(name="toy-ds", version="0.1.0", task=task.name, label_schema=task.label_schema(),
                   fingerprint="a" * 64, splits=splits, licence="other")
    unregister_task(task.name)


def test_card_sections_follow_the_manifests_task(toy_manifest):
    from thyroid_bench.data.card import counts_table, format_section, labels_section

    assert counts_table(toy_manifest).splitlines() == [
        "| split | centre | absent | present (R) | total |",
        "| --- | --- | --- | --- | --- |",
        "| train | siteA | 3 | 1 | 4 |",
        "| internal | siteA | 1 | 1 | 2 |",
        "| external | siteA | 0 | 2 | 2 |",
    ]
    task = toy_manifest.get_task()
    assert labels_section(task).splitlines()[-2:] == ["| 0 | `absent` |  | no residue |",
                                                      "| 1 | `present` | R | residual tissue |"]
    assert "## Labels (schema v1, task `toy-card`)" in labels_section(task)
    assert "`fold` (0-2 in train, -1 elsewhere)" in format_section(task)
    front = render_card(toy_manifest, "# body\n")
    assert "          '0': absent\n          '1': present\n" in front
    assert front.endswith("---\n\n# body\n") and "- n<1K" in front


def test_dicom_card_is_rendered_from_the_manifest(toy_manifest):
    from thyroid_bench.data.card import dicom_card

    provenance = {
        "ingest": {"files_seen": 9, "ingested": 7, "rejected": 2,
                   "rejected_by_reason": {"no label row": 1, "duplicate image": 1}},
        "labels_csv": {"split_column": False},
        "split": {"external_centers": ["siteB"], "internal_fraction": 0.25, "seed": 3},
        "pseudonymisation": {"key_id": "k123", "hex_digits_kept": 24},
        "burned_in_allowed": False, "min_patients_per_reported_value": 5,
    }
    card = dicom_card(toy_manifest.model_copy(update={"provenance": provenance}),
                      rejected_file="rejected.csv")
    assert card.startswith("# toy-ds 0.1.0\n")
    assert "The\ntask is `toy-card` (Toy et al. 2030): absent, present.\n" in card
    assert ("centres siteB form `external`; the other centres' patients are split into `train` "
            "and `internal` (75%/25%) by patient, stratified by label, with seed 3.") in card
    assert "`train` rows carry a `fold` (0-2)\n" in card
    assert "first 24 hex digits" in card and "(key id `k123`)" in card
    assert "were rejected." in card and "at least\n5 patients share it" in card
    assert "9 files were seen: 7 ingested, 2 rejected.\n`rejected.csv` lists" in card
    # most frequent first, then by name
    assert ("| reason | files |\n| --- | --- |\n| duplicate image | 1 |\n"
            "| no label row | 1 |\n\n## How to load it\n") in card
    # then licence and citation: nothing that depends on where the card will be published
    assert 'thyroid_bench.load_dataset("toy-ds")' in card and "huggingface.co" not in card
    assert "Licence: `other`. The terms of use are those of the organisers" in card
    assert "and the task's source, Toy et al. 2030.\n" in card
    assert card.endswith(f"@misc{{toy-ds-0.1.0,\n  title = {{{{toy-ds 0.1.0}}: a thyroid-bench "
                         f"dataset of task toy-card}},\n  note  = {{thyroid-bench dataset format "
                         f"v1, fingerprint {'a' * 64}}}\n}}\n```\n")
    provenance["labels_csv"]["split_column"] = True
    provenance["ingest"]["rejected_by_reason"] = {}
    card = dicom_card(toy_manifest.model_copy(update={"provenance": provenance}),
                      rejected_file="rejected.csv")
    assert "Splits follow the labels CSV's split column (an official split)." in card
    assert "| (none) | 0 |\n\n## How to load it" in card
