"""Webhook sink: JSON POST of the SPEC §2.2 event, signed with HMAC-SHA256.

Header `X-Oshmon-Signature: sha256=<hex>` where hex = HMAC-SHA256(secret, raw request body).
A receiver recomputes it over the bytes it got and compares with `hmac.compare_digest`.
Neither the URL (it may carry a token) nor the secret ever appears in an error or log message.
"""

from __future__ import annotations

import hashlib
import hmac

import httpx
import orjson

from alerts.sinks.base import Delivery
from rules.errors import SinkError

SIGNATURE_HEADER = "X-Oshmon-Signature"
#: Client errors worth retrying: request timeout, too many requests.
_RETRYABLE_4XX = frozenset({408, 425, 429})


def sign(secret: bytes, body: bytes) -> str:
    """Value of the signature header for `body`."""
    return "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()


def verify(secret: bytes, body: bytes, header: str) -> bool:
    """Receiver side: does `header` match `body` (constant-time comparison)?"""
    return hmac.compare_digest(sign(secret, body), header)


class WebhookSink:
    """POSTs each event to `url`. `send` raises `SinkError` (retryable unless a 4xx refusal)."""

    def __init__(
        self, name: str, url: str, secret: str | bytes | None = None, *, timeout_s: float = 5.0,
        client: httpx.AsyncClient | None = None,
    ) -> None:  # fmt: skip
        self.name = name
        self._url = url
        self._secret = secret.encode() if isinstance(secret, str) else secret
        self._client = client or httpx.AsyncClient(timeout=timeout_s, follow_redirects=False)
        self._own_client = client is None
        self._timeout = httpx.Timeout(timeout_s)

    def __repr__(self) -> str:
        return f"WebhookSink(name={self.name!r})"

    async def send(self, delivery: Delivery) -> None:
        ev = delivery.event
        body = orjson.dumps(ev.to_wire())
        headers = {
            "Content-Type": "application/json",
            "X-Oshmon-Event": str(ev.event),
            "X-Oshmon-Alert-Id": ev.alert_id,
        }
        if self._secret:
            headers[SIGNATURE_HEADER] = sign(self._secret, body)
        try:
            resp = await self._client.post(self._url, content=body, headers=headers, timeout=self._timeout)
        except httpx.TimeoutException:
            raise SinkError(f"webhook {self.name}: no answer within the timeout") from None
        except httpx.HTTPError as exc:
            raise SinkError(f"webhook {self.name}: {type(exc).__name__} (endpoint unreachable)") from None
        except (httpx.InvalidURL, ValueError, TypeError) as exc:
            raise SinkError(f"webhook {self.name}: {type(exc).__name__} (check the URL)", retryable=False) from None
        if resp.is_success:
            return
        retryable = resp.status_code >= 500 or resp.status_code in _RETRYABLE_4XX
        raise SinkError(f"webhook {self.name}: HTTP {resp.status_code}", retryable=retryable)

    async def aclose(self) -> None:
        if self._own_client:
            await self._client.aclose()
