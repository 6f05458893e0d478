# Three request/response rounds on one connection.
>>>
GET /a HTTP/1.1
Host: h

<<<
HTTP/1.1 200 OK
Content-Length: 1

A\
>>>
GET /b HTTP/1.1
Host: h

<<<
HTTP/1.1 404 Not Found
Content-Length: 2

no\
>>>
GET /c HTTP/1.1
Host: h

<<<
HTTP/1.1 204 No Content

=== expect
GET /a -> 200 resp_body=cl:1
GET /b -> 404 resp_body=cl:2
GET /c -> 204
