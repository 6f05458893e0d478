# After 101 nothing is parsed as HTTP any more, in either direction.
>>>
GET /chat HTTP/1.1
Host: h
Upgrade: websocket
Connection: Upgrade
Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==
Sec-WebSocket-Version: 13

<<<
HTTP/1.1 101 Switching Protocols
Upgrade: websocket
Connection: Upgrade
Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=

\x81\x05hello\
>>>
\x81\x85\x00\x00\x00\x00hello\
GET /not-parsed HTTP/1.1
Host: h

<<<
HTTP/1.1 200 OK
Content-Length: 0

=== expect
GET /chat -> 101 tunnel=websocket
