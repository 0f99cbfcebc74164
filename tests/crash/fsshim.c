/* An LD_PRELOAD shim for the crash tests: logs every file operation on files under
 * $TMQ_TRACE_DIR to $TMQ_TRACE_LOG (with the data written), and can kill the process
 * with SIGKILL just before its Nth such operation ($TMQ_DIE_AT, or tmq_set_die_at()).
 *
 * An open's value is its flags, plus 1 << 40 for a folder.
 * Record: u8 kind, i32 fd, i64 value, u32 len1, u32 len2, then len1 + len2 bytes.
 * Each operation and its record happen under one lock, so the log's order is the
 * order in which the operations reached the kernel.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

enum { K_OPEN = 1, K_WRITE, K_FSYNC, K_TRUNC, K_RENAME, K_LINK, K_UNLINK, K_CLOSE };
#define MAX_FD 65536

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static char traced[MAX_FD];
static char prefix[4096];
static size_t prefix_len;
static int log_fd = -1;
static long die_at = 0;
static long counted = 0;
static int ready = 0;

static int (*real_open)(const char *, int, ...);
static int (*real_openat)(int, const char *, int, ...);
static ssize_t (*real_write)(int, const void *, size_t);
static ssize_t (*real_pwrite)(int, const void *, size_t, off_t);
static int (*real_fsync)(int);
static int (*real_fdatasync)(int);
static int (*real_ftruncate)(int, off_t);
static int (*real_rename)(const char *, const char *);
static int (*real_link)(const char *, const char *);
static int (*real_unlink)(const char *);
static int (*real_close)(int);

static void init(void) {
    if (ready) return;
    real_open = dlsym(RTLD_NEXT, "open64");
    real_openat = dlsym(RTLD_NEXT, "openat64");
    real_write = dlsym(RTLD_NEXT, "write");
    real_pwrite = dlsym(RTLD_NEXT, "pwrite64");
    real_fsync = dlsym(RTLD_NEXT, "fsync");
    real_fdatasync = dlsym(RTLD_NEXT, "fdatasync");
    real_ftruncate = dlsym(RTLD_NEXT, "ftruncate64");
    real_rename = dlsym(RTLD_NEXT, "rename");
    real_link = dlsym(RTLD_NEXT, "link");
    real_unlink = dlsym(RTLD_NEXT, "unlink");
    real_close = dlsym(RTLD_NEXT, "close");
    const char *dir = getenv("TMQ_TRACE_DIR");
    const char *log = getenv("TMQ_TRACE_LOG");
    const char *die = getenv("TMQ_DIE_AT");
    if (dir) { strncpy(prefix, dir, sizeof prefix - 2); prefix_len = strlen(prefix); }
    if (die) die_at = atol(die);
    ready = 1;
    if (log) log_fd = real_open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
}

void tmq_set_die_at(long n) { pthread_mutex_lock(&lock); die_at = n; counted = 0; pthread_mutex_unlock(&lock); }
long tmq_counted(void) { return counted; }

static int under(const char *path, char *out) {
    if (!prefix_len || !path) return 0;
    if (path[0] == '/') { strncpy(out, path, 4095); out[4095] = 0; }
    else {
        if (!getcwd(out, 2048)) return 0;
        strcat(out, "/"); strncat(out, path, 2040);
    }
    return strncmp(out, prefix, prefix_len) == 0 && (out[prefix_len] == '/' || out[prefix_len] == 0);
}

static void emit(uint8_t kind, int32_t fd, int64_t value, const void *a, uint32_t la, const void *b, uint32_t lb) {
    if (log_fd < 0) return;
    char head[21];
    head[0] = kind; memcpy(head + 1, &fd, 4); memcpy(head + 5, &value, 8);
    memcpy(head + 13, &la, 4); memcpy(head + 17, &lb, 4);
    real_write(log_fd, head, sizeof head);
    if (la) real_write(log_fd, a, la);
    if (lb) real_write(log_fd, b, lb);
}

static void step(void) {  /* called under the lock, before a traced operation */
    counted++;
    if (die_at > 0 && counted >= die_at) kill(getpid(), SIGKILL);
}

static int opened(const char *path, int flags, int fd) {
    char full[4096];
    if (fd >= 0 && fd < MAX_FD) {
        traced[fd] = under(path, full);
        struct stat st;
        int64_t dir = traced[fd] && fstat(fd, &st) == 0 && S_ISDIR(st.st_mode);
        if (traced[fd]) emit(K_OPEN, fd, (int64_t)flags | (dir << 40), full, strlen(full), 0, 0);
    }
    return fd;
}

static int do_open(int dirfd, const char *path, int flags, mode_t mode) {
    init();
    char full[4096];
    int creates = (flags & (O_CREAT | O_TRUNC)) && dirfd == AT_FDCWD && under(path, full);
    pthread_mutex_lock(&lock);
    if (creates) step();
    int fd = dirfd == AT_FDCWD ? real_open(path, flags, mode) : real_openat(dirfd, path, flags, mode);
    if (dirfd == AT_FDCWD) opened(path, flags, fd);
    else if (fd >= 0 && fd < MAX_FD) traced[fd] = 0;
    pthread_mutex_unlock(&lock);
    return fd;
}

#define MODE_ARG mode_t mode = 0; if (flags & (O_CREAT | O_TMPFILE)) { va_list ap; va_start(ap, flags); mode = va_arg(ap, int); va_end(ap); }
int open(const char *path, int flags, ...) { MODE_ARG return do_open(AT_FDCWD, path, flags, mode); }
int open64(const char *path, int flags, ...) { MODE_ARG return do_open(AT_FDCWD, path, flags, mode); }
int openat(int dirfd, const char *path, int flags, ...) { MODE_ARG return do_open(dirfd, path, flags, mode); }
int openat64(int dirfd, const char *path, int flags, ...) { MODE_ARG return do_open(dirfd, path, flags, mode); }

static int is_traced(int fd) { return fd >= 0 && fd < MAX_FD && traced[fd]; }

ssize_t write(int fd, const void *buf, size_t n) {
    init();
    if (!is_traced(fd)) return real_write(fd, buf, n);
    pthread_mutex_lock(&lock);
    step();
    off_t at = lseek(fd, 0, SEEK_CUR);
    ssize_t done = real_write(fd, buf, n);
    if (done > 0) emit(K_WRITE, fd, at, buf, done, 0, 0);
    pthread_mutex_unlock(&lock);
    return done;
}

static ssize_t do_pwrite(int fd, const void *buf, size_t n, off_t at) {
    init();
    if (!is_traced(fd)) return real_pwrite(fd, buf, n, at);
    pthread_mutex_lock(&lock);
    step();
    ssize_t done = real_pwrite(fd, buf, n, at);
    if (done > 0) emit(K_WRITE, fd, at, buf, done, 0, 0);
    pthread_mutex_unlock(&lock);
    return done;
}
ssize_t pwrite(int fd, const void *buf, size_t n, off_t at) { return do_pwrite(fd, buf, n, at); }
ssize_t pwrite64(int fd, const void *buf, size_t n, off_t at) { return do_pwrite(fd, buf, n, at); }

static int do_sync(int fd, int data_only) {
    init();
    if (!is_traced(fd)) return data_only ? real_fdatasync(fd) : real_fsync(fd);
    pthread_mutex_lock(&lock);
    step();
    int rc = data_only ? real_fdatasync(fd) : real_fsync(fd);
    if (rc == 0) emit(K_FSYNC, fd, 0, 0, 0, 0, 0);
    pthread_mutex_unlock(&lock);
    return rc;
}
int fsync(int fd) { return do_sync(fd, 0); }
int fdatasync(int fd) { return do_sync(fd, 1); }

static int do_truncate(int fd, off_t length) {
    init();
    if (!is_traced(fd)) return real_ftruncate(fd, length);
    pthread_mutex_lock(&lock);
    step();
    int rc = real_ftruncate(fd, length);
    if (rc == 0) emit(K_TRUNC, fd, length, 0, 0, 0, 0);
    pthread_mutex_unlock(&lock);
    return rc;
}
int ftruncate(int fd, off_t length) { return do_truncate(fd, length); }
int ftruncate64(int fd, off_t length) { return do_truncate(fd, length); }

static int two_paths(int kind, const char *a, const char *b) {
    init();
    char fa[4096], fb[4096];
    int ta = under(a, fa), tb = under(b, fb);
    if (!ta && !tb) return kind == K_RENAME ? real_rename(a, b) : real_link(a, b);
    pthread_mutex_lock(&lock);
    step();
    int rc = kind == K_RENAME ? real_rename(a, b) : real_link(a, b);
    if (rc == 0) emit(kind, -1, 0, fa, strlen(fa), fb, strlen(fb));
    pthread_mutex_unlock(&lock);
    return rc;
}
int rename(const char *a, const char *b) { return two_paths(K_RENAME, a, b); }
int link(const char *a, const char *b) { return two_paths(K_LINK, a, b); }

int unlink(const char *path) {
    init();
    char full[4096];
    if (!under(path, full)) return real_unlink(path);
    pthread_mutex_lock(&lock);
    step();
    int rc = real_unlink(path);
    if (rc == 0) emit(K_UNLINK, -1, 0, full, strlen(full), 0, 0);
    pthread_mutex_unlock(&lock);
    return rc;
}

int close(int fd) {
    init();
    if (!is_traced(fd)) return real_close(fd);
    pthread_mutex_lock(&lock);
    traced[fd] = 0;
    emit(K_CLOSE, fd, 0, 0, 0, 0, 0);
    int rc = real_close(fd);
    pthread_mutex_unlock(&lock);
    return rc;
}

int linkat(int da, const char *a, int db, const char *b, int flags) {
    init();
    if (da == AT_FDCWD && db == AT_FDCWD) return two_paths(K_LINK, a, b);
    int (*real)(int, const char *, int, const char *, int) = dlsym(RTLD_NEXT, "linkat");
    return real(da, a, db, b, flags);
}

int renameat(int da, const char *a, int db, const char *b) {
    init();
    if (da == AT_FDCWD && db == AT_FDCWD) return two_paths(K_RENAME, a, b);
    int (*real)(int, const char *, int, const char *) = dlsym(RTLD_NEXT, "renameat");
    return real(da, a, db, b);
}

int unlinkat(int dirfd, const char *path, int flags) {
    init();
    if (dirfd == AT_FDCWD && !(flags & AT_REMOVEDIR)) return unlink(path);
    int (*real)(int, const char *, int) = dlsym(RTLD_NEXT, "unlinkat");
    return real(dirfd, path, flags);
}
