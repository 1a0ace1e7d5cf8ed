"""Faults during ingestion, measured: `make chaos` (IMAGES=300 by default).

Brings up the whole local stack on ports of its own with its default settings
(the demo CLIP, leases of 30 s, a sweep every 5 s), drops a generated annotated
street-scene dataset (about three boxes an image), and for each fault in turn
indexes a fresh copy, strikes once a batch is in, and prints a table: the fault,
images indexed when it struck, seconds until the component answered again, seconds
until the job ended (the first row, no fault, is the baseline for the same
point), the job's state, image and object entries found in Milvus against those
expected, duplicates and lost entries. A deletion must leave nothing.
"""

import argparse
import tempfile
from pathlib import Path

from services.localstack.config import StackSettings
from services.localstack.launcher import Stack
from tests.chaos import DELETE, KILLABLE, Chaos, make_dataset

PORT_SHIFT = 14_000  # beyond the test and benchmark stacks' ports
NONE = "none"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=300)
    parser.add_argument("--faults", default=",".join([NONE, *KILLABLE, DELETE]),
                        help="comma-separated, of: " + ", ".join([NONE, *KILLABLE, DELETE]))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as run_dir:
        settings = StackSettings(run_dir=Path(run_dir), **StackSettings.shifted_ports(PORT_SHIFT))
        stack = Stack(settings)
        try:
            print(f"starting the stack in {run_dir} ...", flush=True)
            stack.up(log=lambda line: None)
            folder = Path(run_dir) / "drop"
            expected = make_dataset(folder, args.images, seed=11)
            print(f"{len(expected.images)} images, {len(expected.objects)} boxes; batches of "
                  f"{settings.ingest_batch_size}, lease {settings.task_lease_s:g} s\n", flush=True)
            chaos = Chaos(stack)
            header = (f"{'fault':10} {'at':>4} {'back s':>7} {'done s':>7} {'job':24} {'images':>9} "
                      f"{'objects':>9} {'dups':>5} {'lost':>5}")
            print(header + "\n" + "-" * len(header), flush=True)
            exact = True
            for fault in args.faults.split(","):
                report = chaos.run("" if fault == NONE else fault, f"chaos-{fault}", folder, expected,
                                   after_done=settings.ingest_batch_size)
                exact &= report.exact
                print(f"{fault:10} {report.at_fault:>4} {report.back_s:>7.1f} {report.done_s:>7.1f} "
                      f"{report.job_state:24} {report.images:>4}/{report.expected_images:<4} "
                      f"{report.objects:>4}/{report.expected_objects:<4} {report.duplicates:>5} {report.lost:>5}",
                      flush=True)
            chaos.close()
            print("\nevery fault ended with exact counts" if exact else "\nSOME FAULT LOST OR DUPLICATED ENTRIES")
            return 0 if exact else 1
        finally:
            stack.down(log=lambda line: None)


if __name__ == "__main__":
    raise SystemExit(main())
