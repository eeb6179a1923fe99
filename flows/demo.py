"""The demo pipeline: Python extracts sensor readings, Julia summarises them, the run publishes a table.

    extract (Python)  ->  extracts/csv/dataset=NAME/...            (Dataset.write_csv)
    summarise (Julia) ->  reports/csv/dataset=NAME_summary/...     (julia/jobs/summarize_readings.jl)
    publish (Python)  ->  a table artifact on the flow run

Only small parameters cross from Python to Julia; the Julia job finds the data block, the secret and the
variables on the same Prefect server by name.
"""

from __future__ import annotations

import math
import random
from datetime import date
from typing import Any

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NO_CACHE

from prefect_julia import Dataset, julia_job

STATIONS = ("north", "south", "east", "west")
#: The artifact holding the summary's path, as the Julia job returned it (`invoke demo` reads it).
OUTPUT_ARTIFACT = "demo-output-path"
FIELDS = ["station", "hour", "temperature_c", "humidity_pct"]


def readings(rundate: date, hours: int = 24) -> list[dict[str, object]]:
    """Deterministic sensor readings for ``rundate`` (no network: the data is generated here)."""
    rng = random.Random(rundate.toordinal())
    rows: list[dict[str, object]] = []
    for offset, station in enumerate(STATIONS):
        for hour in range(hours):
            temperature = 12 + 3 * offset + 6 * math.sin((hour - 8) / 24 * 2 * math.pi) + rng.gauss(0, 0.8)
            rows.append(
                {
                    "station": station,
                    "hour": hour,
                    "temperature_c": round(temperature, 2),
                    "humidity_pct": round(min(100.0, max(0.0, 60 + rng.gauss(0, 8))), 1),
                }
            )
    return rows


@task(cache_policy=NO_CACHE)
def extract(dataset_name: str, datastore_type: str, rundate: str | None) -> str:
    """Write the day's readings as the input dataset; return where they went."""
    dataset = Dataset(dataset_name, datastore_type=datastore_type, rundate=rundate)
    written = dataset.write_csv(readings(dataset.rundate), FIELDS)
    get_run_logger().info("extracted %d readings to %s", len(STATIONS) * 24, written[0])
    return str(written[0])


@task(cache_policy=NO_CACHE)
def publish(summary: dict[str, Any]) -> None:
    """Publish the Julia job's summary table, and where it was written, as artifacts of the run."""
    create_markdown_artifact(
        key=OUTPUT_ARTIFACT, markdown=summary["output_path"], description="Where the summary dataset was written"
    )
    # The columns in the job's order (its "columns"), whatever order each row's keys arrived in.
    columns = summary.get("columns") or []
    table = [{c: row[c] for c in columns if c in row} | row for row in summary["rows"]]
    create_table_artifact(
        key="station-summary",
        table=table,
        description=f"Readings per station, written to {summary['output_path']}",
    )


@flow(name="demo-pipeline", log_prints=True)
def demo_pipeline(
    dataset_name: str = "sensor_readings",
    datastore_type: str = "local",
    rundate: str | None = None,
    julia_retries: int = 0,
    julia_retry_delay: float = 30.0,
) -> dict[str, Any]:
    """Extract readings (Python), summarise them per station (Julia), publish the summary table.

    ``julia_retries``/``julia_retry_delay``: run the Julia job again after a failure (off by default; a
    deployment sets them in its ``parameters``).
    """
    extract(dataset_name, datastore_type, rundate)
    parameters = {
        "dataset_name": dataset_name,
        "datastore_type": datastore_type,
        "output_name": f"{dataset_name}_summary",
    }
    if rundate:
        parameters["rundate"] = rundate
    summary: dict[str, Any] = julia_job(
        "summarize_readings", parameters, retries=julia_retries, retry_delay=julia_retry_delay
    )
    publish(summary)
    return summary


if __name__ == "__main__":
    demo_pipeline()
