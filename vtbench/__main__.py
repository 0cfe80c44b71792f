"""The vtbench command line: ``python -m vtbench {train,eval,compare,ablate,bench} ...``."""
from __future__ import annotations

import importlib
import sys

COMMANDS = {
    "train": ("vtbench.train.cli", "train a method: --method NAME --data narrated-digits --out runs/NAME"),
    "eval": ("vtbench.experiments.evaluate", "evaluate a run: --run runs/NAME (writes eval.json)"),
    "compare": ("vtbench.experiments.compare", "train every method with several seeds and tabulate"),
    "ablate": ("vtbench.experiments.ablation", "retrain methods at each value of one config key: --key K --values ..."),
    "bench": ("vtbench.bench", "kernel benchmarks against the peers: bench kernels"),
}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] in {"-h", "--help"} or argv[0] not in COMMANDS:
        lines = [f"  {name:8s} {help_}" for name, (_, help_) in COMMANDS.items()]
        print("usage: python -m vtbench COMMAND [options]\n\ncommands:\n" + "\n".join(lines))
        if not argv:  # asked for nothing: the usage, and the status of a usage error
            return 2
        if argv[0] not in {"-h", "--help"}:
            print(f"\nunknown command {argv[0]!r}; valid: {', '.join(COMMANDS)}", file=sys.stderr)
            return 2
        return 0
    module = importlib.import_module(COMMANDS[argv[0]][0])
    return int(module.main(argv[1:]) or 0)


if __name__ == "__main__":
    sys.exit(main())
