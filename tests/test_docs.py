"""The repository's copies of the tsb-residual 1.0.0 card and manifest are what `prepare` writes.

`prepare --task residual-tissue` writes the card from the manifest; the repository keeps both
(docs/tsb-residual/) so the card can be read without building. The manifest's fingerprint is
the pinned one, so the copy describes the official content; the card must equal the card
rendered from it by today's code.
"""

from __future__ import annotations

from pathlib import Path

from thyroid_bench.data.card import render_card, residual_card
from thyroid_bench.data.manifest import read_manifest
from thyroid_bench.data.official import pinned_fingerprint

DOCS = Path(__file__).resolve().parents[1] / "docs" / "tsb-residual"


def test_residual_card_copy_is_the_card_prepare_writes():
    manifest = read_manifest(DOCS)
    assert (manifest.name, manifest.version, manifest.task) == ("tsb-residual", "1.0.0", "residual-tissue")
    assert manifest.fingerprint == pinned_fingerprint("tsb-residual", "1.0.0")
    expected = {"train": (584, 221, 166, 165), "internal": (146, 55, 42, 41),
                "external": (182, 69, 52, 52)}
    for split, counts in expected.items():
        assert manifest.splits[split].class_counts == dict(zip(("absent", "low", "moderate", "high"), counts))
        assert manifest.splits[split].rows == sum(counts)
    assert (DOCS / "README.md").read_text() == render_card(manifest, residual_card(manifest))
