"""Headless matplotlib figures written as PNG: heatmaps, overlays, grids, sequences."""
