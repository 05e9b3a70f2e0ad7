from radarcast.cli import app

app(prog_name="radarcast")
