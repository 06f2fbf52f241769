"""A warm dbt: one long-lived process per worker that has dbt imported and the project parsed.

Importing dbt costs about 2 s and every flow run is a fresh process, so a cold `dbt run` from a
flow is slower than the dbt command line. The worker starts this executor once; flows send it
their dbt arguments over a Unix socket and get plain results back. It serves one request at a
time, which is also the rule dbt needs (never two invocations at once in one process). Flows fall
back to running dbt in their own process when the executor is not there.

    python -m flows.warm_dbt SOCKET      (started by `intervene worker`)
"""

import json
import os
import socket
import sys
import threading
import time
from pathlib import Path
from typing import Any

from integrations.warehouse import DbtProject, WarehouseBusy, invoke_dbt
from models.settings import get_settings

MAX_MESSAGE = 10 * 1024 * 1024


def summarize(outcome: Any) -> dict[str, Any]:
    """A dbtRunnerResult as plain JSON: success, error, and one entry per node."""
    return {
        "success": bool(outcome.success),
        "exception": str(outcome.exception) if outcome.exception is not None else None,
        "results": [
            {
                "name": result.node.name,
                "status": str(result.status),
                "rows_affected": (result.adapter_response or {}).get("rows_affected"),
                "execution_time": round(result.execution_time, 3),
                "message": result.message,
            }
            for result in (getattr(outcome.result, "results", None) or [])
        ],
    }


def model_lines(outcome: dict[str, Any]) -> list[str]:
    """One line per model, as the flow run's logs show them:
    `model inbox_emails: success in 0.42 s (1234 rows)`."""
    lines = []
    for model in outcome.get("results", []):
        rows = model.get("rows_affected")
        line = f"model {model['name']}: {model['status']} in {model['execution_time']} s"
        lines.append(line if rows is None else f"{line} ({rows} rows)")
    return lines


def run(project: DbtProject, args: list[str], socket_path: Path | None) -> dict[str, Any]:
    """Run `dbt <args>` on the warm executor at `socket_path`, or here if there is none; each
    model's line goes to the flow run's logs (dbt's own output stays the worker's)."""
    outcome = _run(project, args, socket_path)
    from flows.logs import run_logger  # here: the executor process itself never imports Prefect

    logger = run_logger()
    for line in model_lines(outcome):
        logger.info(line)
    return outcome


def _run(project: DbtProject, args: list[str], socket_path: Path | None) -> dict[str, Any]:
    if socket_path is not None and socket_path.exists():
        try:
            return _ask(
                socket_path,
                {
                    "args": args,
                    "warehouse_url": project.warehouse_url,
                    "target_dir": str(project.target_dir),
                },
            )
        except (ConnectionRefusedError, FileNotFoundError):
            pass  # a stale socket: the executor is gone
    return summarize(invoke_dbt(project, *args))


def _ask(socket_path: Path, request: dict[str, Any]) -> dict[str, Any]:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
        conn.connect(str(socket_path))
        conn.sendall(json.dumps(request).encode() + b"\n")
        reply = _read_line(conn)
    answer: dict[str, Any] = json.loads(reply)
    if answer.get("busy"):
        raise WarehouseBusy(answer["error"])
    if "error" in answer:
        raise RuntimeError(f"warm dbt executor: {answer['error']}")
    return answer


def _read_line(conn: socket.socket) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while not chunks or not chunks[-1].endswith(b"\n"):
        chunk = conn.recv(65536)
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
        if size > MAX_MESSAGE:
            raise ValueError("message too large")
    return b"".join(chunks)


def exit_with_parent(busy: threading.Lock, every: float = 1.0) -> threading.Thread:
    """End this process once the worker that started it is gone (even SIGKILLed: no signal
    reaches a child then), after the request in hand: an orphan would hold 185 MB and, while
    it runs dbt, the warehouse."""
    parent = os.getppid()

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(every)
        with busy:
            os._exit(0)  # nothing to say: its output went to the worker, which is gone

    thread = threading.Thread(target=watch, name="exit-with-parent", daemon=True)
    thread.start()
    return thread


def serve(socket_path: Path) -> None:
    busy = threading.Lock()  # held while a request is served
    exit_with_parent(busy)
    settings = get_settings()
    project = DbtProject.from_settings(settings)
    invoke_dbt(project, "parse")  # imports dbt, warms the parse cache, writes the manifest
    socket_path.parent.mkdir(parents=True, exist_ok=True)
    socket_path.unlink(missing_ok=True)
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as server:
        server.bind(str(socket_path))
        os.chmod(socket_path, 0o600)
        server.listen(16)
        print(f"warm dbt ready on {socket_path}", flush=True)
        while True:
            conn, _ = server.accept()
            with busy, conn:
                try:
                    request = json.loads(_read_line(conn))
                    target = DbtProject(
                        project.project_dir, Path(request["target_dir"]), request["warehouse_url"]
                    )
                    reply = summarize(invoke_dbt(target, *request["args"]))
                except WarehouseBusy as exc:  # the flow retries this one
                    reply = {"error": str(exc), "busy": True}
                except Exception as exc:  # report to the flow, keep serving
                    reply = {"error": f"{type(exc).__name__}: {exc}"}
                conn.sendall(json.dumps(reply).encode() + b"\n")


if __name__ == "__main__":
    serve(Path(sys.argv[1]))
