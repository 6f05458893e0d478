>>>
POST /api/users HTTP/1.1
Host: api.example.com
Content-Type: application/json
Content-Length: 13

{"name":"al"}\
<<<
HTTP/1.1 201 Created
Content-Length: 2

{}\
=== expect
POST /api/users -> 201 req_body=cl:13 resp_body=cl:2
