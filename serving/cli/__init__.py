"""The ``loyalty`` command line, a thin layer on top of everything else: each command parses its arguments,
calls one function of the packages below and prints the answer. Nothing outside ``serving.cli`` imports it
(``serving.cli_app`` aside, kept until its users import ``serving.cli.app``).
"""

from serving.cli.main import app
from serving.cli.output import cli_errors, configure_logging, logging_config

__all__ = ["app", "cli_errors", "configure_logging", "logging_config"]
