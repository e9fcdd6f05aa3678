"""``python -m nerlit <verb> ...``: the ``nerlit`` command."""

from nerlit.commands.cli import main

main()
