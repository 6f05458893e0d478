#!/usr/bin/env python3
"""Demo JSON REST API used to record samples/demo-api.pcap.

Python 3 standard library only.  Listens on 127.0.0.1:PORT (HTTP/1.1, keep-alive) and prints
"listening on 127.0.0.1:PORT" once it accepts connections.  Every secret in here is a fake
demo value; `--print-secrets` lists the ones that travel on the wire.

Routes (all under /api/v1):
  GET    /health                      no auth; HEAD supported
  POST   /login                       form-urlencoded username/password -> JWT + Set-Cookie
  GET    /users?page=&per_page=       GET /users/me   GET /users/{id}
  POST   /users (JSON, 201)           PATCH /users/{id} (JSON)   DELETE /users/{id} (204)
  GET    /orders?status=&page=        GET /orders/{uuid}   POST /orders (JSON, 201)
  GET    /products/by-slug/{slug}     ETag; 304 on a matching If-None-Match
  GET    /reports/export              CSV, Transfer-Encoding: chunked (written by hand)
  GET    /catalog                     JSON, Content-Encoding: gzip when accepted
Auth on every route except /health and /login: Bearer JWT (HS256), X-API-Key header,
api_key query parameter, session cookie, or Basic.  Missing/bad auth -> 401; unknown -> 404.
"""
import argparse
import base64
import gzip
import hashlib
import hmac
import json
import random
import sys
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

# ----------------------------------------------------------------- fake demo credentials
USERNAME = "demo"
PASSWORD = "demo-password-123"
API_KEY = "demo-api-key-7f3a9c2e5b1d4068"
QUERY_API_KEY = "demo-query-key-5e8b2a71c94f3d06"
JWT_KEY = b"demo-jwt-signing-key-not-a-real-secret"  # never sent on the wire
SESSION_ID = "demo-session-" + hmac.new(JWT_KEY, b"session:demo", hashlib.sha256).hexdigest()[:32]
JWT_ISS = "https://auth.demo.example"
JWT_AUD = "demo-api"
JWT_IAT = 1767225600  # 2026-01-01T00:00:00Z: fixed so the token (and the pcap) is reproducible
JWT_EXP = 4102444800  # 2100-01-01T00:00:00Z


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64url_decode(text):
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def make_jwt(sub):
    header = {"alg": "HS256", "typ": "JWT"}
    claims = {"iss": JWT_ISS, "aud": JWT_AUD, "sub": sub, "iat": JWT_IAT, "exp": JWT_EXP,
              "scope": "users:read users:write orders:read"}
    signing_input = (b64url(json.dumps(header, separators=(",", ":")).encode()) + "."
                     + b64url(json.dumps(claims, separators=(",", ":")).encode()))
    sig = hmac.new(JWT_KEY, signing_input.encode(), hashlib.sha256).digest()
    return signing_input + "." + b64url(sig)


def verify_jwt(token, now=JWT_IAT + 60):
    try:
        signing_input, sig = token.rsplit(".", 1)
        expected = hmac.new(JWT_KEY, signing_input.encode(), hashlib.sha256).digest()
        if not hmac.compare_digest(expected, b64url_decode(sig)):
            return None
        claims = json.loads(b64url_decode(signing_input.split(".", 1)[1]))
    except (ValueError, IndexError):
        return None
    if claims.get("aud") != JWT_AUD or claims.get("iss") != JWT_ISS or claims.get("exp", 0) < now:
        return None
    return claims.get("sub")


ACCESS_TOKEN = make_jwt("user-1")
BASIC_CREDENTIALS = base64.b64encode(f"{USERNAME}:{PASSWORD}".encode()).decode()


def secrets_on_the_wire():
    """Exact strings present in the recorded traffic that must never leave the sensor."""
    return [PASSWORD, "wrong-password-456", API_KEY, QUERY_API_KEY, SESSION_ID, ACCESS_TOKEN,
            BASIC_CREDENTIALS, "4111111111111111", "alice.demo@example.com",
            "carol.new@example.com", "+1-555-0100"]


# ----------------------------------------------------------------- demo data
RNG = random.Random(7)
FIRST = ["alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi", "ivan", "judy",
         "mallory", "oscar"]
USERS = {}
for i, name in enumerate(FIRST, start=1):
    USERS[i] = {"id": i, "username": name, "email": f"{name}.demo@example.com",
                "role": "admin" if i == 1 else "member", "created_at": f"2025-0{1 + i % 9}-1{i % 10}T09:00:00Z"}
USERS[1]["phone"] = "+1-555-0100"
ORDER_STATUSES = ["pending", "paid", "shipped", "delivered", "cancelled"]
ORDERS = {}
for i in range(40):
    oid = str(uuid.UUID(int=RNG.getrandbits(128), version=4))
    ORDERS[oid] = {"id": oid, "user_id": 1 + i % 12, "status": ORDER_STATUSES[i % 5],
                   "total_cents": RNG.randrange(500, 50000), "currency": "EUR",
                   "items": [{"sku": f"SKU-{RNG.randrange(1000, 9999)}", "qty": 1 + i % 3}]}
PRODUCTS = {slug: {"slug": slug, "name": slug.replace("-", " ").title(), "price_cents": 1000 + 137 * n,
                   "tags": ["demo", "catalog"], "stock": 3 * n}
            for n, slug in enumerate(["blue-widget", "red-widget", "steel-gear", "copper-wire",
                                      "oak-table", "linen-shirt", "ceramic-mug", "desk-lamp"], 1)}
LOCK = threading.Lock()
NEXT_USER_ID = [100]


def etag_of(body):
    return '"' + hashlib.sha1(body).hexdigest()[:16] + '"'


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "demo-api/1.0"
    sys_version = ""

    def log_message(self, format, *args):  # noqa: A002 - signature fixed by the base class
        pass

    # --------------------------------------------------------- plumbing
    def read_body(self):
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            out = b""
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip(), 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return out
                out += self.rfile.read(size)
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def send(self, status, obj=None, headers=(), body=None, content_type="application/json"):
        if obj is not None:
            body = json.dumps(obj, separators=(",", ":")).encode()
        self.send_response(status)
        for k, v in headers:
            self.send_header(k, v)
        if status in (204, 304):
            self.end_headers()
            return
        body = body or b""
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def error(self, status, message, headers=()):
        self.send(status, {"error": message, "status": status}, headers)

    def authenticate(self, query):
        auth = self.headers.get("Authorization", "")
        if auth.startswith("Bearer "):
            return verify_jwt(auth[7:])
        if auth.startswith("Basic "):
            try:
                user, _, pw = base64.b64decode(auth[6:]).decode().partition(":")
            except ValueError:
                return None
            return "user-1" if (user, pw) == (USERNAME, PASSWORD) else None
        if self.headers.get("X-API-Key") == API_KEY:
            return "service-key"
        if query.get("api_key") == [QUERY_API_KEY]:
            return "query-key"
        cookies = dict(c.strip().split("=", 1) for c in self.headers.get("Cookie", "").split(";") if "=" in c)
        if cookies.get("session") == SESSION_ID:
            return "user-1"
        return None

    def json_body(self):
        if not self.headers.get("Content-Type", "").startswith("application/json"):
            return None
        try:
            return json.loads(self.read_body() or b"null")
        except ValueError:
            return None

    # --------------------------------------------------------- dispatch
    def do_GET(self):
        self.dispatch()

    def do_HEAD(self):
        self.dispatch()

    def do_POST(self):
        self.dispatch()

    def do_PATCH(self):
        self.dispatch()

    def do_DELETE(self):
        self.dispatch()

    def dispatch(self):
        url = urlsplit(self.path)
        query = parse_qs(url.query)
        parts = [p for p in url.path.split("/") if p]
        if parts[:2] != ["api", "v1"]:
            return self.error(404, "not found")
        parts = parts[2:]
        m = self.command
        if parts == ["health"]:
            if m not in ("GET", "HEAD"):
                return self.error(405, "method not allowed", [("Allow", "GET, HEAD")])
            return self.send(200, {"status": "ok", "version": "1.0.0"})
        if m == "HEAD":
            return self.error(405, "method not allowed")
        if parts == ["login"] and m == "POST":
            return self.login()
        sub = self.authenticate(query)
        known = parts[:1] in (["users"], ["orders"], ["products"], ["reports"], ["catalog"])
        if not known:
            self.read_body()
            return self.error(404, "not found")
        if sub is None:
            self.read_body()
            return self.error(401, "authentication required",
                              [("WWW-Authenticate", 'Bearer realm="demo-api"')])
        handler = getattr(self, "r_" + parts[0])
        return handler(m, parts[1:], query, sub)

    # --------------------------------------------------------- routes
    def login(self):
        form = parse_qs(self.read_body().decode())
        if form.get("username") != [USERNAME] or form.get("password") != [PASSWORD]:
            return self.error(401, "invalid credentials")
        return self.send(200, {"access_token": ACCESS_TOKEN, "token_type": "Bearer", "expires_in": 3600},
                         [("Set-Cookie", f"session={SESSION_ID}; Path=/; HttpOnly; SameSite=Lax"),
                          ("Cache-Control", "no-store")])

    def r_users(self, m, rest, query, sub):
        with LOCK:
            if not rest and m == "GET":
                page = int(query.get("page", ["1"])[0])
                per_page = int(query.get("per_page", ["5"])[0])
                users = sorted(USERS.values(), key=lambda u: u["id"])
                items = users[(page - 1) * per_page: page * per_page]
                return self.send(200, {"items": items, "page": page, "per_page": per_page, "total": len(users)})
            if not rest and m == "POST":
                body = self.json_body()
                if not isinstance(body, dict) or "username" not in body or "email" not in body:
                    return self.error(400, "username and email are required")
                uid = NEXT_USER_ID[0]
                NEXT_USER_ID[0] += 1
                user = {"id": uid, "username": body["username"], "email": body["email"], "role": "member",
                        "created_at": "2026-01-01T00:00:00Z"}
                USERS[uid] = user
                return self.send(201, user, [("Location", f"/api/v1/users/{uid}")])
            if rest == ["me"] and m == "GET":
                return self.send(200, dict(USERS[1], subject=sub))
            if len(rest) == 1 and rest[0].isdigit():
                uid = int(rest[0])
                if m == "PATCH":
                    body = self.json_body()
                    if uid not in USERS:
                        return self.error(404, "no such user")
                    if not isinstance(body, dict):
                        return self.error(400, "JSON object expected")
                    USERS[uid].update({k: v for k, v in body.items() if k in ("email", "role", "username")})
                    return self.send(200, USERS[uid])
                if uid not in USERS:
                    return self.error(404, "no such user")
                if m == "GET":
                    return self.send(200, USERS[uid])
                if m == "DELETE":
                    del USERS[uid]
                    return self.send(204)
            self.read_body()
            return self.error(405 if rest else 404, "not supported")

    def r_orders(self, m, rest, query, sub):
        if not rest and m == "GET":
            status = query.get("status", [None])[0]
            page = int(query.get("page", ["1"])[0])
            items = [o for o in ORDERS.values() if status in (None, o["status"])]
            return self.send(200, {"items": items[(page - 1) * 4: page * 4], "page": page, "total": len(items)})
        if not rest and m == "POST":
            body = self.json_body()
            if not isinstance(body, dict) or "items" not in body:
                return self.error(400, "items required")
            oid = str(uuid.uuid5(uuid.NAMESPACE_URL, json.dumps(body, sort_keys=True)))
            order = {"id": oid, "user_id": 1, "status": "pending", "items": body["items"],
                     "payment": {"brand": "visa", "last4": "1111"}}
            return self.send(201, order, [("Location", f"/api/v1/orders/{oid}")])
        if len(rest) == 1 and m == "GET":
            order = ORDERS.get(rest[0])
            return self.send(200, order) if order else self.error(404, "no such order")
        self.read_body()
        return self.error(405, "not supported")

    def r_products(self, m, rest, query, sub):
        if len(rest) == 2 and rest[0] == "by-slug" and m == "GET":
            product = PRODUCTS.get(rest[1])
            if product is None:
                return self.error(404, "no such product")
            body = json.dumps(product, separators=(",", ":")).encode()
            tag = etag_of(body)
            if self.headers.get("If-None-Match") == tag:
                return self.send(304, headers=[("ETag", tag)])
            return self.send(200, body=body, headers=[("ETag", tag), ("Cache-Control", "max-age=60")])
        return self.error(404, "not found")

    def r_reports(self, m, rest, query, sub):
        if rest != ["export"] or m != "GET":
            return self.error(404, "not found")
        self.send_response(200)
        self.send_header("Content-Type", "text/csv")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        rows = ["order_id,status,total_cents\r\n"] + [
            f"{o['id']},{o['status']},{o['total_cents']}\r\n" for o in list(ORDERS.values())[:12]]
        for i in range(0, len(rows), 3):
            chunk = "".join(rows[i:i + 3]).encode()
            self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
        self.wfile.write(b"0\r\n\r\n")

    def r_catalog(self, m, rest, query, sub):
        if rest or m != "GET":
            return self.error(404, "not found")
        body = json.dumps({"products": list(PRODUCTS.values())}, separators=(",", ":")).encode()
        if "gzip" in self.headers.get("Accept-Encoding", ""):
            return self.send(200, body=gzip.compress(body, mtime=0),
                             headers=[("Content-Encoding", "gzip"), ("Vary", "Accept-Encoding")])
        return self.send(200, body=body)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--port", type=int, default=8080)
    ap.add_argument("--print-secrets", action="store_true", help="print the on-the-wire secrets and exit")
    args = ap.parse_args()
    if args.print_secrets:
        print("\n".join(secrets_on_the_wire()))
        return
    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    server.daemon_threads = True
    print(f"listening on 127.0.0.1:{args.port}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    sys.exit(0)


if __name__ == "__main__":
    main()
