"""The fluxworld command line (being built)."""


def main() -> None:
    raise SystemExit("fluxworld: not built yet")
