>>>
POST /upload HTTP/1.1
Host: h
Transfer-Encoding: chunked

3
abc
0

<<<
HTTP/1.1 200 OK
Content-Length: 2

ok\
=== expect
POST /upload -> 200 req_body=chunked:3/13 resp_body=cl:2
