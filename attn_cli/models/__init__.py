"""One file per paper; plain nn.Modules registered in MODELS (no Lightning here)."""
