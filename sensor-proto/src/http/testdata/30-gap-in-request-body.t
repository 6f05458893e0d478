>>>
POST /up HTTP/1.1
Host: h
Content-Length: 10

abc\
><> 4
def\
<<<
HTTP/1.1 200 OK
Content-Length: 0

>>>
GET /n HTTP/1.1
Host: h

<<<
HTTP/1.1 200 OK
Content-Length: 0

=== expect
POST /up -> 200 req_body=cl:10! resp_body=cl:0 anomalies=gap_in_request gap
GET /n -> 200 resp_body=cl:0
