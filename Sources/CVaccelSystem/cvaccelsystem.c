#define _GNU_SOURCE
#include "cvaccelsystem.h"

#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

int vdp_spawn(const char *path, char *const argv[], char *const envp[],
              int stdout_fd, int stderr_fd, pid_t *pid_out) {
  posix_spawnattr_t attr;
  posix_spawn_file_actions_t actions;
  sigset_t empty, all;
  int rc;

  sigemptyset(&empty);
  sigfillset(&all);
  if ((rc = posix_spawnattr_init(&attr)) != 0) return rc;
  if ((rc = posix_spawn_file_actions_init(&actions)) != 0) {
    posix_spawnattr_destroy(&attr);
    return rc;
  }
  rc = posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETPGROUP);
  if (rc == 0) rc = posix_spawnattr_setsigmask(&attr, &empty);
  if (rc == 0) rc = posix_spawnattr_setsigdefault(&attr, &all);
  if (rc == 0) rc = posix_spawnattr_setpgroup(&attr, 0);
  if (rc == 0) rc = posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  if (rc == 0) rc = posix_spawn_file_actions_adddup2(&actions, stdout_fd, 1);
  if (rc == 0) rc = posix_spawn_file_actions_adddup2(&actions, stderr_fd, 2);
  if (rc == 0) rc = posix_spawn_file_actions_addclosefrom_np(&actions, 3);
  if (rc == 0) rc = posix_spawn(pid_out, path, &actions, &attr, argv, envp);
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attr);
  return rc;
}

int vdp_pidfd_open(pid_t pid) {
  return (int)syscall(SYS_pidfd_open, pid, 0);
}

int vdp_pidfd_send_signal(int pidfd, int sig) {
  return (int)syscall(SYS_pidfd_send_signal, pidfd, sig, NULL, 0);
}

int vdp_set_child_subreaper(void) {
  return prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);
}

/* The signal handler's only state: the pipe's write end (set once, before any handler). */
static int vdp_signal_pipe = -1;

static void vdp_on_signal(int sig) {
  int saved = errno;
  unsigned char byte = (unsigned char)sig;
  /* Non-blocking: a full pipe already holds enough requests to stop. */
  (void)!write(vdp_signal_pipe, &byte, 1);
  errno = saved;
}

int vdp_trap_shutdown_signals(void) {
  if (vdp_signal_pipe >= 0) {
    errno = EALREADY;
    return -1;
  }
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) return -1;
  int flags = fcntl(fds[1], F_GETFL);
  if (flags < 0 || fcntl(fds[1], F_SETFL, flags | O_NONBLOCK) != 0) {
    int saved = errno;
    close(fds[0]);
    close(fds[1]);
    errno = saved;
    return -1;
  }
  vdp_signal_pipe = fds[1];
  struct sigaction action = {0};
  action.sa_handler = vdp_on_signal;
  action.sa_flags = SA_RESTART;
  sigemptyset(&action.sa_mask);
  int signals[] = {SIGTERM, SIGINT, SIGHUP};
  sigset_t wanted;
  sigemptyset(&wanted);
  for (unsigned i = 0; i < sizeof signals / sizeof signals[0]; i++) {
    if (sigaction(signals[i], &action, NULL) != 0) return -1;
    sigaddset(&wanted, signals[i]);
  }
  /* A parent may start us with them blocked (a Swift parent spawning from a dispatch thread
     passes on libdispatch's mask, which blocks both): they would then stay pending in every
     thread. The calling (main) thread takes them, and the threads it starts from here on. */
  int failed = pthread_sigmask(SIG_UNBLOCK, &wanted, NULL);
  if (failed != 0) {
    errno = failed;
    return -1;
  }
  return fds[0];
}

int vdp_limit_malloc_arenas(int count) {
    return mallopt(M_ARENA_MAX, count);
}
