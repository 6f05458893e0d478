# A response nobody asked for is parsed and skipped, so the next one frames.
<<<
HTTP/1.1 200 OK
Content-Length: 5

abcde\
>>>
GET /x HTTP/1.1
Host: h

<<<
HTTP/1.1 200 OK
Content-Length: 1

z\
=== expect
! to_client response_without_request
GET /x -> 200 resp_body=cl:1
