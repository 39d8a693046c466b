"""LightningModules per task family. Each module registers one :class:`~attn_cli.tasks.base.Task`."""
