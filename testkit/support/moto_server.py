"""Start moto_server on 127.0.0.1:PORT for a test binary; stop it when stdin closes.

The test process keeps this script's stdin open. When the tests end (or the
process dies), the pipe closes, stdin reads EOF, and the server is stopped, so
no server outlives the tests and nobody starts one by hand.
"""
import sys

from moto.server import ThreadedMotoServer

port = int(sys.argv[1])
server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
server.start()
print("ready", flush=True)
try:
    sys.stdin.read()
finally:
    server.stop()
