>>>
GET /a HTTP/1.1
Host: h

<<<
HTTP/1.1 200 OK
Content-Length: 0

>>>
GET /b HTTP/1.1
Host: h

=== expect
GET /a -> 200 resp_body=cl:0
GET /b -> -
