"""Importers (the ICBHI database, a folder of recordings), the synthetic dataset and the demo project."""
