"""Thin wrappers over the libraries users trust: sacrebleu, pycocoevalcap, torchmetrics."""
