"""The quick start's demo billing service: a real local HTTP service the demo workflows call.

`scripts/quickstart.py` starts it beside the web server and the worker; the demo organisation's
allow-list rule for 127.0.0.1 (made by `seed_demo`, shown in the control panel under *Network
allow rules*) lets its integrations reach it. It answers JSON:

    GET  /rates      503 on the first call, then the day's exchange rates (the demo's retried step)
    GET  /vendors    the vendor list
    POST /bookings   201 {"booked": true, "idempotency_key": ...}

Usage: .venv/bin/python scripts/demo_service.py [--port 8765]
"""

from __future__ import annotations

import argparse
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

_calls: dict[str, int] = {}
_lock = threading.Lock()


class Handler(BaseHTTPRequestHandler):
    server_version = "DemoBilling/1"

    def _answer(self, status: int, body: dict) -> None:
        payload = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def do_GET(self) -> None:
        with _lock:
            _calls[self.path] = _calls.get(self.path, 0) + 1
            count = _calls[self.path]
        if self.path == "/rates":
            if count == 1:
                self._answer(503, {"error": "rates not published yet, try again"})
            else:
                self._answer(200, {"base": "EUR", "rates": {"USD": 1.08, "GBP": 0.85}})
        elif self.path == "/vendors":
            self._answer(200, {"vendors": [{"id": 1, "name": "Acme Paper"}, {"id": 2, "name": "Globex"}]})
        else:
            self._answer(404, {"error": "no such resource"})

    def do_POST(self) -> None:
        length = min(int(self.headers.get("Content-Length") or 0), 65536)
        self.rfile.read(length)
        if self.path == "/bookings":
            self._answer(201, {"booked": True, "idempotency_key": self.headers.get("Idempotency-Key", "")})
        else:
            self._answer(404, {"error": "no such resource"})

    def log_message(self, format: str, *args) -> None:
        print(f"demo billing service: {format % args}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8765)
    args = parser.parse_args()
    try:
        server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    except OSError as error:
        raise SystemExit(
            f"demo billing service: cannot listen on 127.0.0.1:{args.port} ({error.strerror}); "
            "set DEMO_SERVICE_PORT to a free port and run make run again."
        ) from None
    print(f"demo billing service on http://127.0.0.1:{args.port}/", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
