/* Failure injection for file writers: an LD_PRELOAD interposer that makes one system call fail
 * the way a full disk, a read-only folder, a failing device or a crash would.
 *
 *   CKPT_FAULT=OP:ACTION[:after=N]
 *
 * OP      write   write/pwrite/writev on a regular file (fds of terminals and pipes pass)
 *         fsync   fsync/fdatasync
 *         rename  rename/renameat/renameat2 (what moves the file into place)
 *         link    link/linkat (a second name for a file: a group commit's backup)
 *         unlink  unlink/unlinkat
 *         create  open/openat/creat with O_CREAT, mkstemp and friends
 * ACTION  an errno name (ENOSPC, EACCES, EIO, EDQUOT, EROFS, EXDEV, EPERM), "short" (writes move at
 *         most N bytes a call but succeed, as the kernel may do), "kill" (SIGKILL: a crash),
 *         for OPs but write, SIGINT, SIGTERM or SIGHUP (that signal raised just before the call, as
 *         a Ctrl-C landing there: the program's handler runs; the call proceeds only if the process
 *         lives on) or,
 *         for write, "corrupt" (the byte at stream position N is written flipped, and the write
 *         succeeds: a device that returns other bytes than it was given), or
 *         for rename, "taken" (someone else makes a file, holding "taken\n", at the name the call
 *         moves the file to just before it: the call then proceeds; a path relative to a folder
 *         descriptor is left alone)
 * after=N write: the fault strikes once N bytes have gone to regular files (the write that
 *         crosses N writes up to N, a short write, as a filling disk does); other OPs: after N
 *         successful calls of that OP. Default 0.
 * once    other OPs: only the call after the N first fails, later ones succeed (without it, every
 *         call from then on fails); a signal is always raised once.
 * With a signal:
 * thread  the signal is raised in a new thread that does not block it (as a pool thread LibTorch
 *         started before would take a Ctrl-C), and the call waits until that thread ends
 * then=E  every later call of OP fails with errno E (a signal handler's own calls among them)
 * gone    rename only: its source is removed just before the signal (by someone else, as it were)
 * taken   rename only: a file holding "taken\n" is made at its destination just before the signal
 *
 *
 *   CKPT_NO_HARDLINKS=ERRNO
 *
 * Besides CKPT_FAULT, so the two combine: every link/linkat fails with that errno (EPERM,
 * EOPNOTSUPP, ENOSYS, EMLINK), as on a file system without hard links (vfat, exFAT, FUSE).
 *
 * When the fault strikes, the shim appends "fired OP ACTION" to $CKPT_FAULT_LOG (when set), so
 * the driver can tell that the writer reached the injected step; a link refused by
 * CKPT_NO_HARDLINKS appends "no hard link REASON". Built without sanitizers. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <unistd.h>

enum { OP_NONE, OP_WRITE, OP_FSYNC, OP_RENAME, OP_LINK, OP_UNLINK, OP_CREATE };
enum { ACT_ERRNO, ACT_SHORT, ACT_KILL, ACT_CORRUPT, ACT_SIGNAL, ACT_TAKEN };

static int g_parsed;
static int g_op = OP_NONE;
static int g_action;
static int g_errno;
static unsigned long long g_after;
static unsigned long long g_written;
static unsigned long long g_calls;
static int g_once;
static int g_signal;
static int g_spent;
static int g_noLinkErrno;  /* CKPT_NO_HARDLINKS: 0 when unset */
static int g_thread;       /* "thread" */
static int g_thenErrno;    /* "then=E": 0 when unset */
static int g_gone;         /* "gone" */
static int g_take;         /* "taken" after a signal */

/* An errno by name; EIO for a name not listed. */
static int errnoNamed(const char *name)
{
    static const struct { const char *name; int value; } names[] = {
        {"ENOSPC", ENOSPC}, {"EACCES", EACCES}, {"EIO", EIO},       {"EDQUOT", EDQUOT},
        {"EROFS", EROFS},   {"EXDEV", EXDEV},   {"EPERM", EPERM},   {"EOPNOTSUPP", EOPNOTSUPP},
        {"ENOSYS", ENOSYS}, {"EMLINK", EMLINK}};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; ++i)
        if (!strcmp(name, names[i].name))
            return names[i].value;
    return EIO;
}

static void parse(void)
{
    if (g_parsed)
        return;
    g_parsed = 1;
    const char *noLink = getenv("CKPT_NO_HARDLINKS");
    if (noLink && *noLink)
        g_noLinkErrno = errnoNamed(noLink);
    const char *spec = getenv("CKPT_FAULT");
    if (!spec || !*spec)
        return;
    char buf[128];
    strncpy(buf, spec, sizeof buf - 1);
    buf[sizeof buf - 1] = 0;
    char *save = NULL;
    const char *op = strtok_r(buf, ":", &save);
    const char *act = strtok_r(NULL, ":", &save);
    const char *opt;
    while ((opt = strtok_r(NULL, ":", &save)))
        if (strncmp(opt, "after=", 6) == 0)
            g_after = strtoull(opt + 6, NULL, 10);
        else if (!strcmp(opt, "once"))
            g_once = 1;
        else if (!strcmp(opt, "thread"))
            g_thread = 1;
        else if (!strcmp(opt, "gone"))
            g_gone = 1;
        else if (!strcmp(opt, "taken"))
            g_take = 1;
        else if (strncmp(opt, "then=", 5) == 0)
            g_thenErrno = errnoNamed(opt + 5);
    if (!op || !act)
        return;
    if (!strcmp(op, "write"))
        g_op = OP_WRITE;
    else if (!strcmp(op, "fsync"))
        g_op = OP_FSYNC;
    else if (!strcmp(op, "rename"))
        g_op = OP_RENAME;
    else if (!strcmp(op, "link"))
        g_op = OP_LINK;
    else if (!strcmp(op, "unlink"))
        g_op = OP_UNLINK;
    else if (!strcmp(op, "create"))
        g_op = OP_CREATE;
    if (!strcmp(act, "short"))
        g_action = ACT_SHORT;
    else if (!strcmp(act, "corrupt"))
        g_action = ACT_CORRUPT;
    else if (!strcmp(act, "kill"))
        g_action = ACT_KILL;
    else if (!strcmp(act, "taken"))
        g_action = ACT_TAKEN;
    else if (!strcmp(act, "SIGINT") || !strcmp(act, "SIGTERM") || !strcmp(act, "SIGHUP")) {
        g_action = ACT_SIGNAL;
        g_signal = !strcmp(act, "SIGINT") ? SIGINT : !strcmp(act, "SIGTERM") ? SIGTERM : SIGHUP;
    } else {
        g_action = ACT_ERRNO;
        g_errno = errnoNamed(act);
    }
}

static void *next(const char *name)
{
    void *f = dlsym(RTLD_NEXT, name);
    if (!f) {
        static const char msg[] = "faultshim: symbol not found\n";
        (void)!syscall(1, 2, msg, sizeof msg - 1);
        abort();
    }
    return f;
}

/* Appends `line` to $CKPT_FAULT_LOG. */
static void note(const char *line, int n)
{
    const char *log = getenv("CKPT_FAULT_LOG");
    if (!log || n <= 0)
        return;
    static int (*real_open)(const char *, int, ...);
    if (!real_open)
        real_open = (int (*)(const char *, int, ...))next("open");
    const int fd = real_open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd < 0)
        return;
    static ssize_t (*real_write)(int, const void *, size_t);
    if (!real_write)
        real_write = (ssize_t (*)(int, const void *, size_t))next("write");
    (void)!real_write(fd, line, (size_t)n);
    close(fd);
}

static void note_fired(const char *op)
{
    char line[96];
    const int n = snprintf(line, sizeof line, "fired %s %s\n", op,
                           g_action == ACT_KILL      ? "kill"
                           : g_action == ACT_SHORT   ? "short"
                           : g_action == ACT_CORRUPT ? "corrupt"
                           : g_action == ACT_SIGNAL  ? strsignal(g_signal)
                                                     : strerror(g_errno));
    note(line, n);
}

/* CKPT_NO_HARDLINKS: 1 when a link must fail (errno set). Checked after CKPT_FAULT's link
 * fault, so that a signal or a kill there still strikes. */
static int noHardLink(void)
{
    parse();
    if (!g_noLinkErrno)
        return 0;
    char line[96];
    note(line, snprintf(line, sizeof line, "no hard link %s\n", strerror(g_noLinkErrno)));
    errno = g_noLinkErrno;
    return 1;
}

/* "thread": a thread that unblocks the signal (a new thread inherits its creator's mask) and
 * raises it, so that its handler runs there. */
static void *raiseInThread(void *unused)
{
    (void)unused;
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, g_signal);
    pthread_sigmask(SIG_UNBLOCK, &set, NULL);
    raise(g_signal);  /* this thread's: the handler runs here before raise returns */
    return NULL;
}

/* "taken": someone else makes a file holding "taken\n" at `dest` (when given and free). */
static void takeName(const char *dest)
{
    static int (*real_open)(const char *, int, ...);
    if (!real_open)
        real_open = (int (*)(const char *, int, ...))next("open");
    const int fd = dest ? real_open(dest, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644) : -1;
    if (fd >= 0) {
        static ssize_t (*real_write)(int, const void *, size_t);
        if (!real_write)
            real_write = (ssize_t (*)(int, const void *, size_t))next("write");
        (void)!real_write(fd, "taken\n", 6);
        close(fd);
    }
}

/* Fault for a call of `op` (`path`: what a rename moves, `dest`: where to, else NULL): returns 1
 * when the call must fail (errno set), kills for "kill". */
static int strikeTo(int op, const char *name, const char *path, const char *dest)
{
    parse();
    if (g_op != op || g_action == ACT_SHORT)
        return 0;
    if (g_spent) {
        if (g_action != ACT_SIGNAL || !g_thenErrno)
            return 0;
        errno = g_thenErrno;  /* "then=E" */
        return 1;
    }
    if (g_calls++ < g_after)
        return 0;
    g_spent = g_once || g_action == ACT_SIGNAL;
    note_fired(name);
    if (g_action == ACT_KILL)
        raise(SIGKILL);
    if (g_action == ACT_TAKEN) {
        takeName(dest);
        return 0;
    }
    if (g_action == ACT_SIGNAL) {
        if (g_take)
            takeName(dest);
        if (g_gone && path) {
            static int (*real_unlink)(const char *);
            if (!real_unlink)
                real_unlink = (int (*)(const char *))next("unlink");
            real_unlink(path);
        }
        pthread_t t;
        if (g_thread && pthread_create(&t, NULL, raiseInThread, NULL) == 0)
            pthread_join(t, NULL);
        else
            raise(g_signal);  /* the handler runs before raise returns */
        return 0;
    }
    errno = g_errno;
    return 1;
}

static int strike(int op, const char *name, const char *path)
{
    return strikeTo(op, name, path, NULL);
}

static int regular(int fd)
{
    struct stat st;
    return fd > 2 && fstat(fd, &st) == 0 && S_ISREG(st.st_mode);
}

/* How many of `n` bytes a write to `fd` may move now; -1 when it must fail (errno set). */
static ssize_t allowance(int fd, size_t n)
{
    parse();
    if (g_op != OP_WRITE || !regular(fd) || g_action == ACT_CORRUPT)
        return (ssize_t)n;
    if (g_action == ACT_SHORT) {
        const size_t cap = g_after ? (size_t)g_after : 1000;
        if (n > cap)
            n = cap;
        if (n) {
            static int noted;
            if (!noted++)
                note_fired("write");
        }
        return (ssize_t)n;
    }
    if (g_written >= g_after) {
        note_fired("write");
        if (g_action == ACT_KILL)
            raise(SIGKILL);
        errno = g_errno;
        return -1;
    }
    if (n > g_after - g_written)
        n = (size_t)(g_after - g_written);
    return (ssize_t)n;
}

/* "corrupt": a copy of `buf` with the byte at stream position g_after flipped, when this write
 * covers it (the caller frees it); NULL otherwise. */
static void *corrupted(int fd, const void *buf, size_t n)
{
    parse();
    if (g_op != OP_WRITE || g_action != ACT_CORRUPT || !regular(fd) || g_after < g_written ||
        g_after - g_written >= n)
        return NULL;
    unsigned char *copy = malloc(n);
    if (!copy)
        return NULL;
    memcpy(copy, buf, n);
    copy[g_after - g_written] ^= 0xFF;
    note_fired("write");
    return copy;
}

ssize_t write(int fd, const void *buf, size_t n)
{
    static ssize_t (*real)(int, const void *, size_t);
    if (!real)
        real = (ssize_t (*)(int, const void *, size_t))next("write");
    const ssize_t allowed = allowance(fd, n);
    if (allowed < 0)
        return -1;
    void *bad = corrupted(fd, buf, (size_t)allowed);
    const ssize_t r = real(fd, bad ? bad : buf, (size_t)allowed);
    free(bad);
    if (r > 0 && g_op == OP_WRITE && regular(fd))
        g_written += (unsigned long long)r;
    return r;
}

ssize_t pwrite(int fd, const void *buf, size_t n, off_t off)
{
    static ssize_t (*real)(int, const void *, size_t, off_t);
    if (!real)
        real = (ssize_t (*)(int, const void *, size_t, off_t))next("pwrite");
    const ssize_t allowed = allowance(fd, n);
    if (allowed < 0)
        return -1;
    void *bad = corrupted(fd, buf, (size_t)allowed);
    const ssize_t r = real(fd, bad ? bad : buf, (size_t)allowed, off);
    free(bad);
    if (r > 0 && g_op == OP_WRITE && regular(fd))
        g_written += (unsigned long long)r;
    return r;
}

ssize_t pwrite64(int fd, const void *buf, size_t n, off_t off) { return pwrite(fd, buf, n, off); }

ssize_t writev(int fd, const struct iovec *iov, int count)
{
    /* One buffer at a time: a short write of the first is a valid writev result. */
    if (count <= 0)
        return 0;
    return write(fd, iov[0].iov_base, iov[0].iov_len);
}

int fsync(int fd)
{
    static int (*real)(int);
    if (!real)
        real = (int (*)(int))next("fsync");
    return strike(OP_FSYNC, "fsync", NULL) ? -1 : real(fd);
}

int fdatasync(int fd)
{
    static int (*real)(int);
    if (!real)
        real = (int (*)(int))next("fdatasync");
    return strike(OP_FSYNC, "fdatasync", NULL) ? -1 : real(fd);
}

int rename(const char *from, const char *to)
{
    static int (*real)(const char *, const char *);
    if (!real)
        real = (int (*)(const char *, const char *))next("rename");
    return strikeTo(OP_RENAME, "rename", from, to) ? -1 : real(from, to);
}

int renameat(int fromDir, const char *from, int toDir, const char *to)
{
    static int (*real)(int, const char *, int, const char *);
    if (!real)
        real = (int (*)(int, const char *, int, const char *))next("renameat");
    return strikeTo(OP_RENAME, "renameat", fromDir == AT_FDCWD || *from == '/' ? from : NULL,
                   toDir == AT_FDCWD || *to == '/' ? to : NULL) ? -1 : real(fromDir, from, toDir, to);
}

int renameat2(int fromDir, const char *from, int toDir, const char *to, unsigned flags)
{
    static int (*real)(int, const char *, int, const char *, unsigned);
    if (!real)
        real = (int (*)(int, const char *, int, const char *, unsigned))next("renameat2");
    return strikeTo(OP_RENAME, "renameat2", fromDir == AT_FDCWD || *from == '/' ? from : NULL,
                   toDir == AT_FDCWD || *to == '/' ? to : NULL) ? -1 : real(fromDir, from, toDir, to, flags);
}

int link(const char *from, const char *to)
{
    static int (*real)(const char *, const char *);
    if (!real)
        real = (int (*)(const char *, const char *))next("link");
    return strike(OP_LINK, "link", NULL) || noHardLink() ? -1 : real(from, to);
}

int linkat(int fromDir, const char *from, int toDir, const char *to, int flags)
{
    static int (*real)(int, const char *, int, const char *, int);
    if (!real)
        real = (int (*)(int, const char *, int, const char *, int))next("linkat");
    return strike(OP_LINK, "linkat", NULL) || noHardLink() ? -1 : real(fromDir, from, toDir, to, flags);
}

int unlink(const char *path)
{
    static int (*real)(const char *);
    if (!real)
        real = (int (*)(const char *))next("unlink");
    return strike(OP_UNLINK, "unlink", NULL) ? -1 : real(path);
}

int unlinkat(int dir, const char *path, int flags)
{
    static int (*real)(int, const char *, int);
    if (!real)
        real = (int (*)(int, const char *, int))next("unlinkat");
    return strike(OP_UNLINK, "unlinkat", NULL) ? -1 : real(dir, path, flags);
}

/* Creating files: a read-only folder refuses even root this way (permission bits do not). */
static int creating(int flags) { return (flags & O_CREAT) || (flags & O_TMPFILE) == O_TMPFILE; }

#define OPEN_WRAPPER(fname, ...)                                                                  \
    {                                                                                             \
        mode_t mode = 0;                                                                          \
        if (creating(flags)) {                                                                    \
            va_list ap;                                                                           \
            va_start(ap, flags);                                                                  \
            mode = va_arg(ap, mode_t);                                                            \
            va_end(ap);                                                                           \
            if (strike(OP_CREATE, fname, NULL))                                                   \
                return -1;                                                                        \
        }                                                                                         \
        return real(__VA_ARGS__, flags, mode);                                                    \
    }

int open(const char *path, int flags, ...)
{
    static int (*real)(const char *, int, ...);
    if (!real)
        real = (int (*)(const char *, int, ...))next("open");
    OPEN_WRAPPER("open", path)
}

int open64(const char *path, int flags, ...)
{
    static int (*real)(const char *, int, ...);
    if (!real)
        real = (int (*)(const char *, int, ...))next("open64");
    OPEN_WRAPPER("open64", path)
}

int openat(int dir, const char *path, int flags, ...)
{
    static int (*real)(int, const char *, int, ...);
    if (!real)
        real = (int (*)(int, const char *, int, ...))next("openat");
    OPEN_WRAPPER("openat", dir, path)
}

int openat64(int dir, const char *path, int flags, ...)
{
    static int (*real)(int, const char *, int, ...);
    if (!real)
        real = (int (*)(int, const char *, int, ...))next("openat64");
    OPEN_WRAPPER("openat64", dir, path)
}

int creat(const char *path, mode_t mode)
{
    static int (*real)(const char *, mode_t);
    if (!real)
        real = (int (*)(const char *, mode_t))next("creat");
    return strike(OP_CREATE, "creat", NULL) ? -1 : real(path, mode);
}

/* glibc's mkstemp opens through an internal call the wrappers above never see. */
#define MKSTEMP_WRAPPER(fname, proto, args)                                                       \
    int fname proto                                                                               \
    {                                                                                             \
        static int(*real) proto;                                                                  \
        if (!real)                                                                                \
            real = (int(*) proto)next(#fname);                                                    \
        return strike(OP_CREATE, #fname, NULL) ? -1 : real args;                                  \
    }

MKSTEMP_WRAPPER(mkstemp, (char *t), (t))
MKSTEMP_WRAPPER(mkstemp64, (char *t), (t))
MKSTEMP_WRAPPER(mkostemp, (char *t, int f), (t, f))
MKSTEMP_WRAPPER(mkostemp64, (char *t, int f), (t, f))
MKSTEMP_WRAPPER(mkstemps, (char *t, int s), (t, s))
MKSTEMP_WRAPPER(mkostemps, (char *t, int s, int f), (t, s, f))
