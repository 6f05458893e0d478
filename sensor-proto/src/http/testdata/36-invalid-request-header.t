# An unparseable request head is reported; a placeholder takes its response.
>>>
GET /a HTTP/1.1
Host: h
Bad Header: x

GET /b HTTP/1.1
Host: h

<<<
HTTP/1.1 400 Bad Request
Content-Length: 0

HTTP/1.1 200 OK
Content-Length: 0

=== expect
! to_server invalid_header
! to_client response_without_request
GET /b -> 200 resp_body=cl:0
