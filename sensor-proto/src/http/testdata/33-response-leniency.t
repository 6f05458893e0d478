# Real servers: folded header, space before colon, double spaces in the status line.
>>>
GET / HTTP/1.1
Host: h

<<<
HTTP/1.1  200  OK
X-Folded: a
  b
Server : x
Content-Length: 1

z\
=== expect
GET / -> 200 resp_body=cl:1 anomalies=obsolete_line_folding
