# The server said Connection: close but keeps talking.
>>>
GET /a HTTP/1.1
Host: h

<<<
HTTP/1.1 200 OK
Connection: close
Content-Length: 1

a\
HTTP/1.1 200 OK
Content-Length: 0

=== expect
GET /a -> 200 resp_body=cl:1
! to_client unexpected_data
! to_client response_without_request
