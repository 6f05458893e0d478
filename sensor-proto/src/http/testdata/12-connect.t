>>>
CONNECT example.com:443 HTTP/1.1
Host: example.com:443

<<<
HTTP/1.1 200 Connection Established

>>>
\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\
<<<
\x16\x03\x03\x00\x7a\x02\
=== expect
CONNECT example.com:443 -> 200 tunnel=connect
