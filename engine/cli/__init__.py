"""The `orderbank` command: one Typer app (`app.py`), a module per command group."""
