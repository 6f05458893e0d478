#!/usr/bin/env python3
"""Drives a known mix of requests against demo_server.py (standard library only).

Writes one line per exchange to --expected (default stdout):
    METHOD PATH STATUS BODY_LEN
PATH has no query string; BODY_LEN is the response body length in bytes after removing any
chunked transfer coding but before content decoding (the gzip bytes for /catalog); 0 for
HEAD, 204 and 304.  Interim 100 Continue responses are not separate lines.

The mix: keep-alive connections with several requests each, single-request connections,
one pipelined pair on a raw socket, one Expect: 100-continue upload, unauthenticated calls,
and all five auth styles.  Deterministic for a fixed seed.
"""
import argparse
import base64
import http.client
import json
import random
import socket
import sys
from urllib.parse import urlencode, urlsplit

PASSWORD = "demo-password-123"
API_KEY = "demo-api-key-7f3a9c2e5b1d4068"
QUERY_API_KEY = "demo-query-key-5e8b2a71c94f3d06"
BASIC = "Basic " + base64.b64encode(f"demo:{PASSWORD}".encode()).decode()
UA = "demo-client/1.0 (shadowtap sample)"


class Log:
    def __init__(self, out):
        self.out = out
        self.count = 0

    def add(self, method, url, status, body_len):
        self.out.write(f"{method} {urlsplit(url).path} {status} {body_len}\n")
        self.count += 1


class Client:
    """One keep-alive connection; every request is logged."""

    def __init__(self, port, log, headers=None):
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        self.log = log
        self.headers = {"User-Agent": UA, "Accept": "application/json"}
        self.headers.update(headers or {})

    def call(self, method, url, body=None, headers=None, **kw):
        h = dict(self.headers)
        h.update(headers or {})
        if isinstance(body, (dict, list)):
            body = json.dumps(body).encode()
            h.setdefault("Content-Type", "application/json")
        self.conn.request(method, url, body=body, headers=h, **kw)
        resp = self.conn.getresponse()
        data = resp.read()
        self.log.add(method, url, resp.status, len(data))
        return resp, data

    def json(self, method, url, body=None, headers=None):
        resp, data = self.call(method, url, body, headers)
        return resp.status, (json.loads(data) if data and resp.getheader("Content-Type", "").startswith("application/json") else None)

    def close(self):
        self.conn.close()


def read_response(sock_file):
    """Reads one HTTP/1.1 response with Content-Length from a socket file; returns (status, body)."""
    status_line = sock_file.readline()
    status = int(status_line.split()[1])
    length = 0
    while True:
        line = sock_file.readline()
        if line in (b"\r\n", b""):
            break
        name, _, value = line.decode().partition(":")
        if name.strip().lower() == "content-length":
            length = int(value.strip())
    return status, sock_file.read(length) if status not in (100, 204, 304) else b""


def main():
    ap = argparse.ArgumentParser(description="demo traffic for samples/demo-api.pcap")
    ap.add_argument("--port", type=int, default=8080)
    ap.add_argument("--expected", help="write the exchange log here (default: stdout)")
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    out = open(args.expected, "w") if args.expected else sys.stdout
    log = Log(out)
    rng = random.Random(args.seed)
    port = args.port

    # 1. Anonymous keep-alive session: health, HEAD, 401s, failed and successful login.
    c = Client(port, log)
    c.call("GET", "/api/v1/health")
    c.call("HEAD", "/api/v1/health")
    c.call("GET", "/api/v1/users")
    c.call("GET", "/api/v1/users/me")
    c.call("POST", "/api/v1/login", urlencode({"username": "demo", "password": "wrong-password-456"}),
           {"Content-Type": "application/x-www-form-urlencoded"})
    resp, data = c.call("POST", "/api/v1/login", urlencode({"username": "demo", "password": PASSWORD}),
                        {"Content-Type": "application/x-www-form-urlencoded"})
    token = json.loads(data)["access_token"]
    session = resp.getheader("Set-Cookie").split(";", 1)[0]
    c.close()

    # 2. Bearer JWT, keep-alive: reads.
    c = Client(port, log, {"Authorization": f"Bearer {token}"})
    c.call("GET", "/api/v1/users/me")
    for page in (1, 2, 3):
        c.call("GET", f"/api/v1/users?page={page}&per_page=5")
    for uid in (1, 3, 7, 12, 999):
        c.call("GET", f"/api/v1/users/{uid}")
    _, orders = c.json("GET", "/api/v1/orders?status=shipped&page=1")
    order_ids = [o["id"] for o in orders["items"]]
    c.close()

    # 3. X-API-Key, keep-alive: writes (create, patch incl. a chunked request body, delete).
    c = Client(port, log, {"X-API-Key": API_KEY})
    created = []
    for name in ("carol.new", "zed", "yolanda"):
        status, user = c.json("POST", "/api/v1/users", {"username": name, "email": f"{name}@example.com"})
        created.append(user["id"])
    c.json("POST", "/api/v1/users", {"username": "no-email"})  # 400
    c.json("PATCH", f"/api/v1/users/{created[0]}", {"role": "admin"})
    c.json("PATCH", f"/api/v1/users/{created[1]}", {"email": "zed@example.org"})
    c.call("PATCH", f"/api/v1/users/{created[2]}",
           iter([b'{"role":', b'"auditor"}']),
           {"Content-Type": "application/json", "Transfer-Encoding": "chunked"}, encode_chunked=True)
    c.call("PATCH", "/api/v1/users/4242", {"role": "admin"})  # 404
    c.call("DELETE", f"/api/v1/users/{created[1]}")
    c.call("DELETE", f"/api/v1/users/{created[2]}")
    c.call("GET", f"/api/v1/users/{created[1]}")  # 404 after delete
    c.call("DELETE", "/api/v1/users/4242")  # 404
    c.close()

    # 4. Session cookie, keep-alive: orders.
    c = Client(port, log, {"Cookie": f"{session}; theme=dark"})
    for status, page in (("pending", 1), ("pending", 2), ("paid", 1), ("delivered", 1)):
        c.call("GET", f"/api/v1/orders?status={status}&page={page}")
    c.call("GET", "/api/v1/orders?page=3")
    for oid in order_ids[:5]:
        c.call("GET", f"/api/v1/orders/{oid}")
    c.call("GET", "/api/v1/orders/00000000-0000-4000-8000-000000000000")  # 404
    c.call("POST", "/api/v1/orders", {"items": [{"sku": "SKU-1001", "qty": 2}],
                                       "payment": {"card_number": "4111111111111111", "exp": "12/30", "cvv": "123"},
                                       "contact": {"email": "alice.demo@example.com", "phone": "+1-555-0100"}})
    c.close()

    # 5. api_key query parameter, keep-alive: products with ETag revalidation (304).
    c = Client(port, log)
    etags = {}
    for slug in ("blue-widget", "steel-gear", "oak-table", "desk-lamp"):
        resp, _ = c.call("GET", f"/api/v1/products/by-slug/{slug}?api_key={QUERY_API_KEY}")
        etags[slug] = resp.getheader("ETag")
    for slug in ("blue-widget", "oak-table"):
        c.call("GET", f"/api/v1/products/by-slug/{slug}?api_key={QUERY_API_KEY}",
               headers={"If-None-Match": etags[slug]})
    c.call("GET", f"/api/v1/products/by-slug/no-such-thing?api_key={QUERY_API_KEY}")  # 404
    c.call("GET", "/api/v1/products/by-slug/blue-widget?api_key=wrong")  # 401
    c.close()

    # 6. Basic auth, keep-alive: gzip catalog and chunked CSV export.
    c = Client(port, log, {"Authorization": BASIC})
    c.call("GET", "/api/v1/catalog", headers={"Accept-Encoding": "gzip, deflate"})
    c.call("GET", "/api/v1/catalog")
    c.call("GET", "/api/v1/reports/export", headers={"Accept": "text/csv"})
    c.call("GET", "/api/v1/reports/export?format=csv&from=2026-01-01", headers={"Accept": "text/csv"})
    c.close()

    # 7. Single-request connections (Connection: close), some unauthenticated.
    for url, headers in (("/api/v1/health", {}),
                         ("/api/v1/nope", {}),
                         ("/api/v2/users", {}),
                         ("/api/v1/orders", {}),
                         ("/api/v1/users/2", {"X-API-Key": API_KEY}),
                         ("/api/v1/catalog", {"Authorization": BASIC, "Accept-Encoding": "gzip"})):
        c = Client(port, log, dict(headers, Connection="close"))
        c.call("GET", url)
        c.close()
    c = Client(port, log, {"Connection": "close"})
    c.call("DELETE", "/api/v1/health")  # 405
    c.close()

    # 8. A pipelined pair: two requests in one write on a raw socket, then both responses.
    urls = ["/api/v1/users/1", "/api/v1/users/2"]
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(b"".join(
            f"GET {u} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUser-Agent: {UA}\r\nX-API-Key: {API_KEY}\r\n"
            f"Accept: application/json\r\n\r\n".encode() for u in urls))
        f = s.makefile("rb")
        for u in urls:
            status, body = read_response(f)
            log.add("GET", u, status, len(body))

    # 9. Expect: 100-continue upload on a raw socket: headers, wait for 100, then the body.
    body = json.dumps({"username": "uma", "email": "uma@example.com"}).encode()
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(f"POST /api/v1/users HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUser-Agent: {UA}\r\n"
                  f"Authorization: Bearer {token}\r\nContent-Type: application/json\r\n"
                  f"Content-Length: {len(body)}\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n".encode())
        f = s.makefile("rb")
        status, _ = read_response(f)
        assert status == 100, status
        s.sendall(body)
        status, data = read_response(f)
        log.add("POST", "/api/v1/users", status, len(data))

    # 10. A longer keep-alive connection with a seeded random mix of reads.
    c = Client(port, log, {"Authorization": f"Bearer {token}"})
    for _ in range(24):
        r = rng.random()
        if r < 0.3:
            c.call("GET", f"/api/v1/users/{rng.randrange(1, 14)}")
        elif r < 0.55:
            c.call("GET", f"/api/v1/orders/{rng.choice(order_ids)}")
        elif r < 0.75:
            c.call("GET", f"/api/v1/orders?status={rng.choice(['paid', 'shipped', 'cancelled'])}&page={rng.randrange(1, 3)}")
        elif r < 0.9:
            c.call("GET", f"/api/v1/products/by-slug/{rng.choice(['red-widget', 'copper-wire', 'linen-shirt', 'ceramic-mug'])}")
        else:
            c.call("GET", "/api/v1/users/me")
    c.close()

    if out is not sys.stdout:
        out.close()
    print(f"demo_client: {log.count} exchanges", file=sys.stderr)


if __name__ == "__main__":
    main()
