"""A TCP proxy on 127.0.0.1 that adds network latency between a client and a local server.

Real AWS is some milliseconds away; the local emulator answers in well under one. Without the
kernel's ``netem`` we add the distance in user space: every chunk of bytes read from one side is
stamped with its arrival time and written to the other side ``delay`` seconds later, in order.
Both directions are delayed, so a request/response round trip costs ``2 * delay`` more (10 ms each
way -> +20 ms), independently for every connection. Chunks are not held back behind each other:
like a long link, a connection keeps sending while earlier bytes are still "in flight", so the
added latency does not depend on how an HTTP client splits headers and body into writes.

The proxy runs an asyncio loop in a background daemon thread::

    with LatencyProxy("127.0.0.1", emulator_port, delay=0.010) as proxy:
        s3 = boto3.client("s3", endpoint_url=proxy.endpoint)

or in its own process, so that the proxy does not compete for the GIL with the client being
measured (:func:`spawn`, or ``python -m benchmarks.latency_proxy --target-port 4577 --delay-ms 10``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

CHUNK = 64 * 1024


class LatencyProxy:
    """Forward 127.0.0.1:``port`` to ``target_host:target_port``, delaying each direction by ``delay`` s."""

    def __init__(self, target_host: str, target_port: int, delay: float = 0.010, port: int = 0):
        self.target_host = target_host
        self.target_port = target_port
        self.delay = delay
        self.port = port
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: asyncio.base_events.Server | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._connections: set[asyncio.Task] = set()

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def _pump(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Copy reader -> writer, each chunk leaving ``delay`` after it arrived, order preserved."""
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()

        async def send() -> None:
            while True:
                due, data = await queue.get()
                wait = due - loop.time()
                if wait > 0:
                    await asyncio.sleep(wait)
                if not data:
                    break
                writer.write(data)
                await writer.drain()

        sender = asyncio.ensure_future(send())
        try:
            while True:
                data = await reader.read(CHUNK)
                queue.put_nowait((loop.time() + self.delay, data))
                if not data:
                    break
            await sender
        except (ConnectionError, OSError):
            pass
        finally:
            sender.cancel()
            if writer.can_write_eof():
                try:
                    writer.write_eof()
                except (ConnectionError, OSError):
                    pass

    async def _handle(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        self._connections.add(task)  # the loop holds tasks only weakly
        task.add_done_callback(self._connections.discard)
        try:
            server_reader, server_writer = await asyncio.open_connection(self.target_host, self.target_port)
        except OSError:
            client_writer.close()
            return
        try:
            await asyncio.gather(
                self._pump(client_reader, server_writer),
                self._pump(server_reader, client_writer),
                return_exceptions=True,
            )
        except asyncio.CancelledError:
            pass  # proxy shutting down
        finally:
            for writer in (client_writer, server_writer):
                writer.close()

    async def _serve(self) -> None:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", self.port, backlog=1024)
        self.port = self._server.sockets[0].getsockname()[1]
        self._ready.set()
        try:
            await self._server.serve_forever()
        except asyncio.CancelledError:
            pass

    def _run(self) -> None:
        self._loop = asyncio.new_event_loop()
        try:
            self._loop.run_until_complete(self._serve())
            pending = asyncio.all_tasks(self._loop)
            self._loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
        except BaseException as exc:  # surfaced to start() through _error
            self._error = exc
            self._ready.set()
        finally:
            self._loop.close()

    def start(self) -> LatencyProxy:
        """Start listening (in a daemon thread); ``port``/``endpoint`` are valid on return."""
        self._thread = threading.Thread(target=self._run, name="latency-proxy", daemon=True)
        self._thread.start()
        if not self._ready.wait(10):
            raise TimeoutError("latency proxy did not start within 10 s")
        if self._error is not None:
            raise RuntimeError(f"latency proxy failed to start: {self._error}") from self._error
        return self

    def _shutdown(self) -> None:
        """Runs in the loop: stop accepting, drop open connections."""
        self._server.close()
        for task in asyncio.all_tasks(self._loop):
            task.cancel()

    def stop(self) -> None:
        if self._thread is not None and self._thread.is_alive() and self._loop is not None:
            self._loop.call_soon_threadsafe(self._shutdown)
            self._thread.join(10)

    def __enter__(self) -> LatencyProxy:
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()


@contextlib.contextmanager
def spawn(target_port: int, delay: float = 0.010, target_host: str = "127.0.0.1") -> Iterator[str]:
    """Run the proxy in a child process; yields its endpoint URL, stops the process on exit."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "benchmarks.latency_proxy", "--target-host", target_host,
         "--target-port", str(target_port), "--delay-ms", str(delay * 1000)],
        cwd=Path(__file__).resolve().parents[1], stdout=subprocess.PIPE, text=True,
    )
    try:
        line = proc.stdout.readline()
        if not line.startswith("latency proxy http://"):
            raise RuntimeError(f"latency proxy did not start: {line!r}")
        yield line.split()[2]
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="TCP proxy adding latency each way (see module docstring).")
    parser.add_argument("--target-host", default="127.0.0.1")
    parser.add_argument("--target-port", type=int, required=True)
    parser.add_argument("--port", type=int, default=0, help="listen port on 127.0.0.1 (0 = any free port)")
    parser.add_argument("--delay-ms", type=float, default=10.0, help="delay per direction in milliseconds")
    args = parser.parse_args(argv)
    with LatencyProxy(args.target_host, args.target_port, args.delay_ms / 1000, args.port) as proxy:
        print(f"latency proxy {proxy.endpoint} -> {args.target_host}:{args.target_port} "
              f"(+{args.delay_ms:g} ms each way)", flush=True)
        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        try:
            stop.wait()
        except KeyboardInterrupt:
            pass
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
