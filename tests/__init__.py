"""The test suite as a regular package: a stray top-level ``tests`` package installed by a dependency (the
hershey-fonts 2.1.0 wheel ships one) would otherwise shadow this folder and break ``from tests.conftest import``."""
