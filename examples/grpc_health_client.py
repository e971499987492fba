"""A gRPC health client built on the gRPC project's own Python packages
(`pip install grpcio-health-checking`), to look at an example from outside Rust.

    python3 examples/grpc_health_client.py localhost:3000 check "" liveness helloworld.Greeter
    python3 examples/grpc_health_client.py localhost:3000 watch ""
    python3 examples/grpc_health_client.py localhost:3000 list
"""

import sys

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc


def status_name(status):
    return health_pb2.HealthCheckResponse.ServingStatus.Name(status)


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    address, command, names = sys.argv[1], sys.argv[2], sys.argv[3:]
    with grpc.insecure_channel(address) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        if command == "check":
            for name in names or [""]:
                try:
                    reply = stub.Check(health_pb2.HealthCheckRequest(service=name), timeout=2)
                    print(f"Check({name!r}): {status_name(reply.status)}")
                except grpc.RpcError as error:
                    print(f"Check({name!r}): {error.code().name} {error.details()!r}")
        elif command == "watch":
            name = names[0] if names else ""
            try:
                for reply in stub.Watch(health_pb2.HealthCheckRequest(service=name)):
                    print(f"Watch({name!r}): {status_name(reply.status)}", flush=True)
                print(f"Watch({name!r}): stream ended (OK)")
            except grpc.RpcError as error:
                print(f"Watch({name!r}): {error.code().name} {error.details()!r}")
        elif command == "list":
            reply = stub.List(health_pb2.HealthListRequest(), timeout=2)
            for name, status in sorted(reply.statuses.items()):
                print(f"{name!r:24} {status_name(status.status)}")
        else:
            sys.exit(__doc__)


if __name__ == "__main__":
    main()
