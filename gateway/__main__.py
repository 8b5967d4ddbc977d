"""`python -m gateway ...` is the same as the `oshmon` command."""

from gateway.cli import main

main()
