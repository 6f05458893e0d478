# A chunk size that is not hex ends the response; the next one is found.
>>>
GET /c HTTP/1.1
Host: h

<<<
HTTP/1.1 200 OK
Transfer-Encoding: chunked

zz
>>>
GET /d HTTP/1.1
Host: h

<<<
HTTP/1.1 200 OK
Content-Length: 0

=== expect
GET /c -> 200 resp_body=chunked:0/1! anomalies=invalid_chunk
! to_client garbage_skipped
GET /d -> 200 resp_body=cl:0
