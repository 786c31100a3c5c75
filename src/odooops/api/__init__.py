"""The HTTP API (FastAPI): the same managers as the CLI, behind tokens."""
