>>>
FOO / HTTP/1.1

GET / HTTP/1.1
Host: a
Host: b

<<<
HTTP/1.1 405 Method Not Allowed
Content-Length: 0

HTTP/1.1 200 OK
Content-Length: 0

=== expect
FOO / -> 405 resp_body=cl:0 anomalies=unknown_method,invalid_host
GET / -> 200 resp_body=cl:0 anomalies=invalid_host
