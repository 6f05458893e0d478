# Chunk extensions and a trailer section; the next exchange must still frame.
>>>
GET /stream HTTP/1.1
Host: h

<<<
HTTP/1.1 200 OK
Transfer-Encoding: chunked
Trailer: X-Checksum

5;name=value
hello
6;a=b;c="d"
 world
0
X-Checksum: abc

>>>
GET /next HTTP/1.1
Host: h

<<<
HTTP/1.1 200 OK
Content-Length: 0

=== expect
GET /stream -> 200 resp_body=chunked:11/64
GET /next -> 200 resp_body=cl:0
