"""What the loopback stand-ins (server.py, metadata.py, proxy.py) share: a
threaded server on 127.0.0.1 that tells the test its port in STATE/port."""
import os
import socketserver


def serve(base, handler, state_dir, port=0, setup=None):
    """Listen on 127.0.0.1:port (0: any) with base (a socketserver class)
    and handler, one thread a connection; setup(srv) runs before the port
    is published, which is written whole (a reader never sees half a
    number); then serve until terminated."""
    class Server(socketserver.ThreadingMixIn, base):
        allow_reuse_address = True
        daemon_threads = True

    srv = Server(("127.0.0.1", port), handler)
    if setup:
        setup(srv)
    tmp = os.path.join(state_dir, "port.tmp")
    with open(tmp, "w") as f:
        f.write(str(srv.server_address[1]))
    os.replace(tmp, os.path.join(state_dir, "port"))
    try:
        srv.serve_forever()
    except KeyboardInterrupt:
        pass
