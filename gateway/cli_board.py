"""`oshmon board` (the control-room web board) and `oshmon board user add|remove|list`."""

from __future__ import annotations

import asyncio
import getpass
import sys
from typing import Annotated

import typer

from gateway.cli_opts import ConfigOpt
from gateway.config import load_settings
from rules.errors import ConfigError

board_app = typer.Typer(
    help="The control-room board: live alarms, sensors and exposure in a browser, with signed-in acknowledgement.",
    invoke_without_command=True,
    no_args_is_help=False,
)
user_app = typer.Typer(help="Board users (argon2id password hashes in OSH_BOARD_USERS).", no_args_is_help=True)
board_app.add_typer(user_app, name="user")


@board_app.callback()
def board(ctx: typer.Context, config: ConfigOpt = None) -> None:
    """Start the board on OSH_BOARD_LISTEN (default 127.0.0.1:8080); stops cleanly on SIGTERM."""
    if ctx.invoked_subcommand is not None:
        return
    from board.service import run_board
    from gateway.cli_ops import _logging

    settings = load_settings(config)
    _logging(settings.log_level)
    asyncio.run(run_board(settings))


def _password(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    if not sys.stdin.isatty():
        raise ConfigError("no terminal to ask for the password: pipe it in with --password-stdin")
    first = getpass.getpass("password: ")
    if getpass.getpass("again: ") != first:
        raise ConfigError("the two passwords differ; nothing changed")
    return first


@user_app.command("add")
def user_add(
    name: Annotated[str, typer.Argument(help="The name shown on acknowledgements, e.g. 'J. Petrović'.")],
    role: Annotated[str, typer.Option("--role", help="officer (acknowledges) or viewer (reads only).")] = "officer",
    password_stdin: Annotated[bool, typer.Option("--password-stdin", help="Read the password from stdin.")] = False,
    config: ConfigOpt = None,
) -> None:
    """Add a board user, or set a new password / role for an existing one."""
    from board.service import users_path
    from board.users import Role, UsersFile

    if role not in {str(r) for r in Role}:
        raise ConfigError(f"--role {role!r}: expected officer or viewer")
    users = UsersFile(users_path(load_settings(config)))
    new = users.add(name, _password(password_stdin), Role(role))
    typer.echo(f"{'added' if new else 'updated'} {role} {name!r} in {users.path}")


@user_app.command("remove")
def user_remove(name: Annotated[str, typer.Argument()], config: ConfigOpt = None) -> None:
    """Remove a board user (their open sessions end at the next request that needs a role)."""
    from board.service import users_path
    from board.users import UsersFile

    users = UsersFile(users_path(load_settings(config)))
    if not users.remove(name):
        raise ConfigError(f"no board user {name!r} in {users.path}")
    typer.echo(f"removed {name!r}")


@user_app.command("list")
def user_list(config: ConfigOpt = None) -> None:
    """The board's users and their roles."""
    from board.service import users_path
    from board.users import UsersFile

    users = UsersFile(users_path(load_settings(config)))
    for name, role in sorted(users.names().items()):
        typer.echo(f"{role:8} {name}")
