# Loss between pipelined responses: requests still waiting are flushed
# unanswered rather than risk pairing them with the wrong response.
>>>
GET /1 HTTP/1.1
Host: h

GET /2 HTTP/1.1
Host: h

GET /3 HTTP/1.1
Host: h

<<<
HTTP/1.1 200 OK
Content-Length: 2

ok\
><> 50
HTTP/1.1 200 OK
Content-Length: 2

ok\
=== expect
GET /1 -> 200 resp_body=cl:2
! to_client gap_in_response
GET /2 -> - anomalies=gap_in_response gap
GET /3 -> - anomalies=gap_in_response gap
! to_client response_without_request
