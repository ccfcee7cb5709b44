"""MLflow "model from code" entry point of ``loyalty-offer-uplift`` (see ``models.uplift_pyfunc``)."""

from mlflow.models import set_model

from models.uplift_pyfunc import UpliftModel

set_model(UpliftModel())
