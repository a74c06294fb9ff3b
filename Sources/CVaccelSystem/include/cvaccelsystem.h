#ifndef VDP_CSYSTEM_H
#define VDP_CSYSTEM_H

#include <sys/types.h>

/// posix_spawn for supervised children: empty signal mask and default dispositions (so
/// SIGTERM works whatever the parent blocks), a process group of its own, stdin from
/// /dev/null, stdout/stderr to the given fds, every other fd closed. Returns 0 or an errno.
int vdp_spawn(const char *path, char *const argv[], char *const envp[],
              int stdout_fd, int stderr_fd, pid_t *pid_out);

/// pidfd_open(2): a descriptor that becomes readable when the process exits; -1 and errno.
int vdp_pidfd_open(pid_t pid);

/// pidfd_send_signal(2): signals exactly that process, never a later one with a reused pid.
int vdp_pidfd_send_signal(int pidfd, int sig);

/// prctl(PR_SET_CHILD_SUBREAPER): orphans of our children are re-parented to us to be reaped.
int vdp_set_child_subreaper(void);

/// Traps SIGTERM, SIGINT and SIGHUP from the first moment of the process: each one that
/// arrives is written as one byte (its number) into a pipe whose read end is returned (-1 and
/// errno on failure). The handlers stay for the life of the process, so no signal is lost to
/// a default action (which ends the process with no clean-up) or to a handler being swapped.
/// The calling thread unblocks the three, so they arrive whatever mask the parent passed on.
int vdp_trap_shutdown_signals(void);

/// mallopt(M_ARENA_MAX, count): at most `count` malloc arenas for the whole process. Call it
/// before a second thread allocates. Returns mallopt's result (1 on success).
int vdp_limit_malloc_arenas(int count);

#endif
