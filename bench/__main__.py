"""Run every benchmark and print a table: ``python -m bench [--quick] [--no-pg]``."""

from __future__ import annotations

import argparse

from bench import core


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--messages", type=int, default=300, help="DMs per throughput run")
    parser.add_argument("--no-pg", action="store_true", help="skip PostgreSQL runs")
    parser.add_argument("--pg", default="postgresql://postgres@127.0.0.1:5432/postgres",
                        help="admin URL of a PostgreSQL server for a scratch database")
    args = parser.parse_args()
    rows = core.run_all(args.messages, None if args.no_pg else args.pg)
    width = max(len(r[0]) for r in rows)
    print(f"{'benchmark'.ljust(width)}  result")
    print("-" * (width + 40))
    for name, value in rows:
        print(f"{name.ljust(width)}  {value}")


if __name__ == "__main__":
    main()
