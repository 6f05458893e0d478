>>>
GET /legacy HTTP/1.0
User-Agent: old

<<<
HTTP/1.0 200 OK
Content-Type: text/plain

legacy body\
!!! close-server
!!! close-client
=== expect
GET /legacy -> 200 resp_body=close:11
