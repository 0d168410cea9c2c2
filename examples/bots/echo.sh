#!/bin/sh
# A reply program in sh: replies with what was sent.
#
#   REPLY_COMMAND=examples/bots/echo.sh cargo run --release
#
# The message's main fields are environment variables (MESSAGE_BODY,
# MESSAGE_FROM, ...); the whole message is JSON on standard input. What
# this prints is the reply; printing nothing sends no reply.
if [ -n "$MESSAGE_BODY" ]; then
    printf 'You said: %s\n' "$MESSAGE_BODY"
fi
