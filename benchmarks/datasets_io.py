"""Benchmark dataset writes and reads against a raw copy of the same bytes, locally and on S3.

    .venv/bin/python benchmarks/datasets_io.py [--mb 1024] [--no-julia]

One random payload of ``--mb`` MiB (1 GiB by default) is written then read back through:

- local, Python: ``Dataset.write_bytes``/``read_bytes`` on a local-file-system basepath, against ``cp`` of the
  same file there and back, and against ``cp`` plus ``fsync`` (a dataset write is durable: it fsyncs);
- S3 (a local moto server), Python: ``Dataset`` on an s3-bucket store, against boto3's ``upload_file`` and
  ``download_file`` of the same bytes;
- the same two in Julia (``write(ds, bytes)``/``read(ds)``; the curl transport), against the same raw runs.

Each line prints seconds and ``ratio = raw / dataset`` (1.0: as fast as the raw copy; target >= 0.8). A
specific rundate is used, so each write puts exactly one file or object. The S3 server is stopped at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from prefect_julia.runtime.bridge import find_julia
from prefect_julia.runtime.dataset import Dataset
from prefect_julia.runtime.s3store import S3Store

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT / "tests"))
from harness import start_s3_server  # noqa: E402

TARGET = 0.8
RUNDATE = "2026-01-01"

JULIA = r"""
using PrefectInterfaces
src, base, mode = ARGS[1], ARGS[2], ARGS[3]
block = mode == "local" ? LocalFSBlock("bench", base) :
    S3BucketBlock("bench", ENV["S3_BUCKET"], "bench",
                  AWSCredentialsBlock("c", "aws-credentials", "us-east-1", ENV["S3_KEY_ID"], ENV["S3_SECRET"],
                                      nothing, nothing, ENV["S3_ENDPOINT"]))
warm = Dataset("warm"; rundate="2026-01-01", rundate_type="specific")
write(warm, UInt8[1, 2, 3]; block=block); read(warm, Vector{UInt8}; block=block)   # compile first
data = read(src)
ds = Dataset("big"; file_format="bin", rundate="2026-01-01", rundate_type="specific")
w = @elapsed write(ds, data; block=block)
r = @elapsed back = read(ds, Vector{UInt8}; block=block)
length(back) == length(data) || error("read back $(length(back)) bytes of $(length(data))")
print("{\"write\": $w, \"read\": $r}")
"""


def timed(action: object) -> float:
    started = time.perf_counter()
    action()  # type: ignore[operator]
    return time.perf_counter() - started


def copy_synced(source: Path, target: Path) -> None:
    """``cp`` made durable, as a dataset write is: copy, then fsync the file."""
    shutil.copyfile(source, target)
    fd = os.open(target, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def report(label: str, raw: float, kit: float) -> None:
    ratio = raw / kit if kit else float("inf")
    flag = "ok" if ratio >= TARGET else f"below {TARGET}"
    print(f"{label:28} raw {raw:7.2f} s   dataset {kit:7.2f} s   ratio {ratio:5.2f}  ({flag})", flush=True)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=int, default=int(os.environ.get("PJ_BENCH_DATASET_MB", "1024")))
    parser.add_argument("--no-julia", action="store_true")
    args = parser.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="pj-bench-io-"))
    s3 = start_s3_server(work / "moto.log", bucket="bench-data")
    try:
        src = work / "payload.bin"
        src.write_bytes(os.urandom(args.mb * 2**20))
        data = src.read_bytes()
        print(f"payload {args.mb} MiB; write then read; ratio = raw / dataset (target >= {TARGET})", flush=True)

        raw = timed(lambda: shutil.copyfile(src, work / "copy.bin")) + timed(
            lambda: shutil.copyfile(work / "copy.bin", work / "back.bin")
        )
        raw_synced = timed(lambda: copy_synced(src, work / "copy2.bin")) + timed(
            lambda: shutil.copyfile(work / "copy2.bin", work / "back2.bin")
        )
        ds = Dataset("big", file_format="bin", rundate=RUNDATE, rundate_type="specific", basepath=work / "store")
        kit = timed(lambda: ds.write_bytes(data)) + timed(ds.read_bytes)
        report("local, Python (vs cp)", raw, kit)
        report("local, Python (vs cp+fsync)", raw_synced, kit)

        client = s3.client()
        raw_s3 = timed(lambda: client.upload_file(str(src), s3.bucket, "raw/payload.bin")) + timed(  # type: ignore[attr-defined]
            lambda: client.download_file(s3.bucket, "raw/payload.bin", str(work / "raw-back.bin"))  # type: ignore[attr-defined]
        )
        store = S3Store("s3-bucket/bench", s3.bucket, "bench", client, s3.endpoint)
        remote = Dataset("big", file_format="bin", rundate=RUNDATE, rundate_type="specific", store=store)
        kit_s3 = timed(lambda: remote.write_bytes(data)) + timed(remote.read_bytes)
        report("S3 (moto), Python", raw_s3, kit_s3)

        if not args.no_julia:
            script = work / "bench.jl"
            script.write_text(JULIA)
            env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "AWS_"))}
            env.update(S3_BUCKET=s3.bucket, S3_KEY_ID=s3.access_key, S3_SECRET=s3.secret_key, S3_ENDPOINT=s3.endpoint)
            for mode, label, raw_time in (
                ("local", "local, Julia (vs cp+fsync)", raw_synced),
                ("s3", "S3 (moto), Julia", raw_s3),
            ):
                done = subprocess.run(
                    [
                        find_julia(os.environ),
                        f"--project={REPO_ROOT / 'julia'}",
                        "--startup-file=no",
                        str(script),
                        str(src),
                        str(work / "jstore"),
                        mode,
                    ],
                    env=env,
                    capture_output=True,
                    text=True,
                    check=False,
                )
                if done.returncode != 0:
                    print(f"{label:28} failed: {done.stderr[-800:]}", flush=True)
                    continue
                times = json.loads(done.stdout)
                report(label, raw_time, times["write"] + times["read"])
    finally:
        s3.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
