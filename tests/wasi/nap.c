/* nap.c SECONDS [DIR]: sleeps SECONDS with nanosleep (WASI's poll_oneoff), then
 * lists the entries of the preopened directory DIR in the order readdir gives
 * them (fd_readdir). The tests replace poll_oneoff and fd_readdir with Python
 * functions, while the rest (fd_write, path_open, fd_close...) stays WASI's.
 * A failure is reported on stderr, with exit status 1. */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static int fail(const char *what, const char *detail) {
    fprintf(stderr, "nap: %s%s: %s\n", what, detail, strerror(errno));
    return 1;
}

int main(int argc, char **argv) {
    if (argc < 2 || argc > 3) {
        fprintf(stderr, "usage: nap SECONDS [DIR]\n");
        return 2;
    }
    struct timespec delay = {atol(argv[1]), 0};
    printf("sleeping %lld s\n", (long long)delay.tv_sec);
    fflush(stdout);
    if (nanosleep(&delay, NULL) != 0)
        return fail("nanosleep", "");
    printf("awake\n");
    if (argc == 3) {
        DIR *dir = opendir(argv[2]);
        if (!dir)
            return fail("cannot list ", argv[2]);
        struct dirent *entry;
        errno = 0;
        while ((entry = readdir(dir)) != NULL) {
            if (strcmp(entry->d_name, ".") != 0 && strcmp(entry->d_name, "..") != 0)
                printf("entry %s\n", entry->d_name);
            errno = 0;
        }
        if (errno != 0)
            return fail("readdir ", argv[2]);
        closedir(dir);
    }
    return 0;
}
