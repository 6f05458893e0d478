# Three pipelined requests before any response.
>>>
GET /1 HTTP/1.1
Host: h

GET /2 HTTP/1.1
Host: h

GET /3 HTTP/1.1
Host: h

<<<
HTTP/1.1 200 OK
Content-Length: 3

one\
HTTP/1.1 200 OK
Transfer-Encoding: chunked

4
abcd
0

HTTP/1.1 200 OK
Content-Length: 0

=== expect
GET /1 -> 200 resp_body=cl:3
GET /2 -> 200 resp_body=chunked:4/14
GET /3 -> 200 resp_body=cl:0
