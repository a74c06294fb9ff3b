// A kubelet-like grpc-go client for the interop test: it dials the plugin socket exactly as
// the kubelet does (unix dialer, insecure, WithBlock, :authority "localhost"), holds
// ListAndWatch open, makes many unary calls on the same connection, and then proves the stream
// is still alive by waiting for one more device-list update (the test triggers it after
// reading "calls-done" on stdout). Prints one JSON line with the figures; exits 1 on failure.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"net"
	"os"
	"sync"
	"time"

	pb "deviceplugin/v1beta1"

	"google.golang.org/grpc"
)

type result struct {
	Calls          int    `json:"calls"`
	Failures       int    `json:"failures"`
	FirstFailure   string `json:"firstFailure,omitempty"`
	StreamMessages int    `json:"streamMessages"`
	StreamError    string `json:"streamError,omitempty"`
	StreamAlive    bool   `json:"streamAlive"`
	Devices        int    `json:"devices"`
}

func main() {
	socket := flag.String("socket", "", "plugin socket path")
	calls := flag.Int("calls", 2000, "unary calls to make")
	device := flag.String("device", "accel-0", "device ID to allocate")
	flag.Parse()

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := grpc.DialContext(ctx, *socket,
		grpc.WithInsecure(), grpc.WithBlock(), grpc.WithAuthority("localhost"),
		grpc.WithContextDialer(func(ctx context.Context, addr string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", addr)
		}))
	if err != nil {
		fail("dial: %v", err)
	}
	defer conn.Close()
	client := pb.NewDevicePluginClient(conn)

	stream, err := client.ListAndWatch(context.Background(), &pb.Empty{})
	if err != nil {
		fail("ListAndWatch: %v", err)
	}
	var mu sync.Mutex
	res := result{}
	updates := make(chan int, 1024)
	streamDone := make(chan struct{})
	go func() {
		defer close(streamDone)
		for {
			msg, err := stream.Recv()
			mu.Lock()
			if err != nil {
				res.StreamError = err.Error()
				mu.Unlock()
				return
			}
			res.StreamMessages++
			res.Devices = len(msg.Devices)
			mu.Unlock()
			updates <- len(msg.Devices)
		}
	}()
	select {
	case <-updates:
	case <-time.After(10 * time.Second):
		fail("no first ListAndWatch message")
	}

	for i := 0; i < *calls; i++ {
		callCtx, callCancel := context.WithTimeout(context.Background(), 5*time.Second)
		var err error
		switch i % 4 {
		case 0:
			_, err = client.GetDevicePluginOptions(callCtx, &pb.Empty{})
		case 1:
			_, err = client.Allocate(callCtx, &pb.AllocateRequest{
				ContainerRequests: []*pb.ContainerAllocateRequest{{DevicesIds: []string{*device}}}})
		case 2:
			_, err = client.GetPreferredAllocation(callCtx, &pb.PreferredAllocationRequest{
				ContainerRequests: []*pb.ContainerPreferredAllocationRequest{{
					AvailableDeviceIDs: []string{*device}, AllocationSize: 1}}})
		case 3:
			_, err = client.PreStartContainer(callCtx, &pb.PreStartContainerRequest{DevicesIds: []string{*device}})
		}
		callCancel()
		res.Calls++
		if err != nil {
			res.Failures++
			if res.FirstFailure == "" {
				res.FirstFailure = fmt.Sprintf("call %d: %v", i, err)
			}
		}
	}

	// The stream must still deliver: ask the test to change a device's health.
	fmt.Println("calls-done")
	select {
	case <-updates:
		res.StreamAlive = true
	case <-streamDone:
	case <-time.After(10 * time.Second):
	}
	mu.Lock()
	out, _ := json.Marshal(res)
	mu.Unlock()
	fmt.Println(string(out))
	if res.Failures > 0 || !res.StreamAlive {
		os.Exit(1)
	}
}

func fail(format string, args ...interface{}) {
	fmt.Fprintf(os.Stderr, format+"\n", args...)
	os.Exit(1)
}
