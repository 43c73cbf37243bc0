"""A fake OpenAI provider over TLS, for the end-to-end TLS test: it answers chat requests and
prints, one JSON line per request, the SNI the client sent, the path, headers and body.

Usage: tls_provider.py PORT CERT KEY
"""

import http.server
import json
import ssl
import sys

port, cert, key = int(sys.argv[1]), sys.argv[2], sys.argv[3]
seen_sni = {}


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("content-length", "0")))
        request = json.loads(body)
        print(json.dumps({
            "sni": seen_sni.get(id(self.connection)),
            "path": self.path,
            "headers": {k.lower(): v for k, v in self.headers.items()},
            "body": request,
        }), flush=True)
        answer = json.dumps({
            "id": "chatcmpl-tls", "object": "chat.completion", "created": 1700000000,
            "model": request.get("model"),
            "choices": [{"index": 0, "message": {"role": "assistant", "content": "over TLS"}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 1, "completion_tokens": 2, "total_tokens": 3},
        }).encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)


def remember_sni(sock, server_name, _context):
    seen_sni[id(sock)] = server_name


context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
context.load_cert_chain(cert, key)
context.sni_callback = remember_sni
server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)
server.socket = context.wrap_socket(server.socket, server_side=True)
print("ready", flush=True)
server.serve_forever()
