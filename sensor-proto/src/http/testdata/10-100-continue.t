# Expect: 100-continue; interim responses are recorded, the final one pairs.
>>>
POST /big HTTP/1.1
Host: h
Content-Length: 4
Expect: 100-continue

<<<
HTTP/1.1 100 Continue

>>>
data\
<<<
HTTP/1.1 102 Processing

HTTP/1.1 200 OK
Content-Length: 0

=== expect
POST /big -> 200 req_body=cl:4 resp_body=cl:0 interim=100,102
