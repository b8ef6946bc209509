"""A stand-in scoring step for the oracle corpus."""

print("score")
