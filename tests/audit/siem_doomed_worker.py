"""A pump in a process of its own that sends half of its first batch and then hangs, as a worker
does before it is killed (tests/audit/test_siem_workers.py kills it with SIGKILL).

    python -m tests.audit.siem_doomed_worker SINK_ID
"""

from __future__ import annotations

import os
import sys
import time

import django


def main(sink_id: int) -> None:
    django.setup()
    from django.conf import settings

    from audit.siem import pump

    # The test's own key file (each test has one; the test profile names a fixed path otherwise).
    settings.CRYPTO_LOCAL_KEY_FILE = os.environ["SIEM_TEST_KEY_FILE"]

    def hangs_after_half(sink, secret):
        transport = pump.default_transport(sink, secret)
        send = transport.send

        def send_half_then_hang(events):
            send(events[: len(events) // 2])
            sys.stdout.write("sent\n")
            sys.stdout.flush()
            time.sleep(3600)

        transport.send = send_half_then_hang
        return transport

    pump.sink_pump(sink_id=sink_id, worker="doomed", transport_factory=hangs_after_half)


if __name__ == "__main__":
    main(int(sys.argv[1]))
