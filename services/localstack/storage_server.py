"""Runs localbucket (the local stack's S3 API) with Nagle's algorithm off on its connections.

localbucket's handler writes a response's headers and its body in separate small writes;
with Nagle on, the body waits for the client's delayed acknowledgement of the headers:
every GET of an object took 42 ms here, whatever its size, against 1 ms for a HEAD. MinIO
(Go) sets TCP_NODELAY on every connection; this makes the local stand-in do the same.
"""

import sys

import localbucket


def main() -> int:
    localbucket.S3Handler.disable_nagle_algorithm = True
    sys.argv[0] = "localbucket"
    return localbucket.main()


if __name__ == "__main__":
    sys.exit(main())
