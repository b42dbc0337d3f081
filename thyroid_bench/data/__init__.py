"""Datasets in format v1: build, read, verify, describe and publish a dataset version.

:mod:`~thyroid_bench.data.format` writes a version atomically and resolves and loads one;
:mod:`~thyroid_bench.data.manifest` is its typed manifest (and the dataset reference every
result names); :mod:`~thyroid_bench.data.shards`, :mod:`~thyroid_bench.data.images`,
:mod:`~thyroid_bench.data.columns` and :mod:`~thyroid_bench.data.fingerprint` are the
parquet shards, the 16-bit PNGs, the columns and the content fingerprints;
:mod:`~thyroid_bench.data.verify` checks a folder; :mod:`~thyroid_bench.data.card` writes its
dataset card. Sources: :mod:`~thyroid_bench.data.synthetic` (the phantom cohort),
:mod:`~thyroid_bench.data.dicom` (an archive plus a labels CSV) and
:mod:`~thyroid_bench.data.hub` (a published version). The label column's classes are the
dataset's task's (:mod:`thyroid_bench.tasks`).
"""
