>>>
GET /t HTTP/1.1
Host: h

<<<
HTTP/1.1 200 OK
Content-Length: 10

abc\
!!! close-server
=== expect
GET /t -> 200 resp_body=cl:3! anomalies=truncated_message
