"""Thin wrappers over the libraries users trust: sacrebleu and pycocoevalcap.

Top-1 accuracy and error are counted in the tasks, not through torchmetrics: docs/architecture.md
says why, and tests/test_metrics.py checks the recorded numbers against torchmetrics."""
