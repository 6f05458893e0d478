# A head over MAX_HEADER_BYTES is abandoned at the cap, never buffered further.
>>>
GET /ok HTTP/1.1
Host: h

<<<
HTTP/1.1 200 OK
Content-Length: 0

>>>
GET /big HTTP/1.1
Host: h
X-Big: \
@@@ repeat 70000 a

GET /after HTTP/1.1
Host: h

<<<
HTTP/1.1 431 Request Header Fields Too Large
Content-Length: 0

HTTP/1.1 200 OK
Content-Length: 0

=== expect
GET /ok -> 200 resp_body=cl:0
! to_server header_section_too_large
! to_server garbage_skipped
! to_client response_without_request
GET /after -> 200 resp_body=cl:0
