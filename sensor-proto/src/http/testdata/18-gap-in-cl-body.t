# Capture loss inside a Content-Length body: counted, framing stays in sync.
>>>
GET /file HTTP/1.1
Host: h

<<<
HTTP/1.1 200 OK
Content-Length: 20

0123456789\
><> 5
abcde\
>>>
GET /next HTTP/1.1
Host: h

<<<
HTTP/1.1 200 OK
Content-Length: 2

ok\
=== expect
GET /file -> 200 resp_body=cl:20! anomalies=gap_in_response gap
GET /next -> 200 resp_body=cl:2
