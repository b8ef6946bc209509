"""A stand-in scoring script for the oracle corpus."""


def init() -> None:
    pass


def run(raw_data: str) -> str:
    return raw_data
