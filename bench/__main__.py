"""Run every benchmark and print a table: ``python -m bench [--messages N] [--no-pg] [--drain N] [--files-mb N]``."""

from __future__ import annotations

import argparse
import sys

from bench import core, files, sla_sweep


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--messages", type=int, default=300, help="DMs / replies per throughput run")
    parser.add_argument("--no-pg", action="store_true", help="skip PostgreSQL runs")
    parser.add_argument(
        "--pg",
        default="postgresql://postgres@127.0.0.1:5432/postgres",
        help="admin URL of a PostgreSQL server for a scratch database",
    )
    parser.add_argument("--rates", default="100,200", help="ack-latency arrival rates, events/s")
    parser.add_argument("--seconds", type=float, default=20.0, help="duration of each ack-latency run")
    parser.add_argument("--drain", type=int, default=300, help="DMs in the drain burst (0 skips it)")
    parser.add_argument(
        "--sla-conversations", type=int, default=100_000, help="open conversations for the SLA sweep (0 skips it)"
    )
    parser.add_argument(
        "--files-mb", type=float, default=200, help="the large file relayed each way by bench.files (0 skips it)"
    )
    parser.add_argument("--photos", type=int, default=200, help="timed photos of bench.files (0 skips them)")
    args = parser.parse_args()
    sys.setswitchinterval(0.0005)  # the emulators answer from threads of this process
    print(f"{'benchmark':<92}  result", flush=True)
    print("-" * 150, flush=True)
    core.run_all(
        args.messages,
        None if args.no_pg else args.pg,
        rates=tuple(float(r) for r in args.rates.split(",") if r),
        seconds=args.seconds,
        drain_messages=args.drain,
        out=lambda row: print(f"{row.name:<92}  {row.value}", flush=True),
    )
    if args.sla_conversations:
        for line in sla_sweep.report(args.sla_conversations, 200, None if args.no_pg else args.pg):
            print(line, flush=True)
    if args.files_mb or args.photos:
        files.report(args.files_mb, args.photos, 10, out=lambda row: print(f"{row.name:<92}  {row.value}", flush=True))


if __name__ == "__main__":
    main()
