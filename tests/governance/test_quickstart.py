"""The quick-start path on embedded SQLite: migrate, seed, seal, verify, and the ledger refuses edits."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

TAMPER = """
from django.db import DatabaseError, transaction
from audit.models import AuditEvent
for attempt in (lambda: AuditEvent.objects.filter(sequence=1).delete(),
                lambda: AuditEvent.objects.filter(sequence=1).update(action="user.created")):
    try:
        with transaction.atomic():
            attempt()
    except DatabaseError as error:
        print("refused:", error)
"""


def _manage(*args: str, var: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "DJANGO_SETTINGS_MODULE"}}
    env.update(DJANGO_SETTINGS_MODULE="governance.settings.local", PORTAL_VAR_DIR=str(var))
    return subprocess.run(  # noqa: S603 - fixed arguments, our own manage.py
        [sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300
    )


def test_quick_start_on_sqlite(tmp_path):
    assert _manage("migrate", "--no-input", var=tmp_path).returncode == 0
    assert _manage("migrate", "--no-input", "--database", "secrets", var=tmp_path).returncode == 0
    seeded = _manage("seed_demo", var=tmp_path)
    assert seeded.returncode == 0, seeded.stderr
    assert "builder@demo.example" in seeded.stdout
    assert (tmp_path / "portal.sqlite3").exists()
    assert oct((tmp_path / "secret_key").stat().st_mode & 0o777) == "0o600"
    # Credentials went to their own SQLite file, under a key file that only the owner can read.
    assert oct((tmp_path / "keys" / "kek.json").stat().st_mode & 0o777) == "0o600"
    listed = _manage("shell", "-c", "from workflows.credentials.models import Credential as C; print(C.objects.using('secrets').count())",
                     var=tmp_path)  # fmt: skip
    assert int(listed.stdout.split()[-1]) >= 1, listed.stderr
    assert b"demo-" not in (tmp_path / "portal.sqlite3").read_bytes()
    assert b"demo-" not in (tmp_path / "secrets.sqlite3").read_bytes()  # encrypted there
    # A data key rotation on SQLite (its UUIDs are stored without dashes) moves every value.
    rotated = _manage("crypto_rotate_data_key", "--workspace", "customer-ops-eu", "--purpose", "credentials",
                      var=tmp_path)  # fmt: skip
    assert "completed" in rotated.stdout, rotated.stdout + rotated.stderr
    sealed = _manage("audit_seal", var=tmp_path)
    assert "signed tree head #1" in sealed.stdout, sealed.stderr
    assert oct((tmp_path / "ledger-signing-key.pem").stat().st_mode & 0o777) == "0o600"
    verified = _manage("audit_verify", var=tmp_path)
    assert verified.returncode == 0, verified.stderr
    assert "Ledger intact" in verified.stdout
    # Archive-then-prune on SQLite: old events go, their leaves stay, the ledger still verifies.
    pruned = _manage("shell", "-c", PRUNE_OLD_EVENTS, var=tmp_path)
    assert "pruned 5 kept 0" in pruned.stdout, pruned.stdout + pruned.stderr
    assert "verified True 5" in pruned.stdout, pruned.stdout + pruned.stderr
    assert "Ledger intact" in _manage("audit_verify", var=tmp_path).stdout
    tampered = _manage("shell", "-c", TAMPER, var=tmp_path)
    assert tampered.stdout.count("refused: the audit ledger is append-only") == 2, (
        tampered.stdout + tampered.stderr
    )


PRUNE_OLD_EVENTS = """
from datetime import timedelta
from django.utils import timezone
from audit.ledger_verification import ledger_verify
from audit.retention.prune import prune_plan, prune_resume, prune_start
from audit.sealing import ledger_seal, ledger_seal_all
from tests.factories import AuditEventFactory
for _ in range(5):
    AuditEventFactory(occurred_at=timezone.now() - timedelta(days=800))
ledger_seal_all()
ledger_seal(force_head=True)
run = prune_resume(run=prune_start(plan=prune_plan(), requested_by="quick start check"))
print("pruned", run.events_pruned, "kept", run.events_kept)
report = ledger_verify(parallel=False)
print("verified", report.ok, report.pruned)
"""

RECORD_EVENT = """
from django.db import transaction
from audit.services import audit_event_record
with transaction.atomic():
    audit_event_record(action="user.created", actor=None, data={"note": "quick start check"})
"""

COUNT_PENDING = "from audit.models import AuditEvent as E; print('pending', E.objects.filter(sequence__isnull=True).count())"


DEMO_RUNS = """
from workflows.executions.models import Execution
print(sorted(
    (run.workflow.slug, run.status, sorted((s.step_id, s.attempt, s.status) for s in run.step_runs.all()))
    for run in Execution.objects.select_related("workflow")
))
"""
DEMO_RUNS_DONE = str(sorted([
    ("invoice-approval", "succeeded", [("book", 1, "succeeded"), ("large", 1, "succeeded"), ("total", 1, "succeeded")]),
    ("invoice-approval", "waiting", [("approve", 1, "waiting"), ("large", 1, "succeeded"), ("total", 1, "succeeded")]),
    ("exchange-rates", "succeeded", [("fetch", 1, "retry_due"), ("fetch", 2, "succeeded"), ("usd", 1, "succeeded")]),
    ("vendor-sync", "halted", [("vendors", 1, "halted")]),
]))  # fmt: skip


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _processes_mentioning(text: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if text in (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace"):
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


def test_quick_start_runs_a_worker_and_beat_and_stops_them_together(tmp_path):
    """`make run` is the product: beat seals without anyone running a command; Ctrl-C stops it all."""
    assert _manage("migrate", "--no-input", var=tmp_path).returncode == 0
    assert _manage("migrate", "--no-input", "--database", "secrets", var=tmp_path).returncode == 0
    port, demo_port = _free_port(), _free_port()
    os.environ["DEMO_SERVICE_PORT"] = str(demo_port)  # for _manage's processes too
    try:
        assert _manage("seed_demo", var=tmp_path).returncode == 0
    finally:
        del os.environ["DEMO_SERVICE_PORT"]
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "DJANGO_SETTINGS_MODULE"}}
    env.update(DJANGO_SETTINGS_MODULE="governance.settings.local", PORTAL_VAR_DIR=str(tmp_path),
               QUICKSTART_BROKER="filesystem", DEMO_SERVICE_PORT=str(demo_port))  # fmt: skip
    log = (tmp_path / "quickstart.log").open("w")
    runner = subprocess.Popen(  # noqa: S603 - our own script
        [sys.executable, "scripts/quickstart.py", "--port", str(port), "--noreload"],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    try:
        recorded = _manage("shell", "-c", RECORD_EVENT, var=tmp_path)
        assert recorded.returncode == 0, recorded.stderr
        deadline, page, pending, runs = time.monotonic() + 150, None, None, ""
        while time.monotonic() < deadline and (page != 200 or pending != "0" or runs != DEMO_RUNS_DONE):
            time.sleep(1)
            try:
                with urllib.request.urlopen(
                    f"http://127.0.0.1:{port}/accounts/login/", timeout=5
                ) as response:
                    page = response.status
            except OSError:
                page = None
            counted = _manage("shell", "-c", COUNT_PENDING, var=tmp_path)
            pending = counted.stdout.split()[-1] if "pending" in counted.stdout else None
            runs = (_manage("shell", "-c", DEMO_RUNS, var=tmp_path).stdout.strip().splitlines() or [""])[-1]
        output = (tmp_path / "quickstart.log").read_text()
        assert page == 200, output
        assert pending == "0", f"beat did not seal the event: {counted.stdout}{counted.stderr}\n{output}"
        assert "filesystem broker" in output
        # The demo's runs ran for real against the demo service: one completed, one waits for an
        # officer, one failed once and was retried, one was halted by its workflow's quarantine.
        assert runs == DEMO_RUNS_DONE, f"{runs}\n{output}"
    finally:
        runner.send_signal(signal.SIGINT)
        returncode = runner.wait(timeout=60)
        log.close()
    assert returncode == 0, (tmp_path / "quickstart.log").read_text()
    assert _processes_mentioning(str(tmp_path / "celerybeat-schedule")) == []
    assert _processes_mentioning(f"runserver 127.0.0.1:{port}") == []


def test_ctrl_c_in_the_first_seconds_stops_everything_too(tmp_path):
    """A Ctrl-C while the demo runs are still being started (the first seconds) reaches the whole
    foreground group, as a terminal sends it: the web server, the worker, beat and the demo
    service stop with the quick start, none is left running without it."""
    assert _manage("migrate", "--no-input", var=tmp_path).returncode == 0
    assert _manage("migrate", "--no-input", "--database", "secrets", var=tmp_path).returncode == 0
    port, demo_port = _free_port(), _free_port()
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "DJANGO_SETTINGS_MODULE"}}
    env.update(DJANGO_SETTINGS_MODULE="governance.settings.local", PORTAL_VAR_DIR=str(tmp_path),
               QUICKSTART_BROKER="filesystem", DEMO_SERVICE_PORT=str(demo_port))  # fmt: skip
    log_path = tmp_path / "quickstart.log"
    log = log_path.open("w")
    runner = subprocess.Popen(  # noqa: S603 - our own script
        [sys.executable, "scripts/quickstart.py", "--port", str(port), "--noreload"],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while "quickstart: web server" not in log_path.read_text() and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.3)  # the processes are started; `seed_demo --runs` is still at work
        os.killpg(runner.pid, signal.SIGINT)  # what Ctrl-C in the terminal does
        returncode = runner.wait(timeout=60)
    finally:
        if runner.poll() is None:
            runner.kill()
        log.close()
    time.sleep(0.5)
    leftovers = {
        name: _processes_mentioning(text)
        for name, text in {
            "worker and beat": str(tmp_path / "celerybeat-schedule"),
            "web server": f"runserver 127.0.0.1:{port}",
            "demo service": f"demo_service.py --port {demo_port}",
        }.items()
    }
    for pids in leftovers.values():
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
    assert leftovers == {"worker and beat": [], "web server": [], "demo service": []}, log_path.read_text()
    assert returncode == 0, log_path.read_text()
