"""Captures the raw HTTP requests twilio-python 9.13.0 sends for
messages.create, with an Auth Token and with an API key, against a local
listener that answers as the Messages API does (201, a JSON message)."""
import json, socket, threading, sys
from twilio.rest import Client

captured = []
listener = socket.socket(); listener.bind(("127.0.0.1", 0)); listener.listen(8)
port = listener.getsockname()[1]

def serve():
    while True:
        conn, _ = listener.accept()
        data = b""
        while b"\r\n\r\n" not in data:
            data += conn.recv(65536)
        head, _, body = data.partition(b"\r\n\r\n")
        length = int([l.split(b":")[1] for l in head.split(b"\r\n") if l.lower().startswith(b"content-length")][0])
        while len(body) < length:
            body += conn.recv(65536)
        captured.append((head.decode(), body.decode()))
        reply = json.dumps({"sid": "SM" + "f" * 32, "status": "queued"}).encode()
        conn.sendall(b"HTTP/1.1 201 CREATED\r\nContent-Type: application/json\r\nContent-Length: %d\r\nConnection: close\r\n\r\n" % len(reply) + reply)
        conn.close()

threading.Thread(target=serve, daemon=True).start()
ACCOUNT = "AC" + "0123456789abcdef" * 2
for auth in [("token", (ACCOUNT, "token0123456789abcdef0123456789ab")), ("api key", ("SK" + "a" * 32, "secret0123456789abcdef0123456789"))]:
    name, (user, password) = auth
    client = Client(user, password, account_sid=ACCOUNT)
    client.api.base_url = f"http://127.0.0.1:{port}"
    message = client.messages.create(
        to="whatsapp:+15551234567",
        from_="whatsapp:+14155238886",
        body="Hello & welcome: 100% ✓\nsecond line",
        media_url=["https://example.com/a.jpg?x=1&y=2", "https://example.com/b.png"],
        status_callback="https://abc123.ngrok-free.app/status",
    )
    print(name, message.sid, file=sys.stderr)

out = []
for (head, body), name in zip(captured, ["auth token", "api key"]):
    lines = head.split("\r\n")
    out.append({"name": name, "request_line": lines[0], "headers": [l.split(": ", 1) for l in lines[1:]], "body": body})
print(json.dumps({"generated_with": "twilio-python 9.13.0, messages.create (tests/data/capture: see docs/testing.md)", "requests": out}, indent=1, ensure_ascii=False))
