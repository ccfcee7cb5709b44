"""MLflow "model from code" entry point of ``loyalty-offer-uplift`` (``models.registry.uplift_pyfunc``)."""

from mlflow.models import set_model

from models.registry.uplift_pyfunc import UpliftModel

set_model(UpliftModel())
