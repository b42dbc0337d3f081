"""DICOM ingestion: the labels CSV, de-identification and ``prepare --source dicom``."""
