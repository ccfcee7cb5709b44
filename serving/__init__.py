"""The FastAPI service (``serving.app``, ``serving.api``, ``serving.runtime``) and, on top of everything, the
``loyalty`` command line (``serving.cli``)."""

from serving.app import create_app
from serving.cli import app as cli_app
from serving.runtime.batcher import PostingBatcher
from serving.runtime.decision_writer import DecisionWriter

__all__ = [
    "DecisionWriter",
    "PostingBatcher",
    "cli_app",
    "create_app",
]
