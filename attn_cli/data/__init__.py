"""The data layer: LightningDataModules per modality (read prepared data, never download), and what the
preparation layer shares with them: vocabularies, the manifest check, text preprocessing and the
generators training draws from (docs/architecture.md)."""
