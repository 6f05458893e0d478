# Content-Length and Transfer-Encoding: chunked wins, the request is flagged.
>>>
POST /smuggle HTTP/1.1
Host: h
Content-Length: 4
Transfer-Encoding: chunked

0

GET /next HTTP/1.1
Host: h

<<<
HTTP/1.1 200 OK
Content-Length: 0

HTTP/1.1 200 OK
Content-Length: 0

=== expect
POST /smuggle -> 200 req_body=chunked:0/5 resp_body=cl:0 anomalies=content_length_with_transfer_encoding
GET /next -> 200 resp_body=cl:0
