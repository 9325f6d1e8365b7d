"""Logging for every process of the service (web workers, the hook worker), set up in one place."""

import logging


def configure_logging(level_name, fmt):
    """The root logger at ``level_name`` (INFO when unknown) with ``fmt``."""
    logging.basicConfig(level=getattr(logging, level_name, logging.INFO), format=fmt)
