"""MLflow "model from code" entry point: logged with each model so loading it unpickles nothing.

MLflow copies this file into the model and executes it on ``mlflow.pyfunc.load_model``; it only names the
wrapper class, whose state comes from the logged ``booster.txt`` and ``scorer.json``.
"""

from mlflow.models import set_model

from models.registry.pyfunc import ScoringModel

set_model(ScoringModel())
