# Capture starts inside a response body and inside a request body.
<<<
tail of an earlier body}
HTTP/1.1 200 OK
Content-Length: 2

ok\
>>>
"b":2}
GET /x HTTP/1.1
Host: h

<<<
HTTP/1.1 200 OK
Content-Length: 3

abc\
=== expect
! to_client garbage_skipped
! to_client response_without_request
! to_server garbage_skipped
GET /x -> 200 resp_body=cl:3
