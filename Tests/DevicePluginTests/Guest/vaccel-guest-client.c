// The vAccel client inside the test's guest VM: what libvaccel-rpc.so does in a Kata or
// Firecracker guest, reduced to one session round trip. It dials the host (CID 2) on a vsock
// port and speaks ttrpc: CreateSession, then DestroySession of the session it got.
//
//   vaccel-guest-client probe PORT    one round trip; exit 0 and "ok <session>", else 1
//   vaccel-guest-client serve PORT    the guest's PID 1 helper: listens on vsock PORT for the
//                                     host's commands, one per connection, a line each:
//                                     "probe <port>" answers "ok <session>" or "fail <why>";
//                                     "poweroff" powers the guest off.
//
// Built static (gcc -static) so the initrd needs no libraries. The framing and messages are
// the ones in Protos/ttrpc and Protos/vaccel (../shared/reference/vaccel-contract.md, 3).
#include <errno.h>
#include <linux/vm_sockets.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/reboot.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#define SERVICE "vaccel.sync.agent.AgentService"

static size_t put_varint(uint8_t *out, uint64_t value) {
  size_t n = 0;
  do {
    out[n] = value & 0x7f;
    value >>= 7;
    if (value) out[n] |= 0x80;
    n++;
  } while (value);
  return n;
}

static size_t put_bytes(uint8_t *out, int field, const void *data, size_t length) {
  size_t n = 0;
  out[n++] = (uint8_t)(field << 3 | 2);
  n += put_varint(out + n, length);
  memcpy(out + n, data, length);
  return n + length;
}

static int get_varint(const uint8_t *in, size_t length, size_t *at, uint64_t *value) {
  *value = 0;
  for (int shift = 0; shift < 64 && *at < length; shift += 7) {
    uint8_t byte = in[(*at)++];
    *value |= (uint64_t)(byte & 0x7f) << shift;
    if (!(byte & 0x80)) return 0;
  }
  return -1;
}

static int write_all(int fd, const uint8_t *data, size_t length) {
  while (length > 0) {
    ssize_t n = write(fd, data, length);
    if (n <= 0) return -1;
    data += n;
    length -= (size_t)n;
  }
  return 0;
}

static int read_all(int fd, uint8_t *data, size_t length) {
  while (length > 0) {
    ssize_t n = read(fd, data, length);
    if (n <= 0) return -1;
    data += n;
    length -= (size_t)n;
  }
  return 0;
}

// One ttrpc call: fills `reply` with the response payload. Returns 0, or -1 with `why` set.
static int call(int fd, uint32_t stream, const char *method, const uint8_t *payload, size_t payload_length,
                uint8_t *reply, size_t *reply_length, char *why, size_t why_size) {
  uint8_t frame[512];
  size_t n = 10;
  n += put_bytes(frame + n, 1, SERVICE, strlen(SERVICE));
  n += put_bytes(frame + n, 2, method, strlen(method));
  n += put_bytes(frame + n, 3, payload, payload_length);
  uint32_t body = (uint32_t)(n - 10);
  uint8_t header[10] = {body >> 24, body >> 16, body >> 8, body, stream >> 24, stream >> 16, stream >> 8, stream, 1, 0};
  memcpy(frame, header, 10);
  if (write_all(fd, frame, n) < 0) {
    snprintf(why, why_size, "%s: send: %s", method, strerror(errno));
    return -1;
  }
  uint8_t in[4096];
  if (read_all(fd, in, 10) < 0) {
    snprintf(why, why_size, "%s: no reply: %s", method, errno ? strerror(errno) : "connection closed");
    return -1;
  }
  uint32_t length = (uint32_t)in[0] << 24 | (uint32_t)in[1] << 16 | (uint32_t)in[2] << 8 | in[3];
  uint32_t got = (uint32_t)in[4] << 24 | (uint32_t)in[5] << 16 | (uint32_t)in[6] << 8 | in[7];
  if (in[8] != 2 || got != stream || length > sizeof in || read_all(fd, in, length) < 0) {
    snprintf(why, why_size, "%s: bad reply frame (type %u, stream %u, %u bytes)", method, in[8], got, length);
    return -1;
  }
  // Response { Status status = 1; bytes payload = 2; }, Status { int32 code = 1; string message = 2; }
  size_t at = 0;
  uint64_t code = 0;
  *reply_length = 0;
  while (at < length) {
    uint64_t tag, size;
    if (get_varint(in, length, &at, &tag) < 0 || (tag & 7) != 2 || get_varint(in, length, &at, &size) < 0 || at + size > length) {
      snprintf(why, why_size, "%s: malformed response", method);
      return -1;
    }
    if (tag >> 3 == 1) {
      size_t inner = at;
      while (inner < at + size) {
        uint64_t itag, value;
        if (get_varint(in, at + size, &inner, &itag) < 0) break;
        if (itag == 0x08) {
          get_varint(in, at + size, &inner, &code);
        } else if ((itag & 7) == 2 && get_varint(in, at + size, &inner, &value) == 0) {
          inner += value;
        } else {
          break;
        }
      }
    } else if (tag >> 3 == 2) {
      memcpy(reply, in + at, size);
      *reply_length = size;
    }
    at += size;
  }
  if (code != 0) {
    snprintf(why, why_size, "%s: status %llu", method, (unsigned long long)code);
    return -1;
  }
  return 0;
}

// CreateSession then DestroySession on vsock://2:PORT. Returns the session id, or -1.
static long long probe(unsigned port, char *why, size_t why_size) {
  int fd = socket(AF_VSOCK, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    snprintf(why, why_size, "socket: %s", strerror(errno));
    return -1;
  }
  struct timeval timeout = {.tv_sec = 5};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, sizeof timeout);
  struct sockaddr_vm host = {.svm_family = AF_VSOCK, .svm_cid = VMADDR_CID_HOST, .svm_port = port};
  if (connect(fd, (struct sockaddr *)&host, sizeof host) < 0) {
    snprintf(why, why_size, "connect vsock://2:%u: %s", port, strerror(errno));
    close(fd);
    return -1;
  }
  uint8_t reply[512], request[16];
  size_t reply_length;
  long long session = -1;
  if (call(fd, 1, "CreateSession", NULL, 0, reply, &reply_length, why, why_size) == 0) {
    size_t at = 0;
    uint64_t tag, id = 0;
    if (reply_length > 0 && (get_varint(reply, reply_length, &at, &tag) < 0 || tag != 0x08 || get_varint(reply, reply_length, &at, &id) < 0)) {
      snprintf(why, why_size, "CreateSession: malformed reply");
    } else {
      request[0] = 0x08;
      size_t n = 1 + put_varint(request + 1, id);
      if (call(fd, 3, "DestroySession", request, n, reply, &reply_length, why, why_size) == 0) session = (long long)id;
    }
  }
  close(fd);
  return session;
}

static int serve(unsigned port) {
  int listener = socket(AF_VSOCK, SOCK_STREAM | SOCK_CLOEXEC, 0);
  struct sockaddr_vm any = {.svm_family = AF_VSOCK, .svm_cid = VMADDR_CID_ANY, .svm_port = port};
  if (listener < 0 || bind(listener, (struct sockaddr *)&any, sizeof any) < 0 || listen(listener, 4) < 0) {
    fprintf(stderr, "vaccel-guest-client: cannot listen on vsock port %u: %s\n", port, strerror(errno));
    return 1;
  }
  printf("vaccel-guest-client: serving on vsock port %u\n", port);
  fflush(stdout);
  for (;;) {
    int fd = accept(listener, NULL, NULL);
    if (fd < 0) continue;
    char line[128] = {0}, answer[320];
    size_t n = 0;
    while (n < sizeof line - 1 && read(fd, line + n, 1) == 1 && line[n] != '\n') n++;
    line[n] = 0;
    unsigned target;
    if (sscanf(line, "probe %u", &target) == 1) {
      char why[256] = "";
      long long session = probe(target, why, sizeof why);
      if (session >= 0) {
        snprintf(answer, sizeof answer, "ok %lld\n", session);
      } else {
        snprintf(answer, sizeof answer, "fail %s\n", why);
      }
    } else if (strcmp(line, "poweroff") == 0) {
      write_all(fd, (const uint8_t *)"ok\n", 3);
      close(fd);
      sync();
      reboot(RB_POWER_OFF);
      return 0;
    } else {
      snprintf(answer, sizeof answer, "fail unknown command '%s'\n", line);
    }
    printf("vaccel-guest-client: %s -> %s", line, answer);
    fflush(stdout);
    write_all(fd, (const uint8_t *)answer, strlen(answer));
    close(fd);
  }
}

int main(int argc, char **argv) {
  char *end = NULL;
  unsigned long port = argc == 3 ? strtoul(argv[2], &end, 10) : 0;
  if (argc != 3 || !end || *end || port == 0 || port > UINT32_MAX) {
    fprintf(stderr, "usage: vaccel-guest-client probe|serve PORT\n");
    return 2;
  }
  if (strcmp(argv[1], "serve") == 0) return serve((unsigned)port);
  if (strcmp(argv[1], "probe") != 0) {
    fprintf(stderr, "usage: vaccel-guest-client probe|serve PORT\n");
    return 2;
  }
  char why[256] = "";
  long long session = probe((unsigned)port, why, sizeof why);
  if (session < 0) {
    printf("fail %s\n", why);
    return 1;
  }
  printf("ok %lld\n", session);
  return 0;
}
