"""Slide-format result tables built from recorded results (``results/**/result.json``)."""
