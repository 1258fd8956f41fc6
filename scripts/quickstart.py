"""Serve the quick start as production runs: the web server, a Celery worker and beat, together,
with the demo billing service the demo workflows call (scripts/demo_service.py), and start the
demo runs once (`seed_demo --runs`).

`make run` calls this after migrating and seeding. The broker is Redis when one answers on
127.0.0.1:6379 (database 0, or CELERY_BROKER_URL if set), otherwise Kombu's filesystem transport
under var/broker/, which needs no server. Ctrl-C (or SIGTERM) stops every process; if one of them
dies, the others are stopped too and the exit status says which.

Usage: .venv/bin/python scripts/quickstart.py [--host 127.0.0.1] [--port 8000]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
STOP_GRACE_SECONDS = 10


def _redis_answers(host: str = "127.0.0.1", port: int = 6379) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False


def broker_environment(var_dir: Path) -> tuple[dict[str, str], str]:
    """The broker settings for every process, and a sentence saying which broker it is."""
    if os.environ.get("CELERY_BROKER_URL"):
        return {}, f"the broker of CELERY_BROKER_URL ({os.environ['CELERY_BROKER_URL'].split('@')[-1]})"
    forced = os.environ.get("QUICKSTART_BROKER", "auto") == "filesystem"
    if not forced and _redis_answers():
        return {"CELERY_BROKER_URL": "redis://127.0.0.1:6379/0"}, "Redis on 127.0.0.1:6379 (database 0)"
    why = "QUICKSTART_BROKER=filesystem" if forced else "no Redis answered on 127.0.0.1:6379"
    return {
        "CELERY_BROKER_URL": "filesystem://localhost/"
    }, f"the filesystem broker under {var_dir / 'broker'} ({why})"


def _start(name: str, argv: list[str], env: dict[str, str]) -> tuple[str, subprocess.Popen]:
    # Each process leads a group of its own, so that stopping it also stops what it started
    # (runserver's autoreloader child, the worker's pool).
    return name, subprocess.Popen(argv, cwd=ROOT, env=env, start_new_session=True)  # noqa: S603 - fixed argv


def _stop(processes: list[tuple[str, subprocess.Popen]]) -> None:
    # The worker gets SIGTERM alone: Celery then finishes its tasks in hand and stops its pool (a
    # signal to the pool's processes would only make it start new ones). The web server's group
    # gets it, so the autoreloader's child stops with its parent.
    for name, process in processes:
        if process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                if name == "worker":
                    process.send_signal(signal.SIGTERM)
                else:
                    os.killpg(process.pid, signal.SIGTERM)
    deadline = time.monotonic() + STOP_GRACE_SECONDS
    for name, process in processes:
        try:
            process.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            print(f"quickstart: {name} did not stop in {STOP_GRACE_SECONDS} s; killing it", flush=True)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)  # whatever is left of its group
        process.wait()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default=os.environ.get("HOST", "127.0.0.1"))
    parser.add_argument("--port", default=os.environ.get("PORT", "8000"))
    parser.add_argument("--noreload", action="store_true", help="serve without the code autoreloader")
    args = parser.parse_args(argv)

    var_dir = Path(os.environ.get("PORTAL_VAR_DIR", ROOT / "var"))
    var_dir.mkdir(parents=True, exist_ok=True)
    broker_env, broker_said = broker_environment(var_dir)
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": os.environ.get("DJANGO_SETTINGS_MODULE", "governance.settings.local"),
        # Tasks go to the worker, as in production, instead of running inside the request.
        "CELERY_TASK_ALWAYS_EAGER": "0",
        "PYTHONUNBUFFERED": "1",
        **broker_env,
    }
    python = sys.executable
    web = [python, "manage.py", "runserver", f"{args.host}:{args.port}"]
    if args.noreload:
        web.append("--noreload")
    worker = [
        python, "-m", "celery", "-A", "governance", "worker",
        "--beat", "--schedule", str(var_dir / "celerybeat-schedule"),
        "--concurrency", "2", "--loglevel", "WARNING", "--without-mingle", "--without-gossip",
    ]  # fmt: skip

    demo = [python, "scripts/demo_service.py", "--port", os.environ.get("DEMO_SERVICE_PORT", "8765")]

    print(
        f"quickstart: web server, Celery worker and beat, demo billing service; broker: {broker_said}",
        flush=True,
    )
    stopping = False

    def _on_signal(signum, _frame):
        nonlocal stopping
        stopping = True

    # Before anything starts: a Ctrl-C in the first seconds (while the demo runs are started)
    # stops everything too, instead of leaving the processes behind it without their parent.
    signal.signal(signal.SIGINT, _on_signal)
    signal.signal(signal.SIGTERM, _on_signal)
    processes = [_start("demo-service", demo, env), _start("worker", worker, env), _start("web", web, env)]
    # The demo runs, once: their steps go to the worker, which calls the demo service.
    seeded = subprocess.run(  # noqa: S603 - fixed argv
        [python, "manage.py", "seed_demo", "--runs"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if stopping and seeded.returncode != 0:
        print("quickstart: interrupted while the demo runs were being started.", flush=True)
    else:
        for line in (seeded.stdout + seeded.stderr).splitlines():
            print(f"quickstart: {line}", flush=True)

    failed = None
    while not stopping:
        for name, process in processes:
            if process.poll() is not None:
                failed = (name, process.returncode)
                stopping = True
                break
        time.sleep(0.2)
    print("quickstart: stopping the web server, the worker and beat…", flush=True)
    _stop(processes)
    if failed:
        print(
            f"quickstart: the {failed[0]} process exited with status {failed[1]}; everything stopped.",
            flush=True,
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
