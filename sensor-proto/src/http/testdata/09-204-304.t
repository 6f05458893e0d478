# 204 and 304 have no body, whatever their headers say.
>>>
GET /a HTTP/1.1
Host: h

GET /b HTTP/1.1
Host: h
If-None-Match: "x"

GET /c HTTP/1.1
Host: h

<<<
HTTP/1.1 204 No Content

HTTP/1.1 304 Not Modified
Content-Length: 50
ETag: "x"

HTTP/1.1 200 OK
Content-Length: 1

z\
=== expect
GET /a -> 204
GET /b -> 304
GET /c -> 200 resp_body=cl:1
