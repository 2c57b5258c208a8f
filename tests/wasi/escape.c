/* escape.c PATH...: for each PATH, tries to open it for reading, then for
 * writing (creating it if missing), printing one line for each attempt:
 *     read PATH: open ok
 *     write PATH: open denied (ENOTCAPABLE)
 * A file opened for reading is not read; one opened for writing is written
 * nothing (so an existing file keeps its content, a created one is empty). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <unistd.h>

static const char *errno_name(int error) {
    switch (error) {
    case EACCES: return "EACCES";
    case EBADF: return "EBADF";
    case EEXIST: return "EEXIST";
    case EINVAL: return "EINVAL";
    case EISDIR: return "EISDIR";
    case ELOOP: return "ELOOP";
    case ENAMETOOLONG: return "ENAMETOOLONG";
    case ENOENT: return "ENOENT";
    case ENOTDIR: return "ENOTDIR";
    case ENOTCAPABLE: return "ENOTCAPABLE";
    case ENOTSUP: return "ENOTSUP";
    case EPERM: return "EPERM";
    case EROFS: return "EROFS";
    case EXDEV: return "EXDEV";
    default: return "E?";
    }
}

static void attempt(const char *what, const char *path, int flags) {
    int fd = open(path, flags, 0644);
    if (fd >= 0) {
        printf("%s %s: open ok\n", what, path);
        close(fd);
    } else {
        printf("%s %s: open denied (%s)\n", what, path, errno_name(errno));
    }
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: escape PATH...\n");
        return 2;
    }
    for (int i = 1; i < argc; i++) {
        attempt("read", argv[i], O_RDONLY);
        attempt("write", argv[i], O_WRONLY | O_CREAT);
    }
    return 0;
}
