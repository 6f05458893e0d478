# A single GET answered with a Content-Length body.
>>>
GET /index.html HTTP/1.1
Host: example.com
User-Agent: test

<<<
HTTP/1.1 200 OK
Content-Type: text/plain
Content-Length: 12

hello world!\
=== expect
GET /index.html -> 200 resp_body=cl:12
