"""One module per dataset: read official raw files (or download them) -> prepared files + manifest."""
