#!/usr/bin/env python3
"""A kubelet played by Python grpcio, an independent gRPC implementation.

It does what the kubelet does with a device plugin (kubelet-contract.md section 2): serves
Registration on <dir>/kubelet.sock; inside Register checks the version, dials
<dir>/<endpoint> back over a unix socket with the chosen :authority ("localhost", or the socket
path as kubelets before 1.26 sent it) and calls GetDevicePluginOptions; then opens
ListAndWatch, allocates, asks for a preferred allocation, calls PreStartContainer, sends a bad
request, and restarts like a kubelet (every socket in the folder deleted, a new kubelet.sock)
as often as asked, expecting the plugin to register again each time.

Prints one JSON line with what it saw; exits 1 with a message on the first thing that is wrong.
"""
import argparse
import json
import os
import queue
import shutil
import signal
import stat
import sys
import tempfile
from concurrent import futures

import grpc
from grpc_tools import protoc


def load_stubs(protos):
    out = tempfile.mkdtemp(prefix="vdp-py-")
    rc = protoc.main(["protoc", f"-I{protos}", f"--python_out={out}", f"--grpc_python_out={out}",
                      "deviceplugin/v1beta1/api.proto"])
    if rc != 0:
        sys.exit(f"protoc failed ({rc})")
    sys.path.insert(0, out)
    from deviceplugin.v1beta1 import api_pb2, api_pb2_grpc
    shutil.rmtree(out, ignore_errors=True)  # imported: the generated files are not read again
    return api_pb2, api_pb2_grpc


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--dir", required=True)
    parser.add_argument("--protos", required=True)
    parser.add_argument("--authority", choices=["localhost", "path"], default="localhost")
    parser.add_argument("--devices", type=int, required=True)
    parser.add_argument("--restarts", type=int, default=1)
    args = parser.parse_args()
    signal.alarm(90)  # never hang a test run

    pb, rpc = load_stubs(args.protos)
    registered = queue.Queue()

    class Registration(rpc.RegistrationServicer):
        def Register(self, request, context):
            if request.version != "v1beta1":
                context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"bad version {request.version}")
            path = os.path.join(args.dir, request.endpoint)
            authority = "localhost" if args.authority == "localhost" else path
            channel = grpc.insecure_channel("unix:" + path, options=[("grpc.default_authority", authority)])
            stub = rpc.DevicePluginStub(channel)
            try:
                options = stub.GetDevicePluginOptions(pb.Empty(), timeout=10)
            except grpc.RpcError as error:
                context.abort(grpc.StatusCode.UNAVAILABLE, f"GetDevicePluginOptions: {error}")
            registered.put((request, options, channel, stub))
            return pb.Empty()

    def serve():
        server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
        rpc.add_RegistrationServicer_to_server(Registration(), server)
        server.add_insecure_port("unix:" + os.path.join(args.dir, "kubelet.sock"))
        server.start()
        return server

    def expect(condition, message):
        if not condition:
            sys.exit(f"FAILED: {message}")

    os.makedirs(args.dir, exist_ok=True)
    server = serve()
    seen = {"registrations": 0, "allocations": 0, "authority": args.authority}
    for round_ in range(args.restarts + 1):
        try:
            request, options, channel, stub = registered.get(timeout=30)
        except queue.Empty:
            sys.exit(f"FAILED: no registration in round {round_}")
        seen["registrations"] += 1
        expect(request.version == "v1beta1", "version")
        expect(request.endpoint.endswith(".sock") and "/" not in request.endpoint, f"endpoint {request.endpoint!r}")
        expect(request.options.pre_start_required and request.options.get_preferred_allocation_available,
               "options in RegisterRequest")
        expect(options.pre_start_required and options.get_preferred_allocation_available,
               "options from GetDevicePluginOptions")
        seen["resource"] = request.resource_name

        stream = stub.ListAndWatch(pb.Empty())
        first = next(stream)
        healthy = [d.ID for d in first.devices if d.health == "Healthy"]
        expect(len(healthy) == args.devices, f"{len(healthy)} healthy devices, wanted {args.devices}")

        preferred = stub.GetPreferredAllocation(pb.PreferredAllocationRequest(container_requests=[
            pb.ContainerPreferredAllocationRequest(available_deviceIDs=healthy, allocation_size=1)]))
        chosen = list(preferred.container_responses[0].deviceIDs)
        expect(len(chosen) == 1 and chosen[0] in healthy, f"preferred {chosen}")

        reply = stub.Allocate(pb.AllocateRequest(container_requests=[
            pb.ContainerAllocateRequest(devices_ids=chosen)]))
        expect(len(reply.container_responses) == 1, "one container response")
        container = reply.container_responses[0]
        expect(container.envs.get("VACCEL_PLUGINS") == "libvaccel-rpc.so", f"envs {dict(container.envs)}")
        expect(container.envs.get("VACCEL_RPC_ADDRESS", "").startswith(("unix://", "vsock://", "tcp://")),
               f"envs {dict(container.envs)}")
        seen["allocations"] += 1
        seen["envs"] = dict(container.envs)
        seen["mounts"] = [(m.host_path, m.container_path) for m in container.mounts]

        stub.PreStartContainer(pb.PreStartContainerRequest(devices_ids=chosen))
        try:
            stub.Allocate(pb.AllocateRequest(container_requests=[
                pb.ContainerAllocateRequest(devices_ids=["no-such-device"])]))
            sys.exit("FAILED: an unknown device ID was accepted")
        except grpc.RpcError as error:
            expect(error.code() == grpc.StatusCode.INVALID_ARGUMENT, f"bad request got {error.code()}")

        if round_ < args.restarts:
            stream.cancel()
            channel.close()
            server.stop(None)
            for name in os.listdir(args.dir):
                path = os.path.join(args.dir, name)
                if stat.S_ISSOCK(os.lstat(path).st_mode):
                    os.unlink(path)
            server = serve()

    print(json.dumps(seen))
    server.stop(None)


if __name__ == "__main__":
    main()
