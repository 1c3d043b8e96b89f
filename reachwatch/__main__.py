"""`python -m reachwatch` is the `reachwatch` command."""

from .cli import main

main()
