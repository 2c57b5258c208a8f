/* files.c [DIR]: in the preopened directory DIR ("/" if not given), lists the
 * entries (sorted), reads input.txt and writes its uppercase to output.txt,
 * saying what it did. Any failure is reported on stderr, with exit status 1. */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int compare(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int fail(const char *what, const char *path) {
    fprintf(stderr, "files: %s %s: %s\n", what, path, strerror(errno));
    return 1;
}

int main(int argc, char **argv) {
    if (argc > 2) {
        fprintf(stderr, "usage: files [DIR]\n");
        return 2;
    }
    const char *dir = argc == 2 ? argv[1] : "/";
    char path[4096];

    DIR *d = opendir(dir);
    if (!d)
        return fail("cannot list", dir);
    char *names[1024];
    size_t count = 0;
    struct dirent *entry;
    while ((entry = readdir(d)) != NULL && count < 1024) {
        if (strcmp(entry->d_name, ".") == 0 || strcmp(entry->d_name, "..") == 0)
            continue;
        names[count++] = strdup(entry->d_name);
    }
    closedir(d);
    qsort(names, count, sizeof names[0], compare);
    printf("listing %s: %zu entries\n", dir, count);
    for (size_t i = 0; i < count; i++)
        printf("  %s\n", names[i]);

    snprintf(path, sizeof path, "%s/input.txt", dir);
    FILE *in = fopen(path, "rb");
    if (!in)
        return fail("cannot read", path);
    static char data[1 << 16];
    size_t size = fread(data, 1, sizeof data, in);
    fclose(in);
    printf("read %zu bytes from %s\n", size, path);

    for (size_t i = 0; i < size; i++)
        data[i] = (char)toupper((unsigned char)data[i]);
    snprintf(path, sizeof path, "%s/output.txt", dir);
    FILE *out = fopen(path, "wb");
    if (!out)
        return fail("cannot write", path);
    if (fwrite(data, 1, size, out) != size || fclose(out) != 0)
        return fail("cannot write", path);
    printf("wrote %zu bytes to %s\n", size, path);
    return 0;
}
