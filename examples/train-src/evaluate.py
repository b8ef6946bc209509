"""Score the test split with the trained centroids and log the accuracy to the job's run.

The metric goes through the MLflow REST call that ``mlflow.log_metric("accuracy", a)`` makes; with
mlflow in the job's environment, that one line does the same.
"""

import argparse
import csv
import json
import os
import time
import urllib.request
from pathlib import Path

parser = argparse.ArgumentParser()
parser.add_argument("--data", required=True)
parser.add_argument("--model", required=True)
args = parser.parse_args()

model = json.loads(Path(args.model, "centroids.json").read_text())
with open(Path(args.data) / "test.csv", newline="") as handle:
    rows = list(csv.DictReader(handle))


def predict(x):
    centroids = model["centroids"]
    return min(centroids, key=lambda s: sum((a - b) ** 2 for a, b in zip(x, centroids[s], strict=True)))


correct = sum(predict([float(r[f]) for f in model["features"]]) == r["species"] for r in rows)
accuracy = correct / len(rows)
print(f"accuracy {accuracy:.3f} on {len(rows)} test rows")
body = {"run_id": os.environ["MLFLOW_RUN_ID"], "key": "accuracy", "value": accuracy,
        "timestamp": int(time.time() * 1000), "step": 0}
request = urllib.request.Request(
    os.environ["MLFLOW_TRACKING_URI"] + "/api/2.0/mlflow/runs/log-metric", data=json.dumps(body).encode(),
    headers={"Content-Type": "application/json", "Authorization": f"Bearer {os.environ['MLFLOW_TRACKING_TOKEN']}"},
)
urllib.request.urlopen(request).read()
