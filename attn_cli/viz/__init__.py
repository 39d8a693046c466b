"""Headless matplotlib figures written as PNG: heatmaps, overlays, grids, sequences.

:mod:`~attn_cli.viz.core` holds the drawing primitives; one module per family (``nmt``, ``caption``,
``vision``, ``memory``, ``reader``) draws that family's figures from a model and a batch of plain
tensors or rows, never from a LightningModule or a datamodule, so that the tasks' ``visualize`` and
``attn caption`` / ``attn classify`` draw the same pictures. The backend is chosen here, before any
of them imports pyplot, so that no figure ever needs a display. The tasks import these modules only
when asked to draw: training never loads matplotlib.
"""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
