# Loss inside a request head: the request is recorded from its complete lines
# (flagged gap, body unknown), pairs with its response, and parsing resumes at
# the next request line.
>>>
GET /first HTTP/1.1
Host: h

<<<
HTTP/1.1 200 OK
Content-Length: 0

>>>
GET /lost HTTP/1.1
Host: h
><> 40
ost-more: x

GET /second HTTP/1.1
Host: h

<<<
HTTP/1.1 400 Bad Request
Content-Length: 0

HTTP/1.1 200 OK
Content-Length: 0

=== expect
GET /first -> 200 resp_body=cl:0
! to_server garbage_skipped
GET /lost -> 400 req_body=none:0! resp_body=cl:0 anomalies=gap_in_request gap
GET /second -> 200 resp_body=cl:0
