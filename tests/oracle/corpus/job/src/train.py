"""A stand-in training script: the oracle corpus only loads files, it never runs them."""

print("train")
