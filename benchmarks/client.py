"""A small closed-loop HTTP/1.1 keep-alive load generator (sockets and ``selectors``).

Every connection has exactly one request in flight; when its response is complete the
next request goes out on the same connection. Requests are prepared bytes, responses
are parsed just enough (status, ``Content-Length``), so the client costs a few tens of
microseconds per request and needs no thread. It runs in the benchmark's own process,
apart from gunicorn's.
"""

from __future__ import annotations

import json
import selectors
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field

#: ``make_request(connection_index) -> bytes`` or None when the pool is used up.
RequestFactory = Callable[[int], "bytes | None"]


class ProtocolError(RuntimeError):
    """The server answered something this client does not expect."""


def http_request(
    method: str,
    path: str,
    *,
    host: str,
    body: object | None = None,
    token: str | None = None,
    cookie: str | None = None,
) -> bytes:
    """The bytes of one request; ``body`` is sent as JSON."""
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host}"]
    if token is not None:
        lines.append(f"Authorization: Bearer {token}")
    if cookie is not None:
        lines.append(f"Cookie: {cookie}")
    payload = b""
    if body is not None:
        payload = json.dumps(body, separators=(",", ":")).encode()
        lines.append("Content-Type: application/json")
    lines.append(f"Content-Length: {len(payload)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + payload


@dataclass
class Response:
    status: int
    body: bytes
    close: bool


def _parse(buffer: bytearray) -> tuple[Response, int] | None:
    """A complete response at the start of ``buffer`` and its length, or None."""
    end = buffer.find(b"\r\n\r\n")
    if end < 0:
        return None
    head = bytes(buffer[:end]).decode("latin-1").split("\r\n")
    parts = head[0].split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/1."):
        raise ProtocolError(f"not an HTTP response: {head[0]!r}")
    length = None
    close = False
    for line in head[1:]:
        name, _, value = line.partition(":")
        name = name.strip().lower()
        if name == "content-length":
            length = int(value)
        elif name == "transfer-encoding":
            raise ProtocolError("chunked responses are not supported by this client")
        elif name == "connection" and value.strip().lower() == "close":
            close = True
    if length is None:
        raise ProtocolError("response without Content-Length")
    total = end + 4 + length
    if len(buffer) < total:
        return None
    return Response(int(parts[1]), bytes(buffer[end + 4 : total]), close), total


class Connection:
    """One keep-alive connection."""

    def __init__(self, host: str, port: int, timeout: float = 30.0) -> None:
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buffer = bytearray()
        self.sent_at = 0.0
        self.series = 0

    def request(self, data: bytes) -> Response:
        """Send one request and wait (blocking, with the socket's timeout) for the answer."""
        self.sock.sendall(data)
        while True:
            parsed = _parse(self.buffer)
            if parsed is not None:
                response, used = parsed
                del self.buffer[:used]
                return response
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ProtocolError("connection closed by the server")
            self.buffer += chunk

    def close(self) -> None:
        self.sock.close()


def open_balanced(
    host: str, port: int, *, workers: int, per_worker: int, timeout: float = 20.0
) -> list[Connection]:
    """``workers * per_worker`` connections, ``per_worker`` held by each gunicorn worker.

    A worker keeps every connection it accepts, so a lopsided spread would leave a worker
    idle; connections that land on a full worker are closed and opened again (bounded
    in attempts and time). Raises if the spread cannot be reached.
    """
    get_pid = f"GET /bare/pid HTTP/1.1\r\nHost: {host}\r\n\r\n".encode()
    held: dict[int, list[Connection]] = {}
    deadline = time.monotonic() + timeout
    attempts = 0
    while sum(len(c) for c in held.values()) < workers * per_worker:
        attempts += 1
        if time.monotonic() > deadline or attempts > 200 * workers * per_worker:
            for connections in held.values():
                for connection in connections:
                    connection.close()
            raise RuntimeError(
                f"could not spread {workers * per_worker} connections over {workers} workers"
                f" (got {sorted(len(c) for c in held.values())})"
            )
        connection = Connection(host, port)
        response = connection.request(get_pid)
        if response.status != 200:
            connection.close()
            raise ProtocolError(f"GET /bare/pid answered {response.status}")
        pid = json.loads(response.body)["pid"]
        group = held.setdefault(pid, [])
        if len(group) < per_worker:
            group.append(connection)
        else:
            connection.close()
            if not group:
                del held[pid]
            time.sleep(0.005)
    return [c for group in held.values() for c in group]


@dataclass
class PhaseResult:
    """What one series measured in one timed phase."""

    latencies: list[float] = field(default_factory=list)
    errors: int = 0
    first_error: str = ""
    exhausted: bool = False


#: One lane: the (connection, series) steps it cycles through, one request at a time.
Lane = list[tuple[Connection, int]]


def alternating(connections: list[Connection], series: int) -> list[Lane]:
    """One lane per connection, cycling through ``series`` series; lane ``i`` starts at
    series ``i`` so that, at any moment, the lanes are on different series."""
    return [
        [(connection, (i + k) % series) for k in range(series)]
        for i, connection in enumerate(connections)
    ]


def run_mix(
    lanes: list[Lane],
    factories: list[RequestFactory],
    *,
    duration: float,
    drain_timeout: float = 60.0,
) -> list[PhaseResult]:
    """Drive the lanes for ``duration`` seconds. Each lane has one request in flight:
    when its response is complete, the lane's next step sends the next request, made
    by ``factories[series](lane_index)``, on that step's connection. So the series are
    interleaved request by request and meet the same moments, workers and neighbours.
    Stops early when a factory runs out of requests, then waits (bounded) for the
    requests still in flight.

    Only responses completed before the deadline are timed; 2xx is success, anything
    else an error (the first one's status and body are kept).
    """
    results = [PhaseResult() for _ in factories]
    selector = selectors.DefaultSelector()
    in_flight = 0
    stopped = False
    deadline = time.perf_counter() + duration
    step = [0] * len(lanes)

    def send(lane: int) -> None:
        nonlocal in_flight, stopped
        if stopped or time.perf_counter() >= deadline:
            return
        connection, series = lanes[lane][step[lane]]
        data = factories[series](lane)
        if data is None:
            results[series].exhausted = stopped = True
            return
        step[lane] = (step[lane] + 1) % len(lanes[lane])
        connection.series = series
        in_flight += 1
        connection.sent_at = time.perf_counter()
        connection.sock.sendall(data)

    try:
        for lane, steps in enumerate(lanes):
            for connection in {id(c): c for c, _ in steps}.values():
                selector.register(connection.sock, selectors.EVENT_READ, (lane, connection))
        for lane in range(len(lanes)):
            send(lane)
        drain_deadline = deadline + drain_timeout
        while in_flight:
            now = time.perf_counter()
            if now > drain_deadline:
                raise ProtocolError(f"{in_flight} requests still unanswered after the drain")
            for key, _ in selector.select(timeout=min(1.0, drain_deadline - now)):
                lane, connection = key.data
                chunk = connection.sock.recv(65536)
                if not chunk:
                    raise ProtocolError("connection closed by the server")
                connection.buffer += chunk
                parsed = _parse(connection.buffer)
                if parsed is None:
                    continue
                response, used = parsed
                del connection.buffer[:used]
                done = time.perf_counter()
                in_flight -= 1
                result = results[connection.series]
                if done <= deadline:
                    result.latencies.append(done - connection.sent_at)
                if not 200 <= response.status < 300:
                    result.errors += 1
                    if not result.first_error:
                        text = response.body[:300].decode(errors="replace")
                        result.first_error = f"{response.status} {text}"
                if response.close:
                    raise ProtocolError("the server closed a keep-alive connection")
                send(lane)
    finally:
        selector.close()
    return results
