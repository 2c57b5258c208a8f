/* A WASI command for tests/test_wasip2_command.py, made a wasi:cli/command component by the
 * WASI preview 1 adapter (build.sh). What it does depends on argv[1]:
 *   echo ARGS...      prints each argument on a line of its own
 *   env NAME          prints NAME's value, or exits with 3 when NAME is unset
 *   upper             copies stdin to stdout in upper case
 *   cat PATH          prints the file at PATH (in a preopened directory)
 *   write PATH TEXT   writes TEXT to PATH; exits with 4, printing the error, when that fails
 *   exit N            exits with code N
 *   stderr TEXT       prints TEXT on stderr */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: %s echo|env|upper|cat|write|exit|stderr ...\n", argc ? argv[0] : "command");
        return 2;
    }
    const char *what = argv[1];
    if (!strcmp(what, "echo")) {
        for (int i = 2; i < argc; i++)
            puts(argv[i]);
        return 0;
    }
    if (!strcmp(what, "env") && argc == 3) {
        const char *value = getenv(argv[2]);
        if (!value)
            return 3;
        puts(value);
        return 0;
    }
    if (!strcmp(what, "upper")) {
        int c;
        while ((c = getchar()) != EOF)
            putchar(toupper(c));
        return 0;
    }
    if (!strcmp(what, "cat") && argc == 3) {
        FILE *file = fopen(argv[2], "r");
        if (!file) {
            printf("cannot open %s: %s\n", argv[2], strerror(errno));
            return 4;
        }
        char buffer[4096];
        size_t count;
        while ((count = fread(buffer, 1, sizeof buffer, file)) > 0)
            fwrite(buffer, 1, count, stdout);
        fclose(file);
        return 0;
    }
    if (!strcmp(what, "write") && argc == 4) {
        FILE *file = fopen(argv[2], "w");
        if (!file || fputs(argv[3], file) < 0 || fclose(file) != 0) {
            printf("cannot write %s: %s\n", argv[2], strerror(errno));
            return 4;
        }
        return 0;
    }
    if (!strcmp(what, "exit") && argc == 3)
        return atoi(argv[2]);
    if (!strcmp(what, "stderr") && argc == 3) {
        fputs(argv[2], stderr);
        return 0;
    }
    fprintf(stderr, "%s: unknown command %s\n", argv[0], what);
    return 2;
}
