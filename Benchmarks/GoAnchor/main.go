// The Go anchor for the footprint benchmarks (BENCHMARKS.md, issue 14): the smallest honest
// device plugin on Debian's grpc-go, the gRPC library the kubelet itself uses, in the shape of
// the kubelet's own stub plugin (pkg/kubelet/cm/devicemanager/plugin/v1beta1/stub.go). It
// serves the v1beta1 DevicePlugin service on <dir>/<endpoint>, registers with
// <dir>/kubelet.sock, lists -devices healthy devices, and answers GetPreferredAllocation,
// Allocate (an env and a mount per container, like our unix transport) and PreStartContainer.
// It starts no agents. Exits on SIGTERM.
package main

import (
	"context"
	"flag"
	"fmt"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	pb "deviceplugin/v1beta1"

	"google.golang.org/grpc"
)

type plugin struct {
	devices []*pb.Device
	stop    chan struct{}
}

func (p *plugin) GetDevicePluginOptions(ctx context.Context, _ *pb.Empty) (*pb.DevicePluginOptions, error) {
	return &pb.DevicePluginOptions{PreStartRequired: true, GetPreferredAllocationAvailable: true}, nil
}

func (p *plugin) ListAndWatch(_ *pb.Empty, stream pb.DevicePlugin_ListAndWatchServer) error {
	if err := stream.Send(&pb.ListAndWatchResponse{Devices: p.devices}); err != nil {
		return err
	}
	select {
	case <-p.stop:
	case <-stream.Context().Done():
	}
	return nil
}

func (p *plugin) GetPreferredAllocation(ctx context.Context, r *pb.PreferredAllocationRequest) (*pb.PreferredAllocationResponse, error) {
	response := &pb.PreferredAllocationResponse{}
	for _, request := range r.ContainerRequests {
		ids := request.MustIncludeDeviceIDs
		for _, id := range request.AvailableDeviceIDs {
			if len(ids) >= int(request.AllocationSize) {
				break
			}
			ids = append(ids, id)
		}
		response.ContainerResponses = append(response.ContainerResponses, &pb.ContainerPreferredAllocationResponse{DeviceIDs: ids})
	}
	return response, nil
}

func (p *plugin) Allocate(ctx context.Context, r *pb.AllocateRequest) (*pb.AllocateResponse, error) {
	response := &pb.AllocateResponse{}
	for _, request := range r.ContainerRequests {
		if len(request.DevicesIds) != 1 {
			return nil, fmt.Errorf("exactly one device per container, got %d", len(request.DevicesIds))
		}
		folder := "/var/run/vaccel-anchor/" + request.DevicesIds[0]
		response.ContainerResponses = append(response.ContainerResponses, &pb.ContainerAllocateResponse{
			Envs:   map[string]string{"VACCEL_RPC_ADDRESS": "unix:///run/vaccel/vaccel.sock"},
			Mounts: []*pb.Mount{{ContainerPath: "/run/vaccel", HostPath: folder}},
		})
	}
	return response, nil
}

func (p *plugin) PreStartContainer(ctx context.Context, r *pb.PreStartContainerRequest) (*pb.PreStartContainerResponse, error) {
	return &pb.PreStartContainerResponse{}, nil
}

func main() {
	dir := flag.String("dir", "/var/lib/kubelet/device-plugins", "the kubelet's device-plugin folder")
	resource := flag.String("resource", "vaccel.org/anchor", "extended resource name")
	endpoint := flag.String("endpoint", "go-anchor.sock", "socket file name in -dir")
	count := flag.Int("devices", 8, "devices to list")
	flag.Parse()

	p := &plugin{stop: make(chan struct{})}
	for i := 0; i < *count; i++ {
		p.devices = append(p.devices, &pb.Device{ID: fmt.Sprintf("anchor-%d", i), Health: "Healthy"})
	}
	socket := filepath.Join(*dir, *endpoint)
	os.Remove(socket)
	listener, err := net.Listen("unix", socket)
	if err != nil {
		fail("listen: %v", err)
	}
	// Static flow-control windows: grpc-go then sends no BDP pings, which the bench's client
	// (grpc-swift, in the kubelet emulation) counts as a ping flood and answers by closing the
	// connection after some 60 calls. The real kubelet's client is grpc-go, which has no such limit.
	server := grpc.NewServer(grpc.InitialWindowSize(1<<20), grpc.InitialConnWindowSize(1<<20))
	pb.RegisterDevicePluginServer(server, p)
	go server.Serve(listener)

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := grpc.DialContext(ctx, filepath.Join(*dir, "kubelet.sock"), grpc.WithInsecure(), grpc.WithBlock(),
		grpc.WithContextDialer(func(ctx context.Context, addr string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", addr)
		}))
	if err != nil {
		fail("dial kubelet: %v", err)
	}
	_, err = pb.NewRegistrationClient(conn).Register(ctx, &pb.RegisterRequest{
		Version: "v1beta1", Endpoint: *endpoint, ResourceName: *resource,
		Options: &pb.DevicePluginOptions{PreStartRequired: true, GetPreferredAllocationAvailable: true},
	})
	conn.Close()
	if err != nil {
		fail("register: %v", err)
	}
	fmt.Println("registered")

	signals := make(chan os.Signal, 1)
	signal.Notify(signals, syscall.SIGTERM, syscall.SIGINT)
	<-signals
	close(p.stop)
	server.Stop()
	os.Remove(socket)
}

func fail(format string, args ...interface{}) {
	fmt.Fprintf(os.Stderr, "go-anchor: "+format+"\n", args...)
	os.Exit(1)
}
