"""``python -m serving.cli``: the ``loyalty`` command without its installed script."""

from serving.cli.main import app

app()
