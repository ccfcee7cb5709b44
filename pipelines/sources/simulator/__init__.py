"""The simulated bank: a world drawn from a seed, written as the history files a bank would have, with the
truth (latent states, true probabilities and effects) written apart."""

from pipelines.sources.simulator.config import DEFAULT_START, SimConfig, check_config, today_utc
from pipelines.sources.simulator.output import GENERATOR, check_output, is_simulator_output
from pipelines.sources.simulator.truth import churn_truth, output_root, truth_file
from pipelines.sources.simulator.writer import SimSummary, simulate

__all__ = [
    "DEFAULT_START",
    "GENERATOR",
    "SimConfig",
    "SimSummary",
    "check_config",
    "check_output",
    "churn_truth",
    "is_simulator_output",
    "output_root",
    "simulate",
    "today_utc",
    "truth_file",
]
