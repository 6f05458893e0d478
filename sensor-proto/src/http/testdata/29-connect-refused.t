# CONNECT answered with a non-2xx status: no tunnel, HTTP goes on.
>>>
CONNECT a:443 HTTP/1.1
Host: a:443

<<<
HTTP/1.1 407 Proxy Authentication Required
Content-Length: 0

>>>
GET http://a/ HTTP/1.1
Host: a

<<<
HTTP/1.1 200 OK
Content-Length: 0

=== expect
CONNECT a:443 -> 407 resp_body=cl:0
GET http://a/ -> 200 resp_body=cl:0
