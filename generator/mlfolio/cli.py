"""Placeholder: replaced by the generator CLI."""

import typer

app = typer.Typer()
