#!/usr/bin/env python3
"""A reply program in Python (standard library only).

    REPLY_COMMAND='python3 examples/bots/media_type.py' cargo run --release

Reads the message as JSON on standard input; prints the reply. A photo
gets its type back ("image/jpeg"); any other message, a hint.
"""
import json
import sys

message = json.load(sys.stdin)
media = message.get("media", [])
if media:
    types = ", ".join(item.get("content_type") or "unknown" for item in media)
    print(f"Thanks! You sent: {types}")
else:
    print("Send me a photo and I will tell you its type.")
