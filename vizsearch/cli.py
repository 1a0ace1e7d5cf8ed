"""The `vizsearch` command line: search, ingest and watch datasets through the gateway.

    vizsearch login                           save the gateway's URL and your API key
    vizsearch search "a bus at night" [--dataset D] [--top-k 10]
    vizsearch search --image photo.jpg [--box x1,y1,x2,y2]
    vizsearch ingest FOLDER --dataset NAME    upload a folder (only what changed) and follow its indexing
    vizsearch datasets | jobs [--dataset D] | job ID | scan NAME | delete NAME
    vizsearch duplicates NAME [--against OTHER] [--threshold 0.9]   find duplicate images, show the groups
    vizsearch suspects NAME [--show]          annotated boxes whose neighbours agree on another label
    vizsearch map NAME [--level objects]      project a dataset's vectors to 2-D (the web app draws it)
    vizsearch download DATASET KEY [-o FILE] | open DATASET KEY
    vizsearch completion bash|zsh             shell completion (source its output)

Every command takes --json (the API's answer, for machines), and the global options
--url and --api-key before or after it. The gateway is --url, else VIZSEARCH_URL, else
the one `vizsearch login` saved, else http://127.0.0.1:8080; the key likewise
(VIZSEARCH_API_KEY). Exit status: 0 done, 2 done with failed files, 1 error.
"""

import argparse
import json
import os
import stat
import sys
import time
import webbrowser
from collections.abc import Callable
from importlib import metadata
from pathlib import Path
from urllib.parse import quote

DEFAULT_URL = "http://127.0.0.1:8080"
FINISHED = {"succeeded", "completed_with_failures", "failed"}


# -- the saved login --------------------------------------------------------------
def config_path() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config"
    return Path(base) / "vizsearch" / "config.json"


def saved_login() -> dict:
    try:
        return json.loads(config_path().read_text())
    except (OSError, ValueError):
        return {}


def save_login(url: str, api_key: str | None) -> Path:
    """Writes the login readable by its owner only (the key is a secret)."""
    path = config_path()
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, stat.S_IRUSR | stat.S_IWUSR)
    with os.fdopen(fd, "w") as stream:
        json.dump({"url": url, "api_key": api_key}, stream)
    os.chmod(path, stat.S_IRUSR | stat.S_IWUSR)
    return path


# -- what several commands (and the demo and the harness) use -------------------------
def upload(client, folder: Path, dataset: str, threads: int,
           include: Callable[[str], bool] = lambda key: True) -> tuple[int, int]:
    """client.upload with a progress bar."""
    from tqdm import tqdm

    files = sum(1 for p in folder.rglob("*") if p.is_file())
    with tqdm(total=files, unit="file", desc="upload") as bar:
        return client.upload(folder, dataset, threads, include, progress=bar.update)


def follow(client, job_id: str, poll_s: float = 0.5, unit: str = "img", desc: str = "index"):
    """Shows the job's progress until it ends."""
    from tqdm import tqdm

    bar = tqdm(unit=unit, desc=desc)
    try:
        while True:
            job = client.job(job_id)
            bar.total = job.total or None
            bar.n = job.done + job.failed + job.skipped
            bar.set_postfix(failed=job.failed, skipped=job.skipped, objects=job.objects,
                            eta=f"{job.eta_seconds:.0f}s", refresh=False)
            bar.refresh()
            if job.state in FINISHED:
                return job
            time.sleep(poll_s)
    finally:
        bar.close()


def report(job, max_failures: int = 20) -> int:
    print(f"job {job.id}: {job.state}: {job.done} indexed, {job.skipped} unchanged, {job.failed} failed, "
          f"{job.objects} objects" + (f", {job.annotation_errors} unusable annotations" if job.annotation_errors else ""))
    if job.error:
        print(f"  error: {job.error}")
    for failure in list(job.failures)[:max_failures]:
        print(f"  {failure.key}: {failure.reason}")
    if len(job.failures) > max_failures:
        print(f"  ... and {len(job.failures) - max_failures} more (vizsearch jobs --dataset {job.dataset})")
    return exit_status(job)


def exit_status(job) -> int:
    return {"succeeded": 0, "completed_with_failures": 2}.get(job.state, 1)


def emit(args, model) -> None:
    """The API's answer as JSON (--json)."""
    if isinstance(model, list):
        print(json.dumps([m.model_dump(mode="json") for m in model], indent=2))
    else:
        print(model.model_dump_json(indent=2))


# -- the commands ---------------------------------------------------------------------
def _size_range(text: str) -> tuple[int | None, int | None]:
    low, sep, high = text.partition(":")
    try:
        bounds = (int(low) if low else None, int(high) if high else None)
    except ValueError:
        bounds = None
    if not sep or bounds is None or any(b is not None and b < 0 for b in bounds):
        raise argparse.ArgumentTypeError(f"{text!r} is not MIN:MAX in pixels (say 640: or :1920 or 640:1920)")
    return bounds


def cmd_search(args, client) -> int:
    if (args.text is None) == (args.image is None):
        print("give a text, or --image PATH (with --box for an object)", file=sys.stderr)
        return 1
    if args.box and not args.image:
        print("--box needs --image", file=sys.stderr)
        return 1
    width, height = args.width or (None, None), args.height or (None, None)
    options = {"datasets": args.dataset or None, "labels": args.label or None, "level": args.level,
               "exclude_labels": args.exclude_label or None, "all_labels": args.with_label or None,
               "key_prefix": args.prefix, "min_width": width[0], "max_width": width[1], "min_height": height[0],
               "max_height": height[1], "top_k": args.top_k, "offset": args.offset, "min_score": args.min_score}
    reply = client.search_text(args.text, **options) if args.text is not None else \
        client.search_image(args.image, box=args.box, **options)
    if args.export:
        from vizsearch.export import export

        write_file(args, export(reply.results, args.export), f"{len(reply.results)} results")
        return 0
    if args.json:
        emit(args, reply)
        return 0
    print(f"{len(reply.results)} results in {reply.took_ms:.0f} ms (model {reply.model.model_id}, "
          f"version {reply.model.version})")
    print(f"{'#':>3} {'score':>7}  {'dataset':16} {'key':40} boxes")
    for rank, hit in enumerate(reply.results, 1):
        boxes = "; ".join(f"{o.label} [{', '.join(f'{v:.0f}' for v in o.box)}]" + (f" {o.score:.3f}" if o.score else "")
                          for o in hit.objects)
        print(f"{rank:3d} {hit.score:7.4f}  {hit.dataset:16} {hit.key:40} {boxes}")
    return 0


def cmd_ingest(args, client) -> int:
    from vizsearch.names import InvalidDatasetName, check_dataset_name

    folder = Path(args.folder)
    if not folder.is_dir():
        print(f"{folder} is not a folder", file=sys.stderr)
        return 1
    try:
        check_dataset_name(args.dataset)
    except InvalidDatasetName as error:
        print(error, file=sys.stderr)
        return 1
    sent, kept = upload(client, folder, args.dataset, args.threads)
    if not args.json:
        print(f"uploaded {sent} files to {args.dataset}/ ({kept} already there)")
    job = client.scan(args.dataset)
    if not args.no_wait:
        job = follow(client, job.id)
    if args.json:
        emit(args, job)
        return exit_status(job) if not args.no_wait else 0
    if args.no_wait:
        print(f"job {job.id} started: vizsearch job {job.id}")
        return 0
    return report(job)


def cmd_datasets(args, client) -> int:
    datasets = client.datasets()
    if args.json:
        emit(args, datasets)
        return 0
    print(f"{'dataset':24} {'images':>9} {'objects':>9} {'failed':>7}  last job")
    for d in datasets:
        last = f"{d.last_job.id} {d.last_job.state}" if d.last_job else "-"
        print(f"{d.name:24} {d.images:9d} {d.objects:9d} {d.failed:7d}  {last}")
    return 0


def cmd_jobs(args, client) -> int:
    jobs = client.jobs(args.dataset, args.limit)
    if args.json:
        emit(args, jobs)
        return 0
    print(f"{'job':24} {'dataset':16} {'kind':9} {'state':24} {'total':>7} {'done':>7} {'skipped':>7} {'failed':>6}")
    for j in jobs:
        print(f"{j.id:24} {j.dataset:16} {j.kind:9} {j.state:24} {j.total:7d} {j.done:7d} {j.skipped:7d} {j.failed:6d}")
    if args.dataset and jobs:
        report(jobs[0])
    return 0


def cmd_job(args, client) -> int:
    job = follow(client, args.id) if args.wait else client.job(args.id)
    if args.json:
        emit(args, job)
        return exit_status(job) if job.state in FINISHED else 0
    return report(job)


def cmd_scan(args, client) -> int:
    job = client.scan(args.dataset)
    if args.wait:
        job = follow(client, job.id)
    if args.json:
        emit(args, job)
    elif args.wait:
        return report(job)
    else:
        print(f"job {job.id} started: vizsearch job {job.id} --wait")
    return exit_status(job) if args.wait else 0


def write_file(args, data: bytes, what: str) -> None:
    """An exported file to -o, else to standard output."""
    if args.output:
        Path(args.output).write_bytes(data)
        print(f"{what} written to {args.output}", file=sys.stderr)
    else:
        sys.stdout.buffer.write(data)


def _analysis(args, client, start: Callable, read: Callable, unit: str):
    """An analysis job's results: a new job started with start(), followed to its end, or with
    --show the latest (or --job) as it stands. Returns the reply, or an exit status when
    there is nothing more to print."""
    job_id = args.job or "" if args.show else follow(client, start().id, unit=unit, desc="compare").id
    found = read(job_id)
    if args.json and not args.export:
        emit(args, found)
        return exit_status(found.job) if found.job.state in FINISHED else 0
    job = found.job
    if job.state not in FINISHED:
        handled = job.done + job.skipped + job.failed
        print(f"job {job.id}: {job.state}, {handled}/{job.total} compared: vizsearch job {job.id} --wait")
        return 0
    if job.state == "failed":
        return report(job)
    return found


def _more(shown: int, total: int, offset: int) -> None:
    if offset + shown < total:
        print(f"... {total - offset - shown} more: --show --offset {offset + shown}")


def cmd_duplicates(args, client) -> int:
    """Starts a duplicates job and shows its groups when it ends (--show: the latest job's, now)."""
    found = _analysis(args, client, lambda: client.find_duplicates(args.dataset, args.against or [], args.threshold),
                      lambda job_id: client.duplicates(args.dataset, job_id, args.limit, args.offset), "img")
    if isinstance(found, int):
        return found
    job = found.job
    if args.export:
        write_file(args, client.export_duplicates(args.dataset, args.export, job.id), f"{found.total_groups} groups")
        return exit_status(job)
    print(f"job {job.id}: {found.total_groups} groups, {found.duplicate_images} images "
          f"(threshold {job.duplicates.threshold:.3f}, against {', '.join(job.duplicates.datasets[1:]) or 'itself'})")
    for number, group in enumerate(found.groups, start=args.offset + 1):
        kind = "exact" if group.exact else f"{group.min_similarity:.3f}-{group.max_similarity:.3f}"
        print(f"{number:5d}. {len(group.images)} images, {kind}")
        for image in group.images:
            print(f"       {image.dataset}/{image.key}")
    _more(len(found.groups), found.total_groups, args.offset)
    return exit_status(job)


def cmd_suspects(args, client) -> int:
    """Starts a suspect-labels job and lists its suspects when it ends (--show: the latest job's, now)."""
    found = _analysis(args, client, lambda: client.find_suspects(args.dataset, args.neighbours, args.min_agreement),
                      lambda job_id: client.suspects(args.dataset, job_id, args.label or "", args.limit, args.offset),
                      "box")
    if isinstance(found, int):
        return found
    job = found.job
    if args.export:
        write_file(args, client.export_suspects(args.dataset, args.export, job.id, args.label or ""),
                   f"{found.total_suspects} suspects")
        return exit_status(job)
    print(f"job {job.id}: {found.total_suspects} suspects among {job.total} boxes "
          f"({job.suspects.neighbours} neighbours vote, {job.suspects.min_agreement:.2f} of the votes needed)")
    print(f"{'#':>5} {'agreement':>9}  {'label':16} {'suggested':16} key, box")
    for number, suspect in enumerate(found.suspects, start=args.offset + 1):
        box = ",".join(f"{v:.0f}" for v in suspect.box)
        print(f"{number:5d} {suspect.agreement:9.3f}  {suspect.label:16} {suspect.suggested_label:16} "
              f"{suspect.key} [{box}]")
    _more(len(found.suspects), found.total_suspects, args.offset)
    return exit_status(job)


def cmd_map(args, client) -> int:
    """Starts a map job and summarises its points when it ends (--show: the latest map's, now);
    --export writes every point (x, y, image, labels, box)."""
    from vizsearch.models import MAX_MAP_POINTS

    found = _analysis(args, client, lambda: client.make_map(args.dataset, args.level, args.max_points),
                      lambda job_id: client.map(args.dataset, args.level, job_id, MAX_MAP_POINTS if args.export
                                                else 1), "pt")
    if isinstance(found, int):
        return found
    job = found.job
    if args.export:
        from vizsearch.export import export_points

        write_file(args, export_points(found.points, args.export), f"{len(found.points)} points")
        return exit_status(job)
    print(f"job {job.id}: a map of {found.total_points:,} {job.map.level} (at most {job.map.max_points:,} are "
          f"mapped): {args.url.rstrip('/')}/?view=map&dataset={quote(args.dataset, safe='')}&level={job.map.level}")
    return exit_status(job)


def cmd_delete(args, client) -> int:
    if not args.yes:
        if not sys.stdin.isatty():
            print(f"refusing to delete {args.dataset} without --yes", file=sys.stderr)
            return 1
        if input(f"delete the dataset {args.dataset} (its vectors; the stored images stay)? [y/N] ").lower() != "y":
            return 1
    deleted = client.delete_dataset(args.dataset)
    if args.json:
        emit(args, deleted)
    else:
        print(f"deleted {args.dataset}: {deleted.deleted_entries} entries")
    return 0


def cmd_download(args, client) -> int:
    data = client.image(args.dataset, args.key)
    out = Path(args.output or Path(args.key).name)
    out.write_bytes(data)
    if args.json:
        print(json.dumps({"dataset": args.dataset, "key": args.key, "path": str(out), "bytes": len(data)}))
    else:
        print(f"wrote {out} ({len(data)} bytes)")
    return 0


def cmd_open(args, client) -> int:
    """Opens the web app on the image (a search by it), in the browser."""
    url = f"{args.url.rstrip('/')}/?q={quote(json.dumps([{'image': {'dataset': args.dataset, 'key': args.key}}]))}" \
          f"&datasets={quote(args.dataset)}"
    if args.json:
        print(json.dumps({"url": url}))
    else:
        print(url)
    webbrowser.open(url)
    return 0


def cmd_login(args, client) -> int:
    import getpass

    key = args.api_key
    if key is None and sys.stdin.isatty():
        key = getpass.getpass(f"API key for {args.url} (empty: none): ") or None
    client.set_api_key(key)
    client.model()  # the gateway answers, and takes the key
    path = save_login(args.url, key)
    if args.json:
        print(json.dumps({"url": args.url, "config": str(path)}))
    else:
        print(f"logged in to {args.url}; saved in {path} (readable by you only)")
    return 0


def cmd_logout(args, client) -> int:
    config_path().unlink(missing_ok=True)
    if not args.json:
        print(f"forgot the saved login ({config_path()})")
    return 0


COMMANDS: dict[str, Callable] = {
    "search": cmd_search, "ingest": cmd_ingest, "datasets": cmd_datasets, "jobs": cmd_jobs, "job": cmd_job,
    "scan": cmd_scan, "duplicates": cmd_duplicates, "suspects": cmd_suspects, "delete": cmd_delete,
    "map": cmd_map, "download": cmd_download, "open": cmd_open, "login": cmd_login, "logout": cmd_logout,
}


# -- the parser -------------------------------------------------------------------------
def _box(text: str) -> list[float]:
    try:
        box = [float(v) for v in text.split(",")]
    except ValueError:
        box = []
    if len(box) != 4:
        raise argparse.ArgumentTypeError(f"{text!r} is not x1,y1,x2,y2")
    return box


def build_parser() -> argparse.ArgumentParser:
    # The global options are accepted before the command and after it: each command's
    # parser knows them too, without defaults of its own (SUPPRESS), so neither place wins
    # over a value given at the other.
    common = argparse.ArgumentParser(add_help=False, argument_default=argparse.SUPPRESS)
    common.add_argument("--url", help="the gateway (default: VIZSEARCH_URL, the saved login, or %s)" % DEFAULT_URL)
    common.add_argument("--api-key", help="API key (default: VIZSEARCH_API_KEY or the saved login)")
    common.add_argument("--json", action="store_true", help="print the API's answer as JSON")
    formatter = argparse.ArgumentDefaultsHelpFormatter
    parser = argparse.ArgumentParser(prog="vizsearch", description=__doc__, parents=[common],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, help_text: str) -> argparse.ArgumentParser:
        return commands.add_parser(name, help=help_text, description=help_text, parents=[common],
                                   formatter_class=formatter)

    search = command("search", "search by text, example image or object")
    search.add_argument("text", nargs="?", help="what to look for")
    search.add_argument("--image", help="a local image file to search by")
    search.add_argument("--box", type=_box, help="x1,y1,x2,y2: search by this object of --image")
    search.add_argument("--dataset", action="append", help="only this dataset (repeatable)")
    search.add_argument("--label", action="append", help="only objects with this label (repeatable; objects level)")
    search.add_argument("--exclude-label", action="append",
                        help="objects level: not objects with this label; images level: not images with a box of it "
                        "(repeatable)")
    search.add_argument("--with-label", action="append",
                        help="only images with a box of this label (repeatable: a box of each)")
    search.add_argument("--prefix", help="only keys starting with this: a folder of the dataset")
    search.add_argument("--width", type=_size_range, help="MIN:MAX image width in pixels (either may be empty)")
    search.add_argument("--height", type=_size_range, help="MIN:MAX image height in pixels (either may be empty)")
    search.add_argument("--level", choices=["images", "objects"], help="default: objects for an object query")
    search.add_argument("--top-k", type=int, default=10, help="results per page")
    search.add_argument("--offset", type=int, default=0, help="results to skip (paging)")
    search.add_argument("--min-score", type=float, help="drop results below this cosine similarity")
    search.add_argument("--export", choices=["jsonl", "csv", "coco"],
                        help="write the results as JSON lines, CSV (a row per box) or COCO (images and boxes)")
    search.add_argument("-o", "--output", help="with --export: the file to write (default: standard output)")
    ingest = command("ingest", "upload a folder as a dataset (only what changed) and follow its indexing")
    ingest.add_argument("folder")
    ingest.add_argument("--dataset", required=True, help="dataset name: the folder lands under <dataset>/")
    ingest.add_argument("--threads", type=int, default=8, help="concurrent uploads")
    ingest.add_argument("--no-wait", action="store_true", help="start the job and return")
    command("datasets", "list datasets with their counts")
    jobs = command("jobs", "recent ingestion jobs")
    jobs.add_argument("--dataset", default="", help="only this dataset's (and its latest job's failures)")
    jobs.add_argument("--limit", type=int, default=20, help="how many")
    job = command("job", "one job: its progress, failures and reasons")
    job.add_argument("id")
    job.add_argument("--wait", action="store_true", help="follow it until it ends")
    scan = command("scan", "scan a dataset now (write role)")
    scan.add_argument("dataset")
    scan.add_argument("--wait", action="store_true", help="follow the job until it ends")
    duplicates = command("duplicates", "find a dataset's duplicate images (write role) and show the groups")
    duplicates.add_argument("dataset")
    duplicates.add_argument("--against", action="append",
                            help="also compare with this dataset's images (repeatable): a train/test leak")
    duplicates.add_argument("--threshold", type=float,
                            help="cosine similarity from which images are near duplicates (default: the indexer's)")
    duplicates.add_argument("--show", action="store_true",
                            help="show the latest job's groups (or --job's) instead of starting a job")
    duplicates.add_argument("--job", help="with --show: this duplicates job")
    duplicates.add_argument("--limit", type=int, default=50, help="groups shown")
    duplicates.add_argument("--offset", type=int, default=0, help="groups to skip (paging)")
    duplicates.add_argument("--export", choices=["jsonl", "csv"],
                            help="write every group as JSON lines (a group each) or CSV (a row per image)")
    duplicates.add_argument("-o", "--output", help="with --export: the file to write (default: standard output)")
    suspects = command("suspects", "find annotated boxes whose neighbours agree on another label (write role)")
    suspects.add_argument("dataset")
    suspects.add_argument("--neighbours", type=int, help="boxes that vote on each label (default: the indexer's)")
    suspects.add_argument("--min-agreement", type=float,
                          help="share of the votes another label needs (default: the indexer's)")
    suspects.add_argument("--show", action="store_true",
                          help="show the latest job's suspects (or --job's) instead of starting a job")
    suspects.add_argument("--job", help="with --show: this suspect-labels job")
    suspects.add_argument("--label", help="only boxes labelled this")
    suspects.add_argument("--limit", type=int, default=50, help="suspects shown")
    suspects.add_argument("--offset", type=int, default=0, help="suspects to skip (paging)")
    suspects.add_argument("--export", choices=["jsonl", "csv", "coco"],
                          help="write every suspect as JSON lines, CSV or COCO (each box with its current label)")
    suspects.add_argument("-o", "--output", help="with --export: the file to write (default: standard output)")
    map_ = command("map", "project a dataset's image or object vectors to 2-D (write role); the web app draws it")
    map_.add_argument("dataset")
    map_.add_argument("--level", choices=["images", "objects"], default="images", help="what the points are")
    map_.add_argument("--max-points", type=int, help="map a random sample of this many (default: the indexer's)")
    map_.add_argument("--show", action="store_true", help="the latest map of the level (or --job's), now")
    map_.add_argument("--job", help="with --show: this map job")
    map_.add_argument("--export", choices=["jsonl", "csv"], help="write every point: x, y, image, labels, box")
    map_.add_argument("-o", "--output", help="with --export: the file to write (default: standard output)")
    delete = command("delete", "delete a dataset's vectors and records; the stored images stay (admin role)")
    delete.add_argument("dataset")
    delete.add_argument("--yes", action="store_true", help="do not ask")
    download = command("download", "save a stored image")
    download.add_argument("dataset")
    download.add_argument("key")
    download.add_argument("-o", "--output", help="where to write it (default: the key's file name)")
    open_ = command("open", "open the web app on an image (a search by it)")
    open_.add_argument("dataset")
    open_.add_argument("key")
    command("login", "save the gateway's URL and your API key (asked for when not given)")
    command("logout", "forget the saved login")
    completion = commands.add_parser("completion", help="print a shell completion script (bash or zsh)",
                                     formatter_class=formatter)
    completion.add_argument("shell", choices=["bash", "zsh"])
    return parser


def _version() -> str:
    try:
        return metadata.version("vizsearch")
    except metadata.PackageNotFoundError:
        return "unknown"


def completion_script(parser: argparse.ArgumentParser, shell: str) -> str:
    """Completes the commands, then each command's options, from the parser itself."""
    subparsers = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    cases = "\n".join(
        f"    {name}) opts=\"{' '.join(o for a in sub._actions for o in a.option_strings)}\" ;;"
        for name, sub in subparsers.choices.items())
    script = f"""_vizsearch() {{
  local cur=${{COMP_WORDS[COMP_CWORD]}} command=${{COMP_WORDS[1]}} opts
  if [ "$COMP_CWORD" -eq 1 ]; then
    COMPREPLY=($(compgen -W "{' '.join(subparsers.choices)} --version --help" -- "$cur")); return
  fi
  case "$command" in
{cases}
  esac
  if [[ "$cur" == -* ]]; then COMPREPLY=($(compgen -W "$opts" -- "$cur")); else COMPREPLY=($(compgen -f -- "$cur")); fi
}}
complete -F _vizsearch vizsearch
"""
    return script if shell == "bash" else "autoload -U bashcompinit && bashcompinit\n" + script


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "completion":
        print(completion_script(parser, args.shell), end="")
        return 0
    saved = saved_login()
    args.url = getattr(args, "url", None) or os.environ.get("VIZSEARCH_URL") or saved.get("url") or DEFAULT_URL
    if not hasattr(args, "api_key"):
        args.api_key = os.environ.get("VIZSEARCH_API_KEY") or (saved.get("api_key") if args.command != "login" else None)
    args.json = getattr(args, "json", False)

    import httpx

    from vizsearch.client import ApiError, Client

    with Client(args.url, args.api_key) as client:
        try:
            return COMMANDS[args.command](args, client)
        except ApiError as error:
            print(f"vizsearch: {error.status}: {error.detail}", file=sys.stderr)
            return 1
        except httpx.HTTPError as error:
            print(f"vizsearch: cannot reach the gateway at {args.url}: {error}", file=sys.stderr)
            return 1


if __name__ == "__main__":
    sys.exit(main())
