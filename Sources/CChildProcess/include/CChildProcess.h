#ifndef DERIVE_CHILD_PROCESS_H
#define DERIVE_CHILD_PROCESS_H

#include <sys/types.h>

/// Starts the program at `path` (`argv`, `envp`) so that it cannot outlive the calling thread
/// (Linux's parent-death signal, which posix_spawn cannot set): a supervisor process, the leader
/// of a new process group and the returned pid, starts the program in that group with `input`,
/// `output` and `errors` as its standard descriptors (and no other open), every signal at its
/// default and none blocked. When the calling thread ends (its process killed, even by SIGKILL)
/// the kernel sends the supervisor SIGTERM, and it kills its whole group (the program and what
/// the program started) with SIGKILL. The supervisor ends as the program did: the same exit
/// status, or killed by the same signal. The caller must wait for it on the same thread.
/// Returns the supervisor's pid, or minus an errno (the program's execve failure included).
pid_t derive_spawn_bound_to_thread(const char *path, char *const argv[], char *const envp[],
                                   int input, int output, int errors);

/// Starts the render worker at `path` (`argv`, `envp`): standard input /dev/null, standard output
/// and error derive's standard error, `channel` as fd 3, and no other descriptor open (those
/// derive inherited without close-on-exec included), every signal at its default and none
/// blocked. posix_spawn with `posix_spawn_file_actions_addclosefrom_np` on glibc 2.34+; a fork
/// that closes them itself otherwise, or when `by_fork` is set (tests run both ways).
/// Returns the worker's pid, or minus an errno (its execve failure included).
pid_t derive_spawn_worker(const char *path, char *const argv[], char *const envp[], int channel, int by_fork);

#endif
