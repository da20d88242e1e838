"""`python -m orderbank.engine.cli`: the `orderbank` command without its console script."""

from orderbank.engine.cli.app import main

main()
