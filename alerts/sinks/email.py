"""E-mail sink: SMTP with STARTTLS and login (aiosmtplib); one plain-text mail per event.

The password is only handed to aiosmtplib; errors name the sink and the SMTP code, never the
password, the user name or the server's reply text.
"""

from __future__ import annotations

import ssl
from collections.abc import Sequence
from email.message import EmailMessage

import aiosmtplib
import orjson

from alerts.sinks.base import Delivery
from alerts.types import AlertEvent, rfc3339
from rules.errors import SinkError

SUBJECT_MAX = 150


def compose(event: AlertEvent, sender: str, recipients: Sequence[str]) -> EmailMessage:
    """The mail: subject with severity, place and message; body with the action and the JSON."""
    msg = EmailMessage()
    tag = f"[oshmon {event.severity.upper()} {event.event}]"
    subject = f"{tag} {event.site}/{event.zone}/{event.device}: {event.message}"
    msg["Subject"] = subject if len(subject) <= SUBJECT_MAX else subject[: SUBJECT_MAX - 3] + "..."
    msg["From"] = sender
    msg["To"] = ", ".join(recipients)
    lines = [
        event.message,
        "",
        f"What to do: {event.action}" if event.action else "",
        f"Where: site {event.site}, zone {event.zone}, device {event.device}"
        + (f", worn by {event.worker}" if event.worker else ""),
        f"When: {rfc3339(event.t_s)} (alert open since {rfc3339(event.since_s)})",
        f"Limit: {event.limit_source}" if event.limit_source else "",
        f"Alert id: {event.alert_id}  (acknowledge: oshmon ack {event.alert_id} --by NAME --note TEXT)",
        "",
        orjson.dumps(event.to_wire(), option=orjson.OPT_INDENT_2).decode(),
    ]
    msg.set_content("\n".join(line for line in lines if line is not None))
    return msg


class EmailSink:
    """Sends each event by e-mail. STARTTLS is required unless `starttls=False` (test rigs only)."""

    def __init__(
        self, name: str, host: str, port: int, sender: str, recipients: Sequence[str], *,
        username: str | None = None, password: str | None = None, starttls: bool = True,
        tls_context: ssl.SSLContext | None = None, timeout_s: float = 10.0,
    ) -> None:  # fmt: skip
        if not recipients:
            raise ValueError(f"e-mail sink {name}: no recipients")
        self.name = name
        self._host, self._port = host, port
        self._sender, self._recipients = sender, list(recipients)
        self._username, self._password = username, password
        self._starttls, self._tls = starttls, tls_context
        self._timeout = timeout_s

    def __repr__(self) -> str:
        return f"EmailSink(name={self.name!r})"

    async def send(self, delivery: Delivery) -> None:
        msg = compose(delivery.event, self._sender, self._recipients)
        try:
            await aiosmtplib.send(
                msg, hostname=self._host, port=self._port, username=self._username, password=self._password,
                start_tls=self._starttls, tls_context=self._tls, timeout=self._timeout,
            )  # fmt: skip
        except aiosmtplib.SMTPAuthenticationError as exc:
            raise SinkError(f"e-mail {self.name}: login refused (SMTP {exc.code})", retryable=False) from None
        except aiosmtplib.SMTPRecipientsRefused:
            raise SinkError(f"e-mail {self.name}: recipients refused", retryable=False) from None
        except aiosmtplib.SMTPResponseException as exc:
            raise SinkError(
                f"e-mail {self.name}: SMTP {exc.code}",
                retryable=400 <= exc.code < 500,  # 4xx: transient (RFC 5321)
            ) from None
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
            raise SinkError(f"e-mail {self.name}: {type(exc).__name__}") from None

    async def aclose(self) -> None:
        return None
