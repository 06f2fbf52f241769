"""`intervene docs generate|check`: the parts of docs/ drawn from the code (the playbooks guide
from playbooks/catalog.py, the configuration reference from models/settings.py)."""

from pathlib import Path
from typing import Annotated

import typer

from intervene_cli.docgen import files

app = typer.Typer(
    help="The operator guides in docs/ (parts generated from the code).", no_args_is_help=True
)

DocsDir = Annotated[
    Path | None,
    typer.Option(
        "--docs-dir", help="The docs directory (default: docs/ of this checkout).", file_okay=False
    ),
]


@app.command("generate")
def generate(docs_dir: DocsDir = None) -> None:
    """Rewrite the generated files (and only the generated part of hand-written ones)."""
    try:
        changed = files.write(docs_dir or files.DOCS_DIR)
    except files.DocsError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from None
    for path in changed:
        typer.echo(f"wrote {path}")
    if not changed:
        typer.echo("docs already up to date")


@app.command("check")
def check(docs_dir: DocsDir = None) -> None:
    """Exit 1, naming each stale file, when docs/ differs from what `generate` writes."""
    problems = files.stale(docs_dir or files.DOCS_DIR)
    if problems:
        typer.echo(files.check_message(problems), err=True)
        raise typer.Exit(1)
    typer.echo("generated docs are up to date")
