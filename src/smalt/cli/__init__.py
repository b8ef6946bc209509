"""The Typer CLI. Heavy modules are imported inside the commands that need them."""
