from edgeav.cli import app

app()
