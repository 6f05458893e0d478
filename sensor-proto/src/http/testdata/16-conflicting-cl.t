# Differing Content-Length values: the body cannot be delimited, resync.
>>>
POST /x HTTP/1.1
Host: h
Content-Length: 5
Content-Length: 7

hello
GET /after HTTP/1.1
Host: h

<<<
HTTP/1.1 400 Bad Request
Content-Length: 0

HTTP/1.1 200 OK
Content-Length: 0

=== expect
! to_server garbage_skipped
POST /x -> 400 req_body=none:0! resp_body=cl:0 anomalies=conflicting_content_length
GET /after -> 200 resp_body=cl:0
