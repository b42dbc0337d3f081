"""The harness: protocols, preprocessing, training loops, the run command, multi-process training."""
