"""The FastAPI service and the ``loyalty`` command line."""

from serving.app import create_app
from serving.cli import app as cli_app
from serving.runtime.decision_writer import DecisionWriter

__all__ = [
    "DecisionWriter",
    "cli_app",
    "create_app",
]
