"""The `oshmon` command line (SPEC §5). Every command: --help, one-line errors, exit codes.

Exit codes: 0 success, 1 the command ran but found a problem (e.g. a failed verification) or a
store or broker it needs is missing or unreachable, 2 bad input or configuration (one line on
stderr, never a traceback), 3 a bug (with the traceback a developer needs).
"""

from __future__ import annotations

import sys
import traceback

import typer

from gateway import cli_ack, cli_board, cli_data, cli_ops, cli_sim
from gateway.demo import demo_cmd
from rules.errors import OshError, StoreError
from rules.text import escape_log_messages

app = typer.Typer(
    name="oshmon",
    help="Occupational safety and health monitoring for mines: MQTT sensors in, exposure rules, "
    "alerts, InfluxDB/SQLite records, committee reports.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)

app.command("run", help="Run the gateway service (MQTT → rules → alerts → storage).")(cli_ops.run)
app.command("demo", help="Run the whole system on one machine with embedded defaults.")(demo_cmd)
app.command("simulate", help="Publish simulated mine sensors to an MQTT broker.")(cli_sim.simulate_cmd)
app.command("backfill", help="Fill the store with simulated history (no broker).")(cli_sim.backfill_cmd)
app.command("ack", help="Acknowledge an alert (who, and what was done).")(cli_ack.ack)
app.command("status", help="Show the gateway's store, spool and open alerts.")(cli_ops.status)
app.command("history", help="Readings, exposures or alerts as a table, CSV or JSON.")(cli_data.history)
app.command("limits", help="The active exposure limits with their legal sources.")(cli_data.limits)
app.add_typer(cli_data.report_app, name="report")
app.add_typer(cli_data.export_app, name="export")
app.add_typer(cli_data.audit_app, name="audit")
app.add_typer(cli_board.board_app, name="board")


def main() -> None:
    """Console entry point: translate our errors to one line and the exit codes above."""
    escape_log_messages()  # untrusted ids, topics and ack notes never forge a log line (rules/text.py)
    try:
        try:
            rc = app(standalone_mode=False)  # returns the exit code of typer.Exit in this mode
        except BaseExceptionGroup as group:  # a task of the service failed: show the cause itself
            raise _first_cause(group) from None
        sys.exit(rc if isinstance(rc, int) else 0)
    except (StoreError, ConnectionError) as exc:  # a store or broker missing or unreachable
        print(f"oshmon: error: {exc}", file=sys.stderr)
        sys.exit(1)
    except OshError as exc:
        print(f"oshmon: error: {exc}", file=sys.stderr)
        sys.exit(2)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except typer.Abort:
        print("oshmon: aborted", file=sys.stderr)
        sys.exit(130)
    except KeyboardInterrupt:
        sys.exit(130)
    except Exception as exc:  # usage errors and anything unforeseen: one line, no traceback
        fmt = getattr(exc, "format_message", None)
        if fmt is not None:  # typer/click usage errors carry their own message and exit code
            print(f"oshmon: error: {fmt()}", file=sys.stderr)
            sys.exit(int(getattr(exc, "exit_code", 2)) or 2)
        print(f"oshmon: internal error ({type(exc).__name__}): {exc}", file=sys.stderr)
        traceback.print_exception(exc, file=sys.stderr)  # a bug: keep what a developer needs
        sys.exit(3)


def _first_cause(group: BaseExceptionGroup[BaseException]) -> BaseException:
    exc: BaseException = group
    while isinstance(exc, BaseExceptionGroup):
        exc = exc.exceptions[0]
    return exc
