"""The synthetic reference cohort: the phantom generator and ``prepare``."""
