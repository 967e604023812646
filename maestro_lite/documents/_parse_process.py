"""Entry point of the parse process (``python -m maestro_lite.documents._parse_process``).

A module of its own, which nothing imports, so that running it as ``__main__`` never finds
it already imported (runpy warns about that).
"""

import sys

from maestro_lite.documents._worker import Duplex, serve

if __name__ == "__main__":
    # Frames go over the pipes; anything a parser prints goes to stderr, never into them.
    sys.stdout = sys.stderr
    read_fd, write_fd, memory = (int(arg) for arg in sys.argv[1:4])
    serve(Duplex(read_fd, write_fd), memory or None)
