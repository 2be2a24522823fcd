"""The never-break guard: failures inside the plugin are reported, never passed to the caller."""

from __future__ import annotations

import logging

from mlflow_ollama._config import logger, settings, strict_mode, warn

__all__ = ["logger", "redact_url", "report", "warn"]

# One warning per kind of failure per process; repeats go to debug so a bug on the hot path
# cannot flood a production log.
_reported: set[tuple[str, str]] = set()


def report(where: str, exc: BaseException) -> None:
    """Record that tracing failed at ``where``. The Ollama call itself is unaffected.

    Must be called from inside an ``except`` block. With ``MLFLOW_OLLAMA_STRICT=true`` it re-raises
    instead, so this project's tests see every internal failure.
    """
    if strict_mode():
        raise exc
    key = (where, type(exc).__name__)
    if key in _reported:
        logger.debug("mlflow-ollama failed to %s again: %r", where, exc)
        return
    _reported.add(key)
    logger.log(
        logging.DEBUG if settings.silent else logging.WARNING,
        "mlflow-ollama failed to %s; your Ollama call is unaffected. (%s: %s)",
        where,
        type(exc).__name__,
        exc,
        exc_info=exc,
    )


def redact_url(url: str) -> str:
    """``url`` without userinfo (``user:password@``), query and fragment, for messages and findings."""
    scheme, separator, rest = url.partition("://")
    if not separator:
        return url
    netloc, slash, path = rest.partition("/")
    path = path.split("?", 1)[0].split("#", 1)[0]
    return f"{scheme}://{netloc.rpartition('@')[2]}{slash}{path}"
