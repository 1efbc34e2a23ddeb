"""The `runbot` command's subcommands (the parser and dispatch are in bot/__main__.py)."""
