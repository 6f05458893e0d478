# Bare LF line endings are accepted.
>>>
GET /lf HTTP/1.1\nHost: h\n\n\
<<<
HTTP/1.1 200 OK\nContent-Length: 1\n\nx\
=== expect
GET /lf -> 200 resp_body=cl:1
