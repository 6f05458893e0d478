# No Content-Length, no chunking: the body runs until the server's FIN.
>>>
GET /old HTTP/1.1
Host: h

<<<
HTTP/1.1 200 OK
Content-Type: text/plain

line one
line two\
!!! close-server
=== expect
GET /old -> 200 resp_body=close:18
