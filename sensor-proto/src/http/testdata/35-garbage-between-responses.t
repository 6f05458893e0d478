# Junk after a complete response and before the next status line.
>>>
GET /a HTTP/1.1
Host: h

GET /b HTTP/1.1
Host: h

<<<
HTTP/1.1 200 OK
Content-Length: 2

okEXTRA JUNK
HTTP/1.1 200 OK
Content-Length: 0

=== expect
GET /a -> 200 resp_body=cl:2
! to_client garbage_skipped
GET /b -> 200 resp_body=cl:0
