# Mid-stream pickup: junk before the first request line is skipped.
>>>
\x00\x01binary junk
more junk
GET /hello HTTP/1.1
Host: h

<<<
HTTP/1.1 200 OK
Content-Length: 0

=== expect
! to_server garbage_skipped
GET /hello -> 200 resp_body=cl:0
