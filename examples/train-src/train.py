"""Train a decision tree on the iris CSV and save it with pickle."""

import argparse
import pickle
from pathlib import Path

import pandas as pd
from sklearn.tree import DecisionTreeClassifier

parser = argparse.ArgumentParser()
parser.add_argument("--data", required=True)
parser.add_argument("--max_depth", type=int, default=3)
parser.add_argument("--model_output", required=True)
args = parser.parse_args()

frame = pd.read_csv(args.data)
model = DecisionTreeClassifier(max_depth=args.max_depth).fit(frame.drop(columns="species"), frame["species"])
Path(args.model_output).mkdir(parents=True, exist_ok=True)
with open(Path(args.model_output) / "model.pkl", "wb") as handle:
    pickle.dump(model, handle)
