"""gRPC status codes and HTTP statuses: the one mapping, used wherever an error
crosses from one to the other (the gateway's HTTP door)."""

import grpc

HTTP_STATUS = {
    grpc.StatusCode.INVALID_ARGUMENT: 422, grpc.StatusCode.OUT_OF_RANGE: 422, grpc.StatusCode.NOT_FOUND: 404,
    grpc.StatusCode.ALREADY_EXISTS: 409, grpc.StatusCode.ABORTED: 409, grpc.StatusCode.FAILED_PRECONDITION: 409,
    grpc.StatusCode.PERMISSION_DENIED: 403, grpc.StatusCode.UNAUTHENTICATED: 401,
    grpc.StatusCode.RESOURCE_EXHAUSTED: 429, grpc.StatusCode.UNIMPLEMENTED: 501, grpc.StatusCode.UNAVAILABLE: 503,
    grpc.StatusCode.DEADLINE_EXCEEDED: 504, grpc.StatusCode.CANCELLED: 499, grpc.StatusCode.INTERNAL: 500,
    grpc.StatusCode.UNKNOWN: 500, grpc.StatusCode.DATA_LOSS: 500,
}
# The HTTP statuses only the HTTP door produces, and the code each becomes over gRPC.
_HTTP_ONLY = {400: grpc.StatusCode.INVALID_ARGUMENT, 413: grpc.StatusCode.INVALID_ARGUMENT}
GRPC_CODE = {**{status: code for code, status in HTTP_STATUS.items() if code not in (
    grpc.StatusCode.OUT_OF_RANGE, grpc.StatusCode.ALREADY_EXISTS, grpc.StatusCode.ABORTED,
    grpc.StatusCode.UNKNOWN, grpc.StatusCode.DATA_LOSS)}, **_HTTP_ONLY}


def http_status(code: grpc.StatusCode) -> int:
    return HTTP_STATUS.get(code, 500)


def grpc_code(status: int) -> grpc.StatusCode:
    return GRPC_CODE.get(status, grpc.StatusCode.UNKNOWN)
