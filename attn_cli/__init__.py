"""attn: prepare, train, evaluate and visualise the classic attention models (2014-2017)."""

from __future__ import annotations

__version__ = "0.1.0"
