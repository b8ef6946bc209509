"""Azure ML's scoring contract: init() once, run(raw_data) per request."""

import json
import os

model = {}


def init():
    # AZUREML_MODEL_DIR holds the registered model's folder under its own name ("model").
    with open(os.path.join(os.environ["AZUREML_MODEL_DIR"], "model", "centroids.json")) as handle:
        model.update(json.load(handle))


def run(raw_data):
    rows = json.loads(raw_data)["data"]
    centroids = model["centroids"]
    def distance(row, species):
        return sum((a - b) ** 2 for a, b in zip(row, centroids[species], strict=True))

    return [min(centroids, key=lambda species: distance(row, species)) for row in rows]
