# A HEAD response announces a length but carries no body.
>>>
HEAD /file HTTP/1.1
Host: h

<<<
HTTP/1.1 200 OK
Content-Length: 1000

>>>
GET /file2 HTTP/1.1
Host: h

<<<
HTTP/1.1 200 OK
Content-Length: 2

hi\
=== expect
HEAD /file -> 200
GET /file2 -> 200 resp_body=cl:2
