#!/usr/bin/env python3
"""Keep-alive HTTP/1.1 load on loopback for measuring live capture.

    http_load.py server PORT               fixed 200 response with a small JSON body
    http_load.py client PORT SECONDS CONNS [RATE]
                                           prints requests sent and answered, and req/s;
                                           RATE caps the total requests per second

Protocol-level asyncio on both sides (no HTTP library), so one core
serves tens of thousands of requests per second. Each connection sends
DEPTH pipelined requests (env HTTP_LOAD_DEPTH, default 16; 1 is no pipelining), waits for their responses, and repeats.
"""
import asyncio
import os
import sys
import time

BODY = b'{"id":42,"name":"load","tags":["a","b"]}'
RESPONSE = (b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
            b"Content-Length: " + str(len(BODY)).encode() + b"\r\n\r\n" + BODY)
REQUEST = b"GET /api/items/42 HTTP/1.1\r\nHost: load\r\nAccept: application/json\r\n\r\n"
DEPTH = int(os.environ.get("HTTP_LOAD_DEPTH", "16"))


class Server(asyncio.Protocol):
    def connection_made(self, transport):
        self.t = transport
        self.buf = b""

    def data_received(self, data):
        self.buf += data
        n = self.buf.count(b"\r\n\r\n")
        if n:
            self.buf = self.buf[self.buf.rfind(b"\r\n\r\n") + 4:]
            self.t.write(RESPONSE * n)


async def serve(port):
    loop = asyncio.get_running_loop()
    server = await loop.create_server(Server, "127.0.0.1", port, backlog=1024)
    print("ready", flush=True)
    async with server:
        await server.serve_forever()


async def one(port, until, counts, interval):
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    marker = b"HTTP/1.1 200 OK"
    next_batch = time.monotonic()
    while time.monotonic() < until:
        if interval:
            next_batch += interval
            delay = next_batch - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
        writer.write(REQUEST * DEPTH)
        counts[0] += DEPTH
        seen, buf = 0, b""
        while seen < DEPTH:
            data = await reader.read(65536)
            if not data:
                return
            buf += data
            seen = buf.count(marker)
        counts[1] += seen
    writer.close()
    await writer.wait_closed()


async def load(port, seconds, conns, rate):
    counts = [0, 0]
    interval = DEPTH * conns / rate if rate else 0
    start = time.monotonic()
    await asyncio.gather(*(one(port, start + seconds, counts, interval) for _ in range(conns)))
    elapsed = time.monotonic() - start
    print(f"sent {counts[0]} answered {counts[1]} in {elapsed:.2f} s: {counts[1] / elapsed:.0f} req/s")


if __name__ == "__main__":
    if sys.argv[1] == "server":
        asyncio.run(serve(int(sys.argv[2])))
    else:
        rate = float(sys.argv[5]) if len(sys.argv) > 5 else 0
        asyncio.run(load(int(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4]), rate))
