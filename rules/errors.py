"""The small error hierarchy of oshmon; foreign exceptions are translated at one seam each."""

from __future__ import annotations


class OshError(Exception):
    """Base of every error oshmon raises on purpose; its message is shown to people as is."""


class ConfigError(OshError):
    """Bad configuration or limit profile; raised at start-up, naming the entry and field."""


class PayloadError(OshError):
    """A message from the wire that cannot be accepted; the text is the dead-letter reason."""


class StoreError(OshError):
    """A store could not do what was asked. `retryable` tells the caller whether to try again."""

    def __init__(self, message: str, *, retryable: bool = True) -> None:
        super().__init__(message)
        self.retryable = retryable


class SinkError(OshError):
    """An alert sink failed to deliver. `retryable` tells the dispatcher whether to try again."""

    def __init__(self, message: str, *, retryable: bool = True) -> None:
        super().__init__(message)
        self.retryable = retryable
