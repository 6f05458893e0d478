>>>
GET /ok HTTP/1.1
Host: h

<<<
HTTP/1.1 200 OK
Content-Length: 0

>>>
GET /many HTTP/1.1
@@@ repeat 101 X-H: v\r\n

GET /after HTTP/1.1
Host: h

<<<
HTTP/1.1 431 Request Header Fields Too Large
Content-Length: 0

HTTP/1.1 200 OK
Content-Length: 0

=== expect
GET /ok -> 200 resp_body=cl:0
! to_server too_many_headers
! to_client response_without_request
GET /after -> 200 resp_body=cl:0
