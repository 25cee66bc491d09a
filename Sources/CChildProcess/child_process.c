#define _GNU_SOURCE
#include "CChildProcess.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

// Everything after fork runs in a copy of a multithreaded process: system calls only (no
// malloc, no stdio), as POSIX allows between fork and execve.

/// The supervisor's SIGTERM (its parent thread ended): the whole group, itself included, dies.
static void kill_group(int signal) {
    (void)signal;
    kill(0, SIGKILL);
}

static void default_signals(void) {
    struct sigaction action;
    memset(&action, 0, sizeof action);
    action.sa_handler = SIG_DFL;
    for (int number = 1; number < NSIG; number++) sigaction(number, &action, NULL);
}

/// Closes every descriptor from `first` on (the supervisor never calls execve, so close-on-exec
/// would not close derive's descriptors in it: a socket of another git run held open here would
/// keep that run's reader from seeing its end).
static void close_from(int first) {
#ifdef SYS_close_range
    if (syscall(SYS_close_range, (unsigned)first, ~0U, 0) == 0) return;
#endif
    struct rlimit limit;
    long last = getrlimit(RLIMIT_NOFILE, &limit) == 0 && limit.rlim_cur != RLIM_INFINITY ? (long)limit.rlim_cur : 65536;
    for (long fd = first; fd < last; fd++) close((int)fd);
}

static void report(int fd, int error) {
    ssize_t written;
    do written = write(fd, &error, sizeof error); while (written < 0 && errno == EINTR);
}

/// The parent's side of a child's start: the child writes the errno of a failed start (its exec,
/// or the set-up before it) into `reading`'s pipe, whose close-on-exec end closes unwritten when
/// the exec succeeds. Returns `child`, or minus that errno once the failed child is reaped.
static pid_t await_exec_report(pid_t child, int reading) {
    int error = 0;
    ssize_t count;
    do count = read(reading, &error, sizeof error); while (count < 0 && errno == EINTR);
    close(reading);
    if (count == (ssize_t)sizeof error) {
        int status;
        while (waitpid(child, &status, 0) < 0 && errno == EINTR) {}
        return -(error != 0 ? error : EIO);
    }
    return child;
}

/// The supervisor: never returns.
static void supervise(pid_t parent, const char *path, char *const argv[], char *const envp[],
                      int input, int output, int errors, int reporting) {
    setpgid(0, 0);
    // The descriptors moved out of the way, then to 0, 1, 2 and 3 (the failure report), all else closed.
    int moved[4] = { fcntl(input, F_DUPFD, 10), fcntl(output, F_DUPFD, 10), fcntl(errors, F_DUPFD, 10), fcntl(reporting, F_DUPFD, 10) };
    for (int index = 0; index < 4; index++) {
        if (moved[index] < 0 || dup2(moved[index], index) < 0) { report(reporting, errno); _exit(127); }
    }
    fcntl(3, F_SETFD, FD_CLOEXEC);
    close_from(4);
    default_signals();
    struct sigaction action;
    memset(&action, 0, sizeof action);
    action.sa_handler = kill_group;
    sigaction(SIGTERM, &action, NULL);
    // Only SIGTERM (and SIGKILL, SIGSTOP) reach the supervisor: a stray signal must not end it
    // and leave the program unbound.
    sigset_t only_term;
    sigfillset(&only_term);
    sigdelset(&only_term, SIGTERM);
    sigprocmask(SIG_SETMASK, &only_term, NULL);
    prctl(PR_SET_PDEATHSIG, SIGTERM);
    // The parent died before the signal was armed: nobody waits for us.
    if (getppid() != parent) kill(0, SIGKILL);
    pid_t self = getpid();
    pid_t program = fork();
    if (program == 0) {
        // The program dies with the supervisor too (should the supervisor alone be killed).
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != self) _exit(127);
        action.sa_handler = SIG_DFL;
        sigaction(SIGTERM, &action, NULL);
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        execve(path, argv, envp);
        report(3, errno);
        _exit(127);
    }
    if (program < 0) { report(3, errno); _exit(127); }
    // The program holds its descriptors; the supervisor keeps none of them open.
    for (int fd = 0; fd <= 3; fd++) close(fd);
    int status = 0;
    while (waitpid(program, &status, 0) < 0) {
        if (errno != EINTR) _exit(127);
    }
    if (WIFEXITED(status)) _exit(WEXITSTATUS(status));
    // The same death, without a core file of the supervisor.
    int number = WTERMSIG(status);
    struct rlimit no_core = { 0, 0 };
    setrlimit(RLIMIT_CORE, &no_core);
    action.sa_handler = SIG_DFL;
    sigaction(number, &action, NULL);
    sigset_t one;
    sigemptyset(&one);
    sigaddset(&one, number);
    sigprocmask(SIG_UNBLOCK, &one, NULL);
    kill(self, number);
    _exit(128 + number);
}

pid_t derive_spawn_bound_to_thread(const char *path, char *const argv[], char *const envp[],
                                   int input, int output, int errors) {
    int reporting[2];
    if (pipe2(reporting, O_CLOEXEC) != 0) return -errno;
    pid_t parent = getpid();
    // No handler of derive's may run in the child before its signals are reset.
    sigset_t all, previous;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &previous);
    pid_t supervisor = fork();
    if (supervisor == 0) {
        close(reporting[0]);
        supervise(parent, path, argv, envp, input, output, errors, reporting[1]);
    }
    int forkError = errno;
    pthread_sigmask(SIG_SETMASK, &previous, NULL);
    close(reporting[1]);
    if (supervisor < 0) {
        close(reporting[0]);
        return -forkError;
    }
    // Its own group from the start, whichever of the two runs first.
    setpgid(supervisor, supervisor);
    return await_exec_report(supervisor, reporting[0]);
}

/// The render worker's start: `path` with /dev/null as its standard input, derive's standard error
/// as its standard output and error, `channel` as fd 3 and no other descriptor open (one derive
/// inherited without close-on-exec, a shell's `exec 7>file` or a parent's socket, must not live on
/// in the worker and keep that file or its reader's end of file), every signal at its default and
/// none blocked. glibc 2.34+ closes them in posix_spawn (`addclosefrom_np`); otherwise, or when
/// that is refused, a fork closes them (close_range, else one by one) before execve.
static pid_t spawn_worker_by_fork(const char *path, char *const argv[], char *const envp[], int channel) {
    int reporting[2];
    if (pipe2(reporting, O_CLOEXEC) != 0) return -errno;
    sigset_t all, previous;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &previous);
    pid_t pid = fork();
    if (pid == 0) {
        int null = open("/dev/null", O_RDONLY | O_CLOEXEC);
        // Out of the way of 0 to 4 first: the channel or the report may be any of them.
        int moved_channel = fcntl(channel, F_DUPFD_CLOEXEC, 5);
        int moved_null = null < 0 ? -1 : fcntl(null, F_DUPFD_CLOEXEC, 5);
        int moved_report = fcntl(reporting[1], F_DUPFD_CLOEXEC, 5);
        if (moved_report < 0) _exit(127);
        if (moved_channel < 0 || moved_null < 0 || dup2(moved_null, 0) < 0 || dup2(2, 1) < 0 || dup2(moved_channel, 3) < 0
            || dup2(moved_report, 4) < 0 || fcntl(4, F_SETFD, FD_CLOEXEC) < 0) {
            report(moved_report, errno);
            _exit(127);
        }
        close_from(5);
        default_signals();
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        execve(path, argv, envp);
        report(4, errno);
        _exit(127);
    }
    int forkError = errno;
    pthread_sigmask(SIG_SETMASK, &previous, NULL);
    close(reporting[1]);
    if (pid < 0) {
        close(reporting[0]);
        return -forkError;
    }
    return await_exec_report(pid, reporting[0]);
}

pid_t derive_spawn_worker(const char *path, char *const argv[], char *const envp[], int channel, int by_fork) {
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 34))
    if (!by_fork) {
        posix_spawn_file_actions_t actions;
        if (posix_spawn_file_actions_init(&actions) != 0) return spawn_worker_by_fork(path, argv, envp, channel);
        int failed = posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
            || posix_spawn_file_actions_adddup2(&actions, 2, 1)
            || posix_spawn_file_actions_adddup2(&actions, channel, 3)
            || posix_spawn_file_actions_addclosefrom_np(&actions, 4);
        posix_spawnattr_t attributes;
        if (failed || posix_spawnattr_init(&attributes) != 0) {
            posix_spawn_file_actions_destroy(&actions);
            return spawn_worker_by_fork(path, argv, envp, channel);
        }
        sigset_t all, none;
        sigfillset(&all);
        sigemptyset(&none);
        posix_spawnattr_setsigdefault(&attributes, &all);
        posix_spawnattr_setsigmask(&attributes, &none);
        posix_spawnattr_setflags(&attributes, POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK);
        pid_t pid = 0;
        int status = posix_spawn(&pid, path, &actions, &attributes, argv, envp);
        posix_spawnattr_destroy(&attributes);
        posix_spawn_file_actions_destroy(&actions);
        return status == 0 ? pid : -status;
    }
#endif
    return spawn_worker_by_fork(path, argv, envp, channel);
}
