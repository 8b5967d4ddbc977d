"""HTTP to InfluxDB (httpx, sync): retries, gzip, partial writes, streamed InfluxQL results.

Error policy (tech-notes §7): timeouts, connection errors, 5xx and 429 are retried with capped,
fully jittered exponential backoff, then raised as a retryable `StoreError` (the spool takes
over). 400 is never retried as such: InfluxDB stored the valid lines of the request and dropped
the others ("partial write"), but does not always say which (a field type conflict only reports
`dropped=N`). So the rejected lines are found by re-sending halves of the request; rewriting a
stored point is idempotent (same series + time overwrite), so the accepted lines stay as they
are. Secrets never appear in messages: credentials travel in headers, URLs are shown without
user info.
"""

from __future__ import annotations

import gzip
import random
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import orjson

from rules.errors import StoreError
from storage.base import Rejected

#: Requests spent at most on finding the rejected lines of one failed chunk (bisection).
ATTRIBUTION_BUDGET = 256
#: Bodies smaller than this are sent as they are (gzip would not pay for itself).
GZIP_MIN_BYTES = 4096
_RETRY_STATUS = frozenset({429, 500, 502, 503, 504})


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Capped exponential backoff with full jitter: sleep U(0, min(cap, base * 2**n))."""

    attempts: int = 4
    base_s: float = 0.2
    cap_s: float = 5.0

    def delay(self, attempt: int, rng: random.Random) -> float:
        return rng.uniform(0.0, min(self.cap_s, self.base_s * 2.0**attempt))


class InfluxHttp:
    """One keep-alive httpx client for one InfluxDB server."""

    def __init__(
        self,
        client: httpx.Client,
        *,
        display_url: str,
        gzip_bodies: bool,
        retry: RetryPolicy,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.client = client
        self.display_url = display_url
        self.gzip_bodies = gzip_bodies
        self.retry = retry
        self._sleep = sleep
        self._rng = random.Random()

    def request(self, method: str, path: str, **kw: Any) -> httpx.Response:
        """Send with retries; any final status other than 5xx/429 is returned to the caller."""
        return self._with_retries(lambda: self.client.request(method, path, **kw), path)

    def _with_retries(self, send: Callable[[], httpx.Response], path: str) -> httpx.Response:
        problem = ""
        for attempt in range(self.retry.attempts):
            if attempt:
                self._sleep(self.retry.delay(attempt, self._rng))
            try:
                response = send()
            except httpx.TimeoutException as e:
                problem = f"timed out ({type(e).__name__})"
                continue
            except httpx.TransportError as e:
                problem = f"unreachable ({type(e).__name__}: {e})"
                continue
            if response.status_code not in _RETRY_STATUS:
                return response
            problem = f"HTTP {response.status_code}: {error_text(response)}"
            response.close()
        raise StoreError(
            f"InfluxDB {self.display_url}{path} {problem} after {self.retry.attempts} attempts",
            retryable=True,
        )

    def write(self, path: str, params: dict[str, str], lines: list[str]) -> list[Rejected]:
        """Post lines; returns the ones InfluxDB refused for good, with its reason."""
        response = self._post_lines(path, params, lines)
        if response.status_code == 400:
            return self._attribute(path, params, lines, error_text(response), [ATTRIBUTION_BUDGET])
        return []

    def _post_lines(self, path: str, params: dict[str, str], lines: list[str]) -> httpx.Response:
        body = "\n".join(lines).encode()
        headers = {"Content-Type": "text/plain; charset=utf-8"}
        if self.gzip_bodies and len(body) >= GZIP_MIN_BYTES:
            body = gzip.compress(body, compresslevel=1)
            headers["Content-Encoding"] = "gzip"
        response = self.request("POST", path, params=params, content=body, headers=headers)
        if response.status_code in (200, 204, 400):
            return response
        if response.status_code == 413 and len(lines) > 1:  # too large: halve it
            half = len(lines) // 2
            first = self._post_lines(path, params, lines[:half])
            second = self._post_lines(path, params, lines[half:])
            return first if first.status_code == 400 else second
        raise status_error(response, f"{self.display_url}{path}")

    def _attribute(
        self, path: str, params: dict[str, str], lines: list[str], reason: str, budget: list[int]
    ) -> list[Rejected]:
        """Which of `lines` (a request answered 400 with `reason`) were refused, by bisection."""
        if len(lines) == 1 or budget[0] <= 0:
            return [Rejected(line, reason) for line in lines]
        half = len(lines) // 2
        rejected = []
        for part in (lines[:half], lines[half:]):
            budget[0] -= 1
            response = self._post_lines(path, params, part)
            if response.status_code == 400:
                rejected += self._attribute(path, params, part, error_text(response), budget)
        return rejected

    def stream(self, params: dict[str, str]) -> Iterator[dict[str, Any]]:
        """The JSON objects of a chunked `/query` response, as they arrive."""
        request = self.client.build_request("GET", "/query", params=params)
        response = self._with_retries(lambda: self.client.send(request, stream=True), "/query")
        try:
            if response.status_code != 200:
                response.read()
                raise status_error(response, f"{self.display_url}/query")
            yield from _json_lines(response.iter_bytes())
        except httpx.HTTPError as e:
            raise StoreError(f"InfluxDB {self.display_url}/query failed: {type(e).__name__}") from e
        finally:
            response.close()


def _json_lines(parts: Iterator[bytes]) -> Iterator[dict[str, Any]]:
    """Objects of a newline-separated JSON stream (split on b"\\n" only: a JSON text never
    holds a raw newline, while its strings may hold other line breaks such as U+0085)."""
    buffer = bytearray()
    for part in parts:
        buffer += part
        if b"\n" not in part:
            continue
        *lines, rest = bytes(buffer).split(b"\n")
        buffer = bytearray(rest)
        for line in lines:
            if line.strip():
                yield orjson.loads(line)
    if buffer.strip():
        yield orjson.loads(bytes(buffer))


def error_text(response: httpx.Response) -> str:
    """The server's own words: the `error` (v1) or `message` (v2) of a JSON body, or the text."""
    try:
        response.read()
        body = orjson.loads(response.content)
    except (orjson.JSONDecodeError, httpx.HTTPError):
        return response.text[:500].strip() or response.reason_phrase
    if isinstance(body, dict):
        return str(body.get("error") or body.get("message") or body)[:2000]
    return str(body)[:2000]


class DatabaseMissing(StoreError):
    """HTTP 404 "database/bucket not found": set the store up again, then resend."""


def status_error(response: httpx.Response, where: str) -> StoreError:
    """A final non-success status as a `StoreError` (auth and bad requests are not retryable)."""
    status = response.status_code
    if status == 404 and "not found" in error_text(response):
        return DatabaseMissing(f"InfluxDB {where}: {error_text(response)}", retryable=True)
    if status in (401, 403):
        return StoreError(
            f"InfluxDB {where} refused the credentials (HTTP {status}): check OSH_INFLUX_TOKEN or the user/password",
            retryable=False,
        )
    return StoreError(f"InfluxDB {where}: HTTP {status}: {error_text(response)}", retryable=status >= 500)
