"""LightningDataModules per modality: read prepared data, never download."""
