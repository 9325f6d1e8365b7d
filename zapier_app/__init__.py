"""The Zapier app: generated from the catalog (``definition``), written by ``python -m zapier_app``."""
