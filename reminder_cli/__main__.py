"""`python -m reminder_cli` is the same program as the `reminder` command."""

from reminder_cli.cli import main

main()
