# Loss inside a request head: the request is dropped (a placeholder eats its
# response) and parsing resumes at the next request line.
>>>
GET /first HTTP/1.1
Host: h

<<<
HTTP/1.1 200 OK
Content-Length: 0

>>>
GET /lost HTTP/1.1
Host: h
><> 40
ost-more: x

GET /second HTTP/1.1
Host: h

<<<
HTTP/1.1 400 Bad Request
Content-Length: 0

HTTP/1.1 200 OK
Content-Length: 0

=== expect
GET /first -> 200 resp_body=cl:0
! to_server gap_in_request
! to_server garbage_skipped
! to_client response_without_request
GET /second -> 200 resp_body=cl:0
