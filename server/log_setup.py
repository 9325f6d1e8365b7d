"""Logging for every process of the service (web workers, the hook worker), set up in one place.

No personal data at any level: the HTTP libraries' debug lines carry whole URLs (GHL query
strings hold customers' emails and phones; a hook's target URL is a secret), so their loggers
stay at WARNING whatever the level, unless ``http_debug`` asks for them.
"""

import logging

HTTP_LOGGERS = ("urllib3", "requests")


def configure_logging(level_name, fmt, http_debug=False):
    """The root logger at ``level_name`` (INFO when unknown) with ``fmt``; the HTTP libraries'
    loggers at WARNING unless ``http_debug`` (their lines then include URLs with personal data)."""
    level = getattr(logging, level_name, None)
    if not isinstance(level, int):
        level = logging.INFO
    logging.basicConfig(level=level, format=fmt)
    for name in HTTP_LOGGERS:
        logging.getLogger(name).setLevel(level if http_debug else max(level, logging.WARNING))
