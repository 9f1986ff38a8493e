from dunflow.cli import app

app(prog_name="dunflow")
