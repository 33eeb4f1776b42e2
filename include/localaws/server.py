"""Run the local AWS emulator: ``python -m include.localaws.server [--port N]``.

Binds 127.0.0.1 only. Environment: ``LOCALAWS_PORT`` (default 4577),
``LOCALAWS_EXPORT_SECONDS`` (how long a DynamoDB export stays IN_PROGRESS),
``LOCALAWS_CLOUDTRAIL_DELIVERY_SECONDS`` (how often recorded CloudTrail events are delivered, default 60).
Emulator-only control endpoints live under ``/_localaws/`` (see ``fixes/control.py``).
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading

from include.localaws import DEFAULT_PORT


def make_app():
    """moto's WSGI app with every fidelity fix applied."""
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app

    from include.localaws.fixes import apply_all, cloudtrail_recording, control

    apply_all()
    return control.wrap(cloudtrail_recording.wrap(DomainDispatcherApplication(create_backend_app)))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=int(os.environ.get("LOCALAWS_PORT", DEFAULT_PORT)))
    args = parser.parse_args(argv)

    from moto.moto_server.werkzeug_app import MotoRequestHandler
    from werkzeug.serving import make_server

    server = make_server(args.host, args.port, make_app(), threaded=True, request_handler=MotoRequestHandler)
    stop = threading.Event()

    def _stop(*_):
        stop.set()
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    print(f"localaws listening on http://{args.host}:{args.port}", flush=True)
    server.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
