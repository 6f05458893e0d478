# Loss on a chunk-size line: the response ends incomplete, the side resyncs.
>>>
GET /a HTTP/1.1
Host: h

<<<
HTTP/1.1 200 OK
Transfer-Encoding: chunked

4
abcd
><> 6
efgh
0

>>>
GET /b HTTP/1.1
Host: h

<<<
HTTP/1.1 200 OK
Content-Length: 0

=== expect
GET /a -> 200 resp_body=chunked:4/9! anomalies=gap_in_response gap
! to_client garbage_skipped
GET /b -> 200 resp_body=cl:0
