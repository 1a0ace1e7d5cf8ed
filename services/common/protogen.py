"""Generates the Python gRPC stubs from protos/ into services/common/genproto.

`python -m services.common.protogen` rewrites the stubs; `--check` exits 1 when
the checked-in stubs differ from what protos/ generates (stale or hand-edited).
protoc writes imports as `vizsearch.v1`; they are rewritten to the package's
real location so the stubs need no sys.path tricks.
"""

import argparse
import filecmp
import re
import shutil
import sys
import tempfile
from pathlib import Path

from grpc_tools import protoc

REPO = Path(__file__).resolve().parents[2]
PROTO_ROOT = REPO / "protos"
OUTPUT = REPO / "services" / "common" / "genproto"
PACKAGE = "services.common.genproto"
_IMPORT = re.compile(r"^(from|import) vizsearch\.v1", re.MULTILINE)


def generate(out_dir: Path) -> None:
    protos = sorted(str(p.relative_to(PROTO_ROOT)) for p in PROTO_ROOT.rglob("*.proto"))
    well_known = Path(protoc.__file__).parent / "_proto"
    args = [
        "grpc_tools.protoc",
        f"-I{PROTO_ROOT}",
        f"-I{well_known}",
        f"--python_out={out_dir}",
        f"--pyi_out={out_dir}",
        f"--grpc_python_out={out_dir}",
        *protos,
    ]
    if protoc.main(args) != 0:
        raise SystemExit("protoc failed")
    for path in out_dir.rglob("*.py*"):
        path.write_text(_IMPORT.sub(rf"\1 {PACKAGE}.vizsearch.v1", path.read_text()))
    for package_dir in {p.parent for p in out_dir.rglob("*.py")} | {out_dir}:
        while package_dir != out_dir.parent:
            (package_dir / "__init__.py").touch()
            package_dir = package_dir.parent


def stale_files(generated: Path, checked_in: Path) -> list[str]:
    def listing(root: Path) -> set[str]:
        return {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file() and "__pycache__" not in p.parts}

    ours, theirs = listing(generated), listing(checked_in) if checked_in.exists() else set()
    differing = [f for f in ours & theirs if not filecmp.cmp(generated / f, checked_in / f, shallow=False)]
    return sorted((ours ^ theirs) | set(differing))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--check", action="store_true", help="fail if the checked-in stubs are stale")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "genproto"
        out.mkdir()
        generate(out)
        stale = stale_files(out, OUTPUT)
        if args.check:
            if stale:
                print("stale generated stubs (run `make proto`):", *stale, sep="\n  ", file=sys.stderr)
                return 1
            print("generated stubs are up to date")
            return 0
        shutil.rmtree(OUTPUT, ignore_errors=True)
        shutil.copytree(out, OUTPUT)
        print(f"wrote {OUTPUT.relative_to(REPO)} ({len(stale)} files changed)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
