# A request whose last transfer coding is not chunked cannot be delimited.
>>>
POST /z HTTP/1.1
Host: h
Transfer-Encoding: gzip

\x1f\x8b\x08junk
GET /after HTTP/1.1
Host: h

<<<
HTTP/1.1 400 Bad Request
Content-Length: 0

HTTP/1.1 200 OK
Content-Length: 0

=== expect
! to_server garbage_skipped
POST /z -> 400 req_body=none:0! resp_body=cl:0 anomalies=invalid_transfer_encoding
GET /after -> 200 resp_body=cl:0
