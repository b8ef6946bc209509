"""One MLflow client session against MLFLOW_TRACKING_URI, written for mlflow 2.x and 3.x alike.

Run by tests/integration/test_mlflow_client.py under each client version; prints what it saw as JSON.
"""

import json
import sys
import tempfile
import time
from pathlib import Path

import mlflow
import numpy as np
from mlflow import MlflowClient
from mlflow.entities import Metric, Param, RunTag
from sklearn.linear_model import LogisticRegression

model_name = sys.argv[1]
client = MlflowClient()
out: dict[str, object] = {"version": mlflow.__version__}
experiment = mlflow.set_experiment("client-scenario")
X = np.array([[0.0], [1.0], [2.0], [3.0]])
y = np.array([0, 0, 1, 1])

with mlflow.start_run(run_name="train") as run:
    run_id = run.info.run_id
    mlflow.log_param("lr", "0.1")
    mlflow.log_metric("acc", 0.5, step=0)
    mlflow.log_metric("acc", 0.9, step=1)
    now = int(time.time() * 1000)
    client.log_batch(
        run_id,
        metrics=[Metric("loss", 1.0 / (i + 1), now + i, i) for i in range(1500)],
        params=[Param("bs", "32")],
        tags=[RunTag("team", "vision")],
    )
    notes = Path(tempfile.mkdtemp()) / "notes.txt"
    notes.write_text("first model")
    mlflow.log_artifact(str(notes))
    mlflow.log_dict({"a": 1}, "config/settings.json")
    model = LogisticRegression().fit(X, y)
    if mlflow.__version__.startswith("2."):
        mlflow.sklearn.log_model(model, "model", registered_model_name=model_name)
    else:
        mlflow.sklearn.log_model(model, name="model", registered_model_name=model_name)

with mlflow.start_run(run_name="other"):
    mlflow.log_param("lr", "0.5")
    mlflow.log_metric("acc", 0.3)

got = client.get_run(run_id)
out["run"] = {
    "status": got.info.status,
    "name": got.info.run_name,
    "metrics": got.data.metrics,
    "params": got.data.params,
    "team": got.data.tags.get("team"),
}
out["history"] = [[m.step, m.value] for m in client.get_metric_history(run_id, "acc")]
out["loss_points"] = len(client.get_metric_history(run_id, "loss"))
found = mlflow.search_runs(
    experiment_ids=[experiment.experiment_id], filter_string="metrics.acc > 0.5 and params.lr = '0.1'",
    output_format="list",
)
out["found"] = [r.info.run_name for r in found]
ordered = client.search_runs([experiment.experiment_id], order_by=["metrics.acc DESC"])
out["ordered"] = [r.info.run_name for r in ordered]
out["artifacts"] = sorted(f.path for f in client.list_artifacts(run_id))
out["notes"] = Path(mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path="notes.txt")).read_text()
out["predict"] = mlflow.pyfunc.load_model(f"models:/{model_name}/1").predict(X).tolist()
client.set_registered_model_alias(model_name, "champion", "1")
out["alias_version"] = client.get_model_version_by_alias(model_name, "champion").version
out["alias_predict"] = mlflow.pyfunc.load_model(f"models:/{model_name}@champion").predict(X).tolist()
out["model_run"] = client.get_model_version(model_name, "1").run_id == run_id
print("RESULT " + json.dumps(out))
