"""`send --dry-run` with 1,000 and 10,000 messages due (issue 15, 6): time and peak RSS of
the whole process, text and --json, beside `mailflow --help` measured in the same run
(median of --runs). Streaming output keeps memory flat: 10k due should cost about what 1k
does, not ten times the rendered messages.

    python bench/dryrun.py
    python bench/dryrun.py --history 20000 --runs 3
    python bench/dryrun.py --compare-with /tmp/old   # also another mailflow's source tree
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from status import (
    MAILFLOW,
    NOW,
    RULES,
    add_due,
    build_store,
    mailflow_of,
    older_copy,
    print_samples,
    timed,
)

from mailflow.clock import iso


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--history", type=int, default=20_000, help="orders already handled")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--compare-with", type=Path, help="Also time the mailflow of this"
                        " source tree (on a copy of the store without the newer migrations).")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="mailflow-dryrun-"))
    try:
        subprocess.run([MAILFLOW, "init", str(work)], check=True, stdout=subprocess.DEVNULL)
        (work / "rules.yaml").write_text(RULES)
        build_store(work / "history.db", args.history)
        commands: dict[str, list[str]] = {"mailflow --help (reference)": [MAILFLOW, "--help"]}
        for due in (1_000, 10_000):
            db = work / f"due{due}.db"
            shutil.copyfile(work / "history.db", db)
            add_due(db, due)
            trees = [("", None, db)]
            if args.compare_with is not None:
                older = older_copy(db, db.with_name(f"older{due}.db"))
                trees.append((" [compared]", args.compare_with, older))
            for label, tree, store in trees:
                base = [*mailflow_of(tree), "--db", str(store), "--config",
                        str(work / "rules.yaml"), "send", "--dry-run", "--now", iso(NOW)]
                commands[f"send --dry-run, {due:,} due{label}"] = base
                commands[f"send --dry-run --json, {due:,} due{label}"] = [*base, "--json"]
        for command in commands.values():  # warm up: the page cache, the first migrations
            timed(command)
        samples: dict[str, list[tuple[float, int]]] = {name: [] for name in commands}
        for _ in range(args.runs):
            for name, command in commands.items():
                samples[name].append(timed(command))
        print(f"{args.history:,} orders of history; {os.cpu_count()} cores, load"
              f" {os.getloadavg()[0]:.1f}")
        print_samples(samples, 48)
        print("target: peak RSS flat from 1k to 10k due (output streamed, never held)")
    finally:
        shutil.rmtree(work)


if __name__ == "__main__":
    main()
