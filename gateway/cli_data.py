"""Commands for inspectors and committees: history, limits, reports, evidence, audit."""

from __future__ import annotations

import contextlib
import csv
import json
import shutil
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import orjson
import typer
from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TaskID, TextColumn

from gateway import cli_text
from gateway import cli_values as cv
from gateway.cli_opts import ConfigOpt
from gateway.config import Settings, SiteSettings, load_settings
from gateway.runtime import open_configured_store, profile_book, pseudonym_key
from gateway.timeparse import parse_cli_time, parse_month
from reports.history import PIPE_WIDTH, render
from rules.errors import ConfigError
from rules.profiles import describe_limits
from storage.base import HistoryQuery, RecordKind


class OutFormat(StrEnum):
    TABLE = "table"
    CSV = "csv"
    JSON = "json"


def history(
    kind: Annotated[RecordKind, typer.Option("--kind", "-k", help="What to list.")] = RecordKind.READINGS,
    site: Annotated[str | None, typer.Option(help="Site, e.g. kop-1.")] = None,
    zone: Annotated[str | None, typer.Option(help="Zone within the site.")] = None,
    device: Annotated[str | None, typer.Option(help="Device id.")] = None,
    worker: Annotated[str | None, typer.Option(help="Worker id (personal monitors).")] = None,
    hazard: Annotated[str | None, typer.Option(help="Hazard, e.g. co, ch4 (or methane), noise.")] = None,
    rule: Annotated[str | None, typer.Option(help="Alerts only: level, stel, twa, lex8h, dose ...")] = None,
    severity: Annotated[str | None, typer.Option(help="Alerts only: warning, alarm, critical ...")] = None,
    t_from: Annotated[str | None, typer.Option("--from", help="Start: YYYY-MM-DD or RFC 3339 (UTC).")] = None,
    t_to: Annotated[str | None, typer.Option("--to", help="End (exclusive): YYYY-MM-DD or RFC 3339.")] = None,
    fmt: Annotated[OutFormat, typer.Option("--format", "-f", help="Output format.")] = OutFormat.TABLE,
    limit: Annotated[int | None, typer.Option(help="At most this many rows (alerts: the newest).", min=1)] = None,
    wide: Annotated[bool, typer.Option("--wide", help="Table: every column, however wide.")] = False,
    config: ConfigOpt = None,
) -> None:
    """Exposure history for inspectors: readings, shift exposures or alerts (newest first), filtered."""
    cv.alerts_only(kind, rule=rule, severity=severity)
    q = HistoryQuery(
        kind=kind,
        zone=zone,
        device=device,
        worker=worker,
        hazard=cv.hazard(hazard, kind),
        rule=cv.rule(rule),
        severity=cv.severity(severity),
        t_from_s=parse_cli_time(t_from, "--from") if t_from else None,
        t_to_s=parse_cli_time(t_to, "--to") if t_to else None,
        limit=limit,
        newest_first=kind is RecordKind.ALERTS,
    )
    if q.t_from_s is not None and q.t_to_s is not None and q.t_to_s <= q.t_from_s:
        raise ConfigError("--to must be later than --from")
    settings = load_settings(config)
    store = open_configured_store(settings, read_only=True)
    try:
        q = replace(q, site=cv.site(site, store, settings.sites))
        render(store.query(q), kind, fmt.value, sys.stdout, width=None if wide else terminal_width())
    finally:
        store.close()


def terminal_width() -> int:
    """The terminal's width (`COLUMNS` first); a pipe or file without `COLUMNS` gets PIPE_WIDTH."""
    return shutil.get_terminal_size((PIPE_WIDTH, 24)).columns


def limits(
    profile: Annotated[str | None, typer.Option(help="Profile name (default: OSH_PROFILE).")] = None,
    fmt: Annotated[OutFormat, typer.Option("--format", "-f")] = OutFormat.TABLE,
    config: ConfigOpt = None,
) -> None:
    """Print every limit of a profile with its value, source and the action to take."""
    settings = load_settings(config)
    book = profile_book(settings)
    name = profile or settings.profile
    if name not in book.names():
        raise ConfigError(f"limit profile {name!r} not found; available: {', '.join(sorted(book.names()))}")
    rows = describe_limits(book, name)
    if fmt is OutFormat.JSON:
        sys.stdout.write(json.dumps(rows, ensure_ascii=False, indent=1) + "\n")
    elif fmt is OutFormat.CSV:
        writer = csv.DictWriter(sys.stdout, fieldnames=list(rows[0]) if rows else [])
        writer.writeheader()
        writer.writerows(rows)
    else:
        sys.stdout.write(cli_text.limit_blocks(name, rows, cli_text.width()))


def shift_hours_of(settings: Settings) -> dict[str, float]:
    """Configured shift length per site ("" for sites without their own settings)."""
    return {"": SiteSettings().shift_hours, **{name: s.shift_hours for name, s in settings.sites.items()}}


report_app = typer.Typer(help="Reports for social-dialogue committees.", no_args_is_help=True)
export_app = typer.Typer(help="Evidence bundles for labour inspectors.", no_args_is_help=True)
audit_app = typer.Typer(help="Check the tamper-evident alert log.", no_args_is_help=True)


@report_app.command("monthly")
def report_monthly(
    month: Annotated[str, typer.Option(help="Month, YYYY-MM.")],
    out: Annotated[Path, typer.Option(help="Directory to write report.html, summary.json, CSVs.")],
    site: Annotated[str | None, typer.Option(help="One site (default: all).")] = None,
    lang: Annotated[str, typer.Option(help="Language: en, sr (Latin) or ru.")] = "en",
    force: Annotated[bool, typer.Option(help="Write into a non-empty --out, replacing the report's files.")] = False,
    config: ConfigOpt = None,
) -> None:
    """The monthly committee summary: exposures against limits, EN 689, alerts, data quality."""
    from reports.monthly import NoReportData, build_monthly

    parse_month(month)
    if lang not in ("en", "sr", "ru"):
        raise ConfigError(f"--lang {lang!r}: use en, sr or ru")
    cv.new_folder(out, "--out", force=force, what="a monthly report")
    settings = load_settings(config)
    book = profile_book(settings)
    in_use = sorted({settings.profile} | {s.profile for s in settings.sites.values() if s.profile})
    rows = [{"profile": name, **row} for name in in_use for row in describe_limits(book, name)]
    store = open_configured_store(settings, read_only=True)
    try:
        cv.site(site, store, settings.sites)
        path = build_monthly(
            store,
            month,
            site,
            lang,
            out,
            limits_profile_rows=rows,
            pseudonym_key=pseudonym_key(settings).get_secret_value().encode(),
            now_s=time.time(),
            loq=settings.report_loq,
            force=force,
            shift_hours=shift_hours_of(settings),
        )
    except NoReportData as exc:  # a misspelt site or an empty store: no reassuring empty report
        typer.echo(f"oshmon: error: {exc}", err=True)
        raise typer.Exit(1) from None
    finally:
        store.close()
    typer.echo(f"report written: {path}")


@export_app.command("evidence")
def export_evidence(
    site: Annotated[str, typer.Option(help="Site to export.")],
    t_from: Annotated[str, typer.Option("--from", help="Start: YYYY-MM-DD or RFC 3339.")],
    t_to: Annotated[str, typer.Option("--to", help="End (exclusive): YYYY-MM-DD or RFC 3339.")],
    out: Annotated[Path, typer.Option(help="Directory for the bundle.")],
    config: ConfigOpt = None,
) -> None:
    """Readings, exposures, alerts with acknowledgements, limits used, and a SHA-256 manifest."""
    from reports.evidence import bundle_digest
    from reports.evidence import export_evidence as run_export

    start, end = parse_cli_time(t_from, "--from"), parse_cli_time(t_to, "--to")
    if end <= start:
        raise ConfigError("--to must be later than --from")
    cv.new_folder(out, "--out", what="an evidence bundle")
    settings = load_settings(config)
    store = open_configured_store(settings, read_only=True)
    try:
        cv.site(site, store, settings.sites)
        site_cfg = settings.sites.get(site)
        with _export_progress() as progress:
            path = run_export(store, site, start, end, out, book=profile_book(settings), progress=progress,
                              site_profile=(site_cfg.profile if site_cfg else None) or settings.profile)  # fmt: skip
    finally:
        store.close()
    for name, info in orjson.loads((out / "bundle.json").read_bytes()).get("profiles", {}).items():
        if not info.get("loaded"):
            typer.echo(f"warning: records name profile {name!r}, which is not loaded here: its limits are "
                       "not in the bundle (add its folder to OSH_PROFILE_DIRS and export again)", err=True)  # fmt: skip
    typer.echo(f"evidence bundle written: {path}")
    typer.echo(f"seal (SHA-256 of the manifest; keep it apart from the bundle): {bundle_digest(out)}")


@contextlib.contextmanager
def _export_progress() -> Iterator[Callable[[str, int], None]]:
    """Rows written so far, per file, on stderr (a long export must show it is working)."""
    with Progress(SpinnerColumn(), TextColumn("{task.description}"), console=Console(stderr=True),
                  transient=True) as bar:  # fmt: skip
        tasks: dict[str, TaskID] = {}

        def update(name: str, rows: int) -> None:
            if name not in tasks:
                tasks[name] = bar.add_task(name)
            bar.update(tasks[name], description=f"{name}: {rows:,} rows")

        yield update


@export_app.command("verify")
def export_verify(
    bundle: Annotated[Path, typer.Argument(help="Bundle directory.")],
    digest: Annotated[str | None, typer.Option(help="The seal (SHA-256) printed at export time.")] = None,
    no_seal: Annotated[
        bool, typer.Option("--no-seal", help="Check the files against the manifest only (the seal is not known).")
    ] = False,
) -> None:
    """Check an evidence bundle: the manifest against its seal, every file against the manifest."""
    from reports.evidence import verify_bundle

    if not bundle.is_dir():
        raise ConfigError(f"{bundle} is not a directory")
    if digest is None and not no_seal:
        raise ConfigError("seal not checked: give --digest SEAL (printed at export), or --no-seal to check the "
                          "files against the manifest only (which could itself have been rebuilt)")  # fmt: skip
    if digest is not None and no_seal:
        raise ConfigError("--digest and --no-seal contradict each other: give one")
    problems = verify_bundle(bundle, expected_digest=digest)
    seal = "seal checked" if digest is not None else "seal NOT checked (--no-seal)"
    if problems:
        typer.echo(f"{seal}: bundle {bundle} FAILED: {len(problems)} problem(s)", err=True)
        for p in problems:
            typer.echo(f"FAIL {p}", err=True)
        raise typer.Exit(1)
    if digest is not None:
        typer.echo(f"{seal}: bundle {bundle} verified: the manifest matches the seal and every file the manifest")
    else:
        typer.echo(f"{seal}: every file of {bundle} matches its manifest; the manifest itself is unchecked")


@audit_app.command("verify")
def audit_verify(
    head: Annotated[
        str | None, typer.Option("--head", help="An anchored head SEQ:HASH (retained on P/gateway/audit/CHAIN).")
    ] = None,
    chain: Annotated[
        str | None, typer.Option("--chain", help="Whose chain --head anchors (gateway client id).")
    ] = None,
    from_bundle: Annotated[
        Path | None, typer.Option("--from-bundle", help="Take the anchored heads from an evidence bundle.")
    ] = None,
    config: ConfigOpt = None,
) -> None:
    """Verify the hash chain over every stored alert event (30 CFR 75.351(o)), against anchored heads."""
    from alerts.audit import Anchor
    from gateway.runtime import verify_audit_chain

    heads: dict[str | None, Anchor] = {}
    if from_bundle is not None:
        from reports.evidence import bundle_heads

        heads.update(bundle_heads(from_bundle))
        if not heads:
            raise ConfigError(f"{from_bundle}: bundle.json names no audit chain head to check against")
    if head is not None:
        try:
            heads[chain] = Anchor.parse(head)
        except ValueError as exc:
            raise ConfigError(f"--head: {exc}") from None
    elif chain is not None:
        raise ConfigError("--chain names the chain of --head: give --head SEQ:HASH too")
    ok, message = verify_audit_chain(load_settings(config), heads)
    typer.echo(message, err=not ok)
    if not ok:
        raise typer.Exit(1)
