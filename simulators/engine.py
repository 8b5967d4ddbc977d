"""`simulate()`: the messages of a simulated mine, in event-time order, with no clock and no I/O.

Time is cut into chunks; within a chunk every device's readings are computed as numpy arrays
(baseline + incidents), turned into payloads, and all messages are sorted by event time. Each
(device, channel, chunk) draws its sensor noise from its own generator seeded by
`(seed, device index, channel, chunk)`, so the output depends only on the arguments.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence

import numpy as np

from simulators.baseline import ChannelModel, channel_model
from simulators.emitters import Emitter
from simulators.incidents import Incident
from simulators.layout import Device, MineSpec, Shape
from simulators.messages import SimMessage
from simulators.scenarios import Scenario
from simulators.status import status_messages

DEFAULT_PREFIX = "osh"  # SPEC §2: OSH_TOPIC_PREFIX default
_GOLDEN = 0.6180339887498949  # spreads devices' reporting phases evenly over an interval
_CHUNK_MIN_S = 3600.0
_CHUNK_TICKS = 240  # a chunk holds at least this many reporting intervals
_MAX_SERIES_VALUES = 10_000  # ~80 KiB of JSON, well inside SPEC's 256 KiB


def simulate(
    spec: MineSpec,
    scenario: Scenario,
    start_s: float,
    duration_s: float,
    interval_s: float = 5.0,
    seed: int = 0,
    *,
    prefix: str = DEFAULT_PREFIX,
    series_batch_s: float | None = None,
    chunk_s: float | None = None,
    gas_series_s: float | None = None,
) -> Iterator[SimMessage]:
    """Messages of `spec`'s devices from `start_s` for `duration_s` seconds, in event-time order.

    Gas, exhaust and DPM devices publish one reading every `interval_s`; dust and noise devices
    publish a series every `series_batch_s` (default `interval_s`, at least one sample period)
    holding one value per `spec.dust_sample_s` / `spec.noise_sample_s`. With `gas_series_s`, gas,
    exhaust and DPM devices too send one series per hazard every `gas_series_s` (one value per
    `interval_s`), as loggers uploading their memory do: fewer, larger messages, the same readings'
    times. Each device first
    publishes its retained `online` status at `start_s`. Deterministic for equal arguments.
    Time stamps are whole milliseconds: `start_s` is rounded up to one.
    """
    _check(start_s, duration_s, interval_s, series_batch_s, chunk_s)
    if gas_series_s is not None and not gas_series_s > 0:
        raise ValueError(f"gas_series_s must be > 0, got {gas_series_s}")
    start_s = math.ceil(start_s * 1000.0) / 1000.0
    devices = spec.devices()
    resolved = scenario.resolve(devices)
    end_s = start_s + duration_s
    emitters = [
        _emitter(d, spec, resolved.incidents, start_s, end_s, interval_s, (series_batch_s, gas_series_s), seed, prefix)
        for d in devices
    ]
    status = status_messages(emitters, resolved.incidents, start_s, end_s, seed, prefix)
    step = chunk_s or max(_CHUNK_MIN_S, _CHUNK_TICKS * interval_s, *(e.period_s for e in emitters))
    n_chunks = max(1, math.ceil(duration_s / step))
    for chunk in range(n_chunks):
        c0 = start_s + chunk * step
        c1 = end_s if chunk == n_chunks - 1 else start_s + (chunk + 1) * step  # same float as next c0
        yield from _chunk(emitters, status, c0, c1, chunk, first=chunk == 0)


def _check(
    start_s: float, duration_s: float, interval_s: float, series_batch_s: float | None, chunk_s: float | None
) -> None:
    if not math.isfinite(start_s) or not (math.isfinite(duration_s) and duration_s >= 0):
        raise ValueError("start_s must be finite and duration_s finite and >= 0")
    if not (math.isfinite(interval_s) and interval_s > 0):
        raise ValueError(f"interval_s must be > 0, got {interval_s}")
    if series_batch_s is not None and not series_batch_s > 0:
        raise ValueError(f"series_batch_s must be > 0, got {series_batch_s}")
    if chunk_s is not None and not chunk_s > 0:
        raise ValueError(f"chunk_s must be > 0, got {chunk_s}")


def _emitter(
    device: Device,
    spec: MineSpec,
    incidents: Sequence[Incident],
    start_s: float,
    end_s: float,
    interval_s: float,
    batch_s: tuple[float | None, float | None],
    seed: int,
    prefix: str,
) -> Emitter:
    """`batch_s`: (series_batch_s, gas_series_s) as given to `simulate`."""
    shape = device.spec.shape
    series_batch_s, gas_series_s = batch_s
    sample_s = interval_s
    period_s = interval_s
    as_series = shape in (Shape.SERIES, Shape.SERIES_T)
    if not as_series and gas_series_s is not None:
        n = math.ceil(max(gas_series_s, interval_s) / interval_s - 1e-9)
        if n > _MAX_SERIES_VALUES:
            raise ValueError(f"gas_series_s gives {n} values per message; at most {_MAX_SERIES_VALUES}")
        period_s, as_series = n * interval_s, n > 1
    elif as_series:
        sample_s = spec.dust_sample_s if device.hazards[0] == "respirable_dust" else spec.noise_sample_s
        n = math.ceil(max(series_batch_s or interval_s, sample_s) / sample_s - 1e-9)
        if n > _MAX_SERIES_VALUES:
            raise ValueError(f"series_batch_s gives {n} values per message; at most {_MAX_SERIES_VALUES}")
        period_s = n * sample_s
    touching = tuple(i for i in incidents if i.touches(device))
    spans = [span for i in touching if (span := i.silent_span(device)) is not None]
    silent = tuple((start_s + a, start_s + b) for a, b in spans)
    models = _models(device, seed)
    phase_s = ((device.index * _GOLDEN) % 1.0) * interval_s
    topic = device.topic(prefix, "data")
    return Emitter(
        device, models, touching, silent, start_s, end_s, period_s, sample_s, phase_s, seed, topic, as_series
    )


def _models(device: Device, seed: int) -> tuple[ChannelModel, ...]:
    out = []
    for c, ch in enumerate(device.spec.channels):
        rng = np.random.default_rng([seed, device.index, c, 0x5EED])
        hazard = "noise" if ch.hazard == "noise_peak" else ch.hazard  # peak is derived from LAeq
        out.append(channel_model(hazard, device.role, device.spec.personal, rng))
    return tuple(out)


def _chunk(
    emitters: Sequence[Emitter],
    status: Sequence[SimMessage],
    c0: float,
    c1: float,
    chunk: int,
    *,
    first: bool,
) -> Iterator[SimMessage]:
    messages = [m for m in status if c0 <= m.t_s < c1 or (first and m.t_s == c0)]
    times: list[float] = [m.t_s for m in messages]
    for em in emitters:
        msgs, ts = em.emit(c0, c1, chunk)
        messages.extend(msgs)
        times.extend(ts)
    order = np.argsort(np.asarray(times, np.float64), kind="stable")
    for i in order.tolist():
        yield messages[i]
