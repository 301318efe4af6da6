"""Command-line start benchmark: how long `roster --help` and `roster users list --json` (a
directory of one user) take, next to the floor any Python program with the same libraries pays.

    .venv/bin/python bench/cli_bench.py [--runs N]

The floor is `python -c "import typer, rich, sqlalchemy, sqlite3"`. Every figure is the median
of N runs of a fresh process, on SQLite in a fresh directory (its organization and user made
first, by the CLI). Targets: `--help` within the floor, `users list --json` within twice it.
"""

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BIN = Path(sys.executable).parent
FLOOR = [sys.executable, "-c", "import typer, rich, sqlalchemy, sqlite3"]


def seconds(command: list[str], env: dict[str, str]) -> float:
    started = time.perf_counter()
    subprocess.run(command, env=env, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=7, help="runs of each command")
    args = parser.parse_args()
    roster = [str(BIN / "roster")]
    with tempfile.TemporaryDirectory() as scratch:
        env = os.environ | {
            "ROSTER_DATABASE_URL": f"sqlite:///{scratch}/roster.db",
            "ROSTER_DATA_DIR": f"{scratch}/var",
        }
        template = Path(scratch) / "template.csv"
        template.write_bytes(subprocess.run([*roster, "template"], env=env, check=True,
                                            capture_output=True).stdout)  # fmt: skip
        subprocess.run([*roster, "tenant", "create", "small", "--name", "Small"], env=env,
                       check=True, capture_output=True)  # fmt: skip
        subprocess.run([*roster, "import", str(template), "--tenant", "small", "--mode", "add",
                        "-q"], env=env, check=True, capture_output=True)  # fmt: skip
        commands = {
            "floor": FLOOR,
            "roster --help": [*roster, "--help"],
            "roster users list --json": [*roster, "users", "list", "--tenant", "small", "--json"],
        }
        timed: dict[str, list[float]] = {name: [] for name in commands}
        for _ in range(args.runs):  # interleaved, so a busy moment touches all alike
            for name, command in commands.items():
                timed[name].append(seconds(command, env))
    floor = statistics.median(timed["floor"])
    for name, runs in timed.items():
        median = statistics.median(runs)
        print(f"{name:<26} {median:6.2f} s  {median / floor:4.1f}x floor  (runs: "
              f"{', '.join(f'{r:.2f}' for r in runs)})")  # fmt: skip
    print("targets: --help within the floor; users list --json within twice the floor")
    return 0


if __name__ == "__main__":
    sys.exit(main())
