# HTTP/2 with prior knowledge: flagged, then parsing stops.
>>>
PRI * HTTP/2.0

SM

\x00\x00\x12\x04\x00\x00\x00\x00\x00\
<<<
\x00\x00\x00\x04\x01\x00\x00\x00\x00\
=== expect
! to_server unsupported_version
