from intervene_cli.main import app

app()
