>>>
GET / HTTP/1.1
Host: h
Connection: Upgrade, HTTP2-Settings
Upgrade: h2c
HTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA

<<<
HTTP/1.1 101 Switching Protocols
Connection: Upgrade
Upgrade: h2c

\x00\x00\x00\x04\x00\x00\x00\x00\x00\
>>>
PRI * HTTP/2.0

SM

=== expect
GET / -> 101 tunnel=h2c
